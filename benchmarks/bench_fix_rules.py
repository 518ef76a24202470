"""``fix`` on a long exclusion list: time at 10,000 and 100,000 entries, and their ratio.

A DeepSeek-V3-shaped factory checkpoint (ModelOpt NVFP4, BF16 MTP layer) whose
``exclude_modules``/``ignore`` lists get N extra entries, half exact names and half
``...*`` globs of target-layer experts (as long real export lists are). Measured:
``compute_fix`` plus reading the configs (what ``fix MODEL`` does, without output), best
of ``--repeat`` runs per size, both sizes in one process.

Target: linear in the number of entries, up to the n log n of sorting the rules: ratio
t(100k) / t(10k) <= 20 (10 is linear, 12.5 n log n);
before issue 18 every pattern was compiled per call (fnmatch, one regex of all globs per
rule set): 1,000 globs took 1.0 s, 10,000 took 26 s on this machine (quadratic).
Last line: t10k_s=<s> t100k_s=<s> ratio=<t100k/t10k>
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import _support_path  # noqa: F401  (puts tests/ on sys.path for the factory)
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.repair.fixer import compute_fix


def model_with(root: Path, n: int) -> Path:
    model = write_checkpoint(root / f"m{n}", CheckpointSpec("deepseek_v3", "nvfp4", layout="a")).path
    extra = [f"model.layers.0.mlp.experts.{i}.gate_proj" for i in range(n // 2)]
    extra += [f"model.layers.0.mlp.experts.{i}.up_proj*" for i in range(n - n // 2)]
    for name in ("config.json", "hf_quant_config.json"):
        path = Path(model) / name
        if not path.exists():
            continue
        cfg = json.loads(path.read_text())
        node = cfg.get("quantization_config") or cfg["quantization"]
        key = "ignore" if "ignore" in node else "exclude_modules"
        node[key] = [*(node.get(key) or []), *extra]
        path.write_text(json.dumps(cfg))
    return Path(model)


def timed(model: Path) -> float:
    t = time.perf_counter()
    facts = load_facts(model)
    res = compute_fix(facts, plan_from_facts(facts))
    assert res.added, "the MTP layer's exclusion must still be found"
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fix-rules-") as tmp:
        models = {n: model_with(Path(tmp), n) for n in (10_000, 100_000)}
        best = {n: min(timed(m) for _ in range(args.repeat)) for n, m in models.items()}
    ratio = best[100_000] / best[10_000]
    print(f"fix on 10,000 entries: {best[10_000]:.2f} s; on 100,000: {best[100_000]:.2f} s")
    print(f"target: ratio {ratio:.1f} <= 20: {ratio <= 20}")
    print(f"t10k_s={best[10_000]:.3f} t100k_s={best[100_000]:.3f} ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
