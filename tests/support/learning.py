"""Run the adapter's mapping learner (``adapter/learn_main.py:learn_result``) on tiny
checkpoints.

The cases go to the build service's long-lived workers (``harness.submit_learn``: mode
``learn``), which learn them in-process with the same CPU shims the builds use; nothing
is built on a real device, and no vLLM import is paid beyond the workers' own. The
CLI's ``plan --learn`` still reaches the learner through its subprocess door, and
``tests/integration/test_learned_drafters.py`` tests that door.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from support.harness import submit_learn
from vllm_draft_quant.core.learned import Observation

__all__ = ["LearnCase", "learn_many"]

LearnCase = tuple[Path, Mapping[str, Any] | None]  # (model folder, extra EngineArgs)


def learn_many(
    cases: Sequence[LearnCase], workdir: Path | None = None, timeout: float = 1500
) -> list[Observation | str]:
    """Per case its `Observation`, or the learner's one-line error (``"Type: message"``).

    ``workdir`` is kept for callers; the workers keep their own logs."""
    del workdir
    out: list[Observation | str] = []
    for raw in submit_learn(cases, timeout=timeout)():
        if isinstance(raw, str):
            out.append(f"LearnerDied: {raw}")
        elif "observation" in raw:
            out.append(Observation.model_validate(raw["observation"]))
        else:
            out.append(f"{raw['error_type']}: {raw['error']}")
    return out
