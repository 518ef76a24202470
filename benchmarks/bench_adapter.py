"""Adapter overhead: drafter build + load time with the plugin on and off.

Cases that load both ways: the wildcard layout ('b': MTP all BF16, one wildcard
exclusion per MTP root) of the factory families step3p5, qwen3_next and deepseek_v3,
each as NVFP4 and FP8 (ModelOpt): six tiny checkpoints. Each worker process
(``vllm_draft_quant.demo.launcher.build_many``, one vLLM import) builds target + drafter of every case
twice: pass 1 is each folder's first drafter build in the process (with the plugin on,
it plans the checkpoint: ~ms, then cached per process by folder and file times), pass 2
builds the same folders again (plan cached). Processes alternate on, off, off, on,
on, off, ... The time per case is the worker's ``timings["draft"]``: the draft vLLM
config plus ``get_model`` of the drafter (construction and weight loading), without
vLLM's import or the target's build.

Summary: per process, the mean pass-1 draft time over the six cases; on_s and off_s are
the medians of those over the rounds.

Target: on_s / off_s <= 1.05.
Last line: on_s=<median> off_s=<median> ratio=<on/off>
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import _support_path  # noqa: F401 - puts tests/ on sys.path for ``support``
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant import plan
from vllm_draft_quant.demo.launcher import BuildRequest, DraftResult, build_many

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
SCHEMES = ("nvfp4", "fp8")


def _draft_s(r: DraftResult) -> float:
    if not r.ok:
        raise SystemExit(f"{r.model_dir}: the build failed: {r.error_text}")
    return float(r.raw["timings"]["draft"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="worker processes per mode")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-adapter-") as tmp:
        root = Path(tmp)
        cases = {f"{f}-{s}-b": write_checkpoint(root / f"{f}-{s}-b", CheckpointSpec(
            f, s, layout="b")).path for f in FAMILIES for s in SCHEMES}  # type: ignore[arg-type]
        keys = list(cases)
        plan_ms = []
        for path in cases.values():
            t = time.perf_counter()
            plan(path)
            plan_ms.append((time.perf_counter() - t) * 1e3)
        print(f"{len(cases)} cases: {', '.join(keys)}")
        print(f"plan() per case (paid by the first drafter build in a process, then cached): "
              f"median {statistics.median(plan_ms):.1f} ms, max {max(plan_ms):.1f} ms")
        reqs = [BuildRequest(p, dump=False) for p in cases.values()] * 2  # pass 1, pass 2
        n = len(cases)
        # times[mode][pass] = list over rounds of per-case times
        times: dict[str, list[list[list[float]]]] = {"on": [[], []], "off": [[], []]}
        imports: dict[str, list[float]] = {"on": [], "off": []}
        for r in range(args.rounds):
            for mode in (("on", "off") if r % 2 == 0 else ("off", "on")):
                t = time.perf_counter()
                res = build_many(reqs, plugin=mode == "on", workdir=root / f"{mode}-{r}")
                draft = [_draft_s(x) for x in res]
                times[mode][0].append(draft[:n])
                times[mode][1].append(draft[n:])
                imports[mode].append(float(res[0].raw["timings"]["vllm_import"]))
                print(f"round {r + 1} plugin {mode:>3}: pass-1 mean {statistics.mean(draft[:n]):.3f}"
                      f" s, pass-2 mean {statistics.mean(draft[n:]):.3f} s (process "
                      f"{time.perf_counter() - t:.0f} s, vLLM import {imports[mode][-1]:.0f} s; "
                      f"load average {os.getloadavg()[0]:.2f})", flush=True)

    def med(mode: str, p: int, i: int | None = None) -> float:
        rows = times[mode][p]
        return statistics.median(statistics.mean(x) if i is None else x[i] for x in rows)

    print("per case, median draft build + load s (pass 1: on / off; pass 2: on / off):")
    for i, k in enumerate(keys):
        print(f"  {k:<22} {med('on', 0, i):.3f} / {med('off', 0, i):.3f} = "
              f"{med('on', 0, i) / med('off', 0, i):.3f};   {med('on', 1, i):.3f} / "
              f"{med('off', 1, i):.3f} = {med('on', 1, i) / med('off', 1, i):.3f}")
    on, off = med("on", 0), med("off", 0)
    on2, off2 = med("on", 1), med("off", 1)
    print(f"pass 2 (plan cached): on {on2:.3f} s, off {off2:.3f} s, ratio {on2 / off2:.3f}")
    print(f"target: ratio {on / off:.3f} <= 1.05: {on / off <= 1.05}")
    print(f"on_s={on:.4f} off_s={off:.4f} ratio={on / off:.3f}")


if __name__ == "__main__":
    main()
