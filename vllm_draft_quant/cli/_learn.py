"""How the CLI reaches the mapping learned from vLLM without importing vLLM itself.

The layer contract keeps vllm (and ``adapter``) out of the CLI's process. For a drafter
without a hand profile, `learned_profile_of` starts ``python -m
vllm_draft_quant.adapter.learn_main MODEL OUT.json`` (the adapter's one narrow door:
vLLM resolves the draft architecture, the drafter is built on the meta device and its
``load_weights`` run on placeholders, see ``adapter/learn.py``), reads back the
`core.learned.Observation` JSON and turns it into a profile here
(`core.learned.learned_profile`, pure). That costs one vLLM import (tens of seconds);
nothing else in the CLI pays it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from vllm_draft_quant.core.learned import LearnError, Observation, learned_profile
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.errors import UnknownDrafterError

__all__ = ["LEARNER_MODULE", "learn_or_explain", "learned_profile_of"]

#: the module the CLI runs in a subprocess (named as text: the CLI never imports it)
LEARNER_MODULE = "vllm_draft_quant.adapter.learn_main"


def learned_profile_of(model: str | os.PathLike[str], *, origin: str,
                       engine_args: Mapping[str, Any] | None = None,
                       note: TextIO | None = None) -> DrafterProfile:
    """The learned profile of the drafter vLLM loads for ``model`` (`LearnError` if none)."""
    if note is not None:
        note.write(f"{origin}: no hand profile for its drafter; learning vLLM's own mapping "
                   "(imports vLLM in a subprocess, tens of seconds)\n")
        note.flush()
    with tempfile.TemporaryDirectory(prefix="vdq-learn-") as tmp:
        out = Path(tmp) / "observation.json"
        cmd = [sys.executable, "-m", LEARNER_MODULE, str(model), str(out)]
        if engine_args:
            cmd.append(json.dumps(dict(engine_args)))
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True, check=False)
        if not out.exists():
            tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise LearnError(f"{origin}: could not learn the drafter's mapping from vLLM "
                             f"(the learner exited with {proc.returncode}: {tail[0][:300]}); "
                             "is vLLM installed in this environment?")
        raw = json.loads(out.read_text())
    if "observation" not in raw:
        raise LearnError(f"{origin}: could not learn the drafter's mapping from vLLM: "
                         f"{raw.get('error_type')}: {raw.get('error')}")
    return learned_profile(Observation.model_validate(raw["observation"]), origin=origin)



def learn_or_explain(error: UnknownDrafterError, *, learn: bool, model: str, origin: str,
                     engine_args: Mapping[str, Any] | None = None) -> DrafterProfile:
    """After ``error`` (no hand profile for the drafter): with ``learn``, the profile
    learned from vLLM for ``model`` (the folder whose tensors the drafter reads);
    without it, the same error naming ``--learn``."""
    if isinstance(error, LearnError):
        raise error
    if not learn:
        raise UnknownDrafterError(
            f"{error} Or let vllm-draft-quant learn the drafter's mapping from the installed "
            "vLLM: add --learn (imports vLLM in a subprocess).") from None
    return learned_profile_of(model, origin=origin, engine_args=engine_args, note=sys.stderr)
