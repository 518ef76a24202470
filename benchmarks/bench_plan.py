"""Plan cost at DeepSeek-V3 scale, against two baselines measured in the same process.

Writes a synthetic DeepSeek-V3-shaped sharded checkpoint (61 target layers + 1 MTP
layer, 256 experts, ~92k tensor names over 163 shards, the MTP layer in the last
shards; sparse files with real safetensors headers), then times, round-robin in one
process, each repeated ``--repeat`` times:

- plan: ``load_facts`` + ``plan_from_facts`` (what ``vllm-draft-quant plan`` runs);
- naive: the ``safetensors`` library opening every shard (``safe_open`` + ``keys()``),
  the obvious way to list a checkpoint's tensors;
- index-parse: ``json.load`` of ``model.safetensors.index.json`` alone.

It also compares the bytes the plan reads with the minimum (the index plus the headers
of the shards holding draft tensors) and with naive (the index plus every header).

Targets: plan/naive <= 0.5, plan/index-parse <= 1.5, bytes read <= 1.1 x the minimum.
Last line: plan_s=<median> naive_s=<median> index_s=<median> plan_naive=<ratio>
plan_index=<ratio> bytes_read=<n> bytes_min=<n> bytes_naive=<n> load=<1-min load avg>
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _support_path  # noqa: F401 - puts tests/ on sys.path for ``support``
from safetensors import safe_open
from support.synthetic import SyntheticSpec, write_synthetic_checkpoint

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts


def _header_bytes(path: Path) -> int:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return 8 + n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=9)
    ap.add_argument("--mtp-scheme", default="bf16", choices=["bf16", "fp8_block", "nvfp4"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        t0 = time.perf_counter()
        ck = write_synthetic_checkpoint(Path(tmp) / "dsv3", SyntheticSpec(mtp_scheme=args.mtp_scheme))
        print(f"wrote {len(ck.weight_map)} tensor names over {len(ck.shards)} shards "
              f"({ck.total_size / 1e9:.0f} GB declared) in {time.perf_counter() - t0:.1f} s")
        index = ck.path / "model.safetensors.index.json"
        shard_paths = [ck.path / s for s in ck.shards]
        index_bytes = index.stat().st_size
        naive_bytes = index_bytes + sum(_header_bytes(p) for p in shard_paths)
        minimum = index_bytes + sum(_header_bytes(ck.path / s) for s in ck.draft_shards)
        last: dict[str, Any] = {}

        def plan() -> None:
            facts = load_facts(ck.path)
            last["plan"] = plan_from_facts(facts)
            last["read"], last["opened"] = facts.files.bytes_read, facts.files.files_opened

        def naive() -> None:
            n = 0
            for p in shard_paths:
                with safe_open(p, "np") as f:
                    n += len(f.keys())
            last["naive_names"] = n

        def index_parse() -> None:
            with open(index, "rb") as f:
                last["index_names"] = len(json.load(f)["weight_map"])

        runs: dict[str, Callable[[], None]] = {"plan": plan, "naive": naive,
                                               "index": index_parse}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for fn in runs.values():  # warm the page cache and the imports
            fn()
        load_before = os.getloadavg()[0]
        for _ in range(args.repeat):
            for key, fn in runs.items():
                t = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t)
        load_after = os.getloadavg()[0]
        p = last["plan"]
        print(f"plan: {len(p.modules)} modules, {len(p.conflicts)} conflicts; opened "
              f"{last['opened']} files (index + {len(ck.draft_shards)} draft shards of "
              f"{len(ck.shards)}); naive listed {last['naive_names']} names, the index "
              f"{last['index_names']}")
        for key in runs:
            print(f"{key:>6} s: {', '.join(f'{t:.4f}' for t in times[key])}")
        med = {k: statistics.median(v) for k, v in times.items()}
        r_naive, r_index = med["plan"] / med["naive"], med["plan"] / med["index"]
        read = last["read"]
        print(f"load average (1 min): {load_before:.2f} -> {load_after:.2f}")
        print(f"targets: plan/naive {r_naive:.3f} <= 0.5: {r_naive <= 0.5}; plan/index-parse "
              f"{r_index:.3f} <= 1.5: {r_index <= 1.5}; bytes_read/bytes_min "
              f"{read / minimum:.3f} <= 1.1: {read <= 1.1 * minimum}")
        print(f"plan_s={med['plan']:.4f} naive_s={med['naive']:.4f} index_s={med['index']:.4f} "
              f"plan_naive={r_naive:.3f} plan_index={r_index:.3f} bytes_read={read} "
              f"bytes_min={minimum} bytes_naive={naive_bytes} load={load_after:.2f}")


if __name__ == "__main__":
    main()
