"""Plan cost at DeepSeek-V3 scale: wall time and bytes read from disk.

Writes a synthetic DeepSeek-V3-shaped sharded checkpoint (61 target layers + 1 MTP
layer, 256 experts, ~92k tensor names over 163 shards; sparse files with real
safetensors headers), then plans it repeatedly. Compares the bytes the plan reads
with (a) naive: the index plus every shard's header, (b) the minimum: the index plus
the headers of the shards holding draft tensors.

Targets: plan <= 0.5 s on a 2-core machine; bytes read <= 1.1 x the minimum.
Last line: plan_s=<median s> bytes_read=<n> bytes_min=<n> bytes_naive=<n>
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from pathlib import Path

import _support_path  # noqa: F401 - puts tests/ on sys.path for ``support``
from support.synthetic import SyntheticSpec, write_synthetic_checkpoint

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts


def _header_bytes(path: Path) -> int:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return 8 + n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--mtp-scheme", default="bf16", choices=["bf16", "fp8_block", "nvfp4"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        t0 = time.perf_counter()
        ck = write_synthetic_checkpoint(Path(tmp) / "dsv3", SyntheticSpec(mtp_scheme=args.mtp_scheme))
        print(f"wrote {len(ck.weight_map)} tensor names over {len(ck.shards)} shards "
              f"({ck.total_size / 1e9:.0f} GB declared) in {time.perf_counter() - t0:.1f} s")
        index = ck.path / "model.safetensors.index.json"
        index_bytes = index.stat().st_size
        naive = index_bytes + sum(_header_bytes(ck.path / s) for s in ck.shards)
        minimum = index_bytes + sum(_header_bytes(ck.path / s) for s in ck.draft_shards)
        times, read, opened = [], 0, 0
        for _ in range(args.repeat):
            t = time.perf_counter()
            facts = load_facts(ck.path)
            p = plan_from_facts(facts)
            times.append(time.perf_counter() - t)
            read, opened = facts.files.bytes_read, facts.files.files_opened
        print(f"plan: {len(p.modules)} modules, {len(p.conflicts)} conflicts; opened {opened} "
              f"files (index + {len(ck.draft_shards)} draft shards of {len(ck.shards)})")
        print(f"times: {', '.join(f'{t:.3f}' for t in times)}")
        med = statistics.median(times)
        print(f"targets: plan_s {med:.3f} <= 0.5: {med <= 0.5}; "
              f"bytes_read/bytes_min {read / minimum:.3f} <= 1.1: {read <= 1.1 * minimum}")
        print(f"plan_s={med:.4f} bytes_read={read} bytes_min={minimum} bytes_naive={naive}")


if __name__ == "__main__":
    main()
