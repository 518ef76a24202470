"""Cost of learning a drafter's name mapping against the drafter load it precedes.

For a drafter without a hand profile, P1 first runs the dry run of ``adapter/learn.py``
(the drafter built on the meta device, its ``load_weights`` on header-shaped
placeholders), then the real load. This measures both in one process (one vLLM import,
``VLLM_TARGET_DEVICE=cpu``, the demo's CPU stand-ins), on the factory's tiny
checkpoints, unquantized originals (every family loads them stock; the dry run builds
every layer unquantized whatever the checkpoint's format, so its cost does not depend
on it):

- learn_s: ``adapter.learn.observe`` plus ``core.learned.learned_profile`` (what P1 adds
  for an unprofiled drafter; cached per process afterwards);
- load_s: the stock drafter load, the worker's ``timings["draft"]`` (draft config,
  construction, weight loading; the plugin is not loaded in this process).

Per case the medians over ``--repeat`` runs, alternating learn and load. Timings are
ratios measured in one run; nothing asserts them (see CONTRIBUTING "Test tiers").
With ``--scale K`` the tiny factory's sizes (``demo/checkpoint.py``: hidden, vocabulary,
expert count and widths) are multiplied by K before any checkpoint is written, so the
drafter's weights grow about K^2 (K^3 for the experts) while its modules and tensors stay
the same in number: the dry run builds on the meta device and loads header-shaped
placeholders, so its cost should follow the tensor count, the load the bytes.

Last line: learn_ms=<median over cases> load_ms=<median> ratio=<learn/load>
checkpoint_mb=<median safetensors megabytes of the folders the loads read>
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import _support_path  # noqa: F401 - puts tests/ on sys.path for ``support``

CASES = ("ernie4_5_moe", "deepseek_v3", "glm4_moe", "qwen3_next", "step3p5")


def _learn_s(model_dir: Path) -> float:
    from vllm.config import set_current_vllm_config

    from vllm_draft_quant.adapter.learn import observe
    from vllm_draft_quant.adapter.patches import apply_layer_patches
    from vllm_draft_quant.core.learned import learned_profile
    from vllm_draft_quant.demo.worker import _engine_config, _ensure_distributed

    cfg = _engine_config(str(model_dir))
    spec = cfg.speculative_config
    with set_current_vllm_config(cfg):
        _ensure_distributed(cfg)
        t = time.perf_counter()
        obs = observe(cfg, spec.draft_model_config, "", spec.draft_model_config.architectures[0],
                      model_dir, apply_layer_patches)
        learned_profile(obs)
        return time.perf_counter() - t


def _checkpoint_bytes(model_dir: Path) -> int:
    """The safetensors bytes: an MTP drafter's load iterates every shard of the folder
    (vLLM's loader streams all tensors; the drafter's ``load_weights`` keeps its own)."""
    return sum(f.stat().st_size for f in model_dir.glob("*.safetensors"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--families", default=",".join(CASES),
                    help="comma-separated factory families (default: %(default)s)")
    ap.add_argument("--scale", type=int, default=1,
                    help="multiply the tiny sizes by this (hidden, vocab, experts, widths)")
    args = ap.parse_args()
    if args.scale > 1:
        from vllm_draft_quant.demo import checkpoint as sizes

        for name in ("HIDDEN", "VOCAB", "EXPERTS", "MOE_INTER", "DENSE_INTER"):
            setattr(sizes, name, getattr(sizes, name) * args.scale)
    from support import CheckpointSpec, write_checkpoint  # after the sizes are set
    os.environ["VLLM_TARGET_DEVICE"] = "cpu"
    os.environ["VLLM_PLUGINS"] = "vllm_draft_quant_disabled"  # stock loads
    os.environ["VLLM_DRAFT_QUANT"] = "off"
    from vllm_draft_quant.demo.worker import _start, run_case

    observer, import_s = _start(load_plugins=False)
    print(f"vLLM import {import_s:.0f} s (not counted)")
    learn_ms: list[float] = []
    load_ms: list[float] = []
    ckpt_mb: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-learn-") as tmp:
        for fam in args.families.split(","):
            ck = write_checkpoint(Path(tmp) / fam, CheckpointSpec(fam, "nvfp4", quantized=False))  # type: ignore[arg-type]
            learn, load = [], []
            for _ in range(args.repeat):
                learn.append(_learn_s(ck.path))
                res: dict[str, Any] = run_case({"model_dir": str(ck.path), "mode": "draft"},
                                               observer)
                if not res["ok"]:
                    raise SystemExit(f"{fam}: the stock load failed: {res['error_message']}")
                load.append(float(res["timings"]["draft"]))
            a, b = statistics.median(learn) * 1e3, statistics.median(load) * 1e3
            mb = _checkpoint_bytes(ck.path) / 1e6
            learn_ms.append(a)
            load_ms.append(b)
            ckpt_mb.append(mb)
            print(f"  {fam:<14} learn {a:7.1f} ms  load {b:7.1f} ms  ratio {a / b:.3f}"
                  f"  checkpoint {mb:7.1f} MB", flush=True)
    a, b = statistics.median(learn_ms), statistics.median(load_ms)
    print(f"learn_ms={a:.1f} load_ms={b:.1f} ratio={a / b:.3f} "
          f"checkpoint_mb={statistics.median(ckpt_mb):.1f}", flush=True)
    os._exit(0)  # gloo teardown can hang at interpreter exit (FINDINGS)


if __name__ == "__main__":
    main()
