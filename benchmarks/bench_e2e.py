"""End to end: draft acceptance and output tokens/s, stock vLLM and the plugin, per case.

Every case of the e2e tier (``tests/e2e/cases.py``: each quantized checkpoint x k = 1, 2;
families MiMo (MTP), GLM-4.x MoE and DeepSeek-V3 (NextN MTP: grafted BF16, quantized
NVFP4, or from a separate BF16 folder; BF16 MoE layers on the CPU MoE stand-ins, NVFP4
ones on the NVFP4 experts stand-in, DeepSeek's MLA on the MLA decode stand-in), Qwen3-Next,
Qwen3.5 MoE and dense Qwen3.5 (MTP; Gated-DeltaNet linear attention on the GDN stand-ins),
Step-3.5 (MTP; sliding-window attention, MoE routed by the stand-in F21) and EAGLE3-Llama
(a separate EAGLE3 draft)) plus ``cases.BENCH_ONLY`` is generated greedily on
vLLM's CPU platform (test-only CPU stand-ins, ``vllm_draft_quant/demo/cpu_forward.py``),
all engines in one process. The BF16 original of the same weights is the reference. Stock vLLM (``VLLM_DRAFT_QUANT=off``)
runs each checkpoint with the smallest k (its failures happen at load, whatever k).

Per case it prints the reference's acceptance, stock's outcome (acceptance, or the
error that stopped it) and tokens/s, the plugin's acceptance, tokens/s and whether its
tokens equal the reference's. tokens/s are CPU-emulation numbers of tiny models
(pure-PyTorch attention, NVFP4 emulation): compare them only within one run.

Last line: ``cases=`` runs (case x k) with the plugin, ``families=`` their families,
``fp8_cases=`` and ``tp2_cases=`` how many of those are FP8 targets and
tensor-parallel 2, ``plugin_min_ratio=`` lowest plugin / reference acceptance,
``tokens_equal=`` runs whose plugin tokens equal the reference's,
``stock_max_accept=`` highest stock acceptance among stock runs that did not fail
(0 when all failed).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _support_path  # noqa: F401 - puts tests/ on sys.path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
import cases as E


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true",
                    help="keep the checkpoints and the engine log (removed by default)")
    args = ap.parse_args()
    selected = list(E.CASES) + list(getattr(E, "BENCH_ONLY", []))
    root = Path(tempfile.mkdtemp(prefix="vdq-bench-e2e-"))
    t0 = time.perf_counter()
    try:
        got = E.run(selected, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    wall = time.perf_counter() - t0
    rows = E.rows(selected, got)
    by_key = {c.key: c for c in selected}
    print(f"{len(rows)} runs in {wall:.0f} s (one engine process)"
          + (f"; checkpoints in {root}" if args.keep else ""))
    head = (
        f"{'case':<30} {'k':>1} {'ref acc':>7} {'stock':>22} {'stock eq':>8} {'stock tok/s':>11} "
        f"{'plugin acc':>10} {'plugin tok/s':>12} {'tokens equal':>12}"
    )
    print(head)
    for r in rows:
        stps = f"{r.stock_tok_s:.1f}" if r.stock_tok_s is not None else "-"
        print(
            f"{r.case:<30} {r.k:>1} {r.ref_accept:>7.2f} {r.stock:>22} "
            f"{'-' if r.stock_tokens_equal is None else str(r.stock_tokens_equal):>8} {stps:>11} "
            f"{r.plugin_accept:>10.2f} {r.plugin_tok_s:>12.1f} {r.plugin_tokens_equal!s:>12}"
        )
    ratios = [r.plugin_accept / r.ref_accept if r.ref_accept else 0.0 for r in rows]
    stock_ok = [r.stock_accept for r in rows if r.stock_accept is not None]
    families = sorted({by_key[r.case].family for r in rows})
    print(
        f"cases={len(rows)} families={','.join(families)} "
        f"fp8_cases={sum(by_key[r.case].fp8 for r in rows)} "
        f"tp2_cases={sum(by_key[r.case].tp == 2 for r in rows)} "
        f"plugin_min_ratio={min(ratios, default=0.0):.3f} "
        f"tokens_equal={sum(r.plugin_tokens_equal for r in rows)} "
        f"stock_max_accept={max(stock_ok, default=0.0):.3f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
