"""Run the adapter's mapping learner (``adapter/learn_main.py``) on tiny checkpoints.

One fresh process (``VLLM_TARGET_DEVICE=cpu``) learns every case of a batch, paying
vLLM's import once; nothing is built on a real device, so the build service's workers
are not needed. Tests start it beside the workers (`harness.run_aside`). It runs with
the CPU stand-ins the build workers apply (``python -m vllm_draft_quant.demo.shimmed``:
``demo/cpu_shims.py:apply_all``), so a drafter the tests can build only with a stand-in
(GLM-5 / DeepSeek-V3.2: shim 6, dense attention for DSA layers) is learned under the
same one; the plugin's own learner never applies them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.harness import worker_env
from vllm_draft_quant.core.learned import Observation

__all__ = ["LearnCase", "learn_many"]

LearnCase = tuple[Path, Mapping[str, Any] | None]  # (model folder, extra EngineArgs)


def learn_many(cases: Sequence[LearnCase], workdir: Path,
               timeout: float = 1500) -> list[Observation | str]:
    """Per case its `Observation`, or the learner's one-line error (``"Type: message"``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    body = {"cases": [{"model": str(m), "out": str(workdir / f"learn-{i}.json"),
                       "engine_args": dict(extra or {})}
                      for i, (m, extra) in enumerate(cases)]}
    req = workdir / "learn-request.json"
    req.write_text(json.dumps(body))
    log = workdir / "learn.log"
    with open(log, "w") as fh:
        subprocess.run([sys.executable, "-m", "vllm_draft_quant.demo.shimmed",
                        "vllm_draft_quant.adapter.learn_main", "--batch", str(req)],
                       env=worker_env(True), stdout=fh, stderr=subprocess.STDOUT,
                       timeout=timeout, check=False)
    out: list[Observation | str] = []
    for c in body["cases"]:
        path = Path(c["out"])
        if not path.exists():
            out.append(f"LearnerDied: no result (see {log})")
            continue
        raw = json.loads(path.read_text())
        out.append(Observation.model_validate(raw["observation"]) if "observation" in raw
                   else f"{raw['error_type']}: {raw['error']}")
    return out
