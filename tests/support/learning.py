"""Run the adapter's mapping learner (``adapter/learn_main.py:learn_result``) on tiny
checkpoints.

The cases go to the build service's long-lived workers (``harness.submit_learn``: mode
``learn``), which learn them in-process with the same CPU shims the builds use; nothing
is built on a real device, and no vLLM import is paid beyond the workers' own. The
CLI's ``plan --learn`` still reaches the learner through its subprocess door, and
``tests/integration/test_learned_drafters.py`` tests that door.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from support.harness import submit_learn
from vllm_draft_quant.core.learned import Observation

__all__ = ["LearnCase", "learn_many", "start_learning"]

LearnCase = tuple[Path, Mapping[str, Any] | None]  # (model folder, extra EngineArgs)


def learn_many(
    cases: Sequence[LearnCase], workdir: Path | None = None, timeout: float = 1500,
    env: Mapping[str, str] | None = None,
) -> list[Observation | str]:
    """Per case its `Observation`, or the learner's one-line error (``"Type: message"``).

    ``workdir`` is kept for callers; the workers keep their own logs. ``env``: per-case
    variables (``harness.PER_CASE_ENV``)."""
    del workdir
    out: list[Observation | str] = []
    for raw in submit_learn(cases, timeout=timeout, env=env)():
        if isinstance(raw, str):
            out.append(f"LearnerDied: {raw}")
        elif "observation" in raw:
            out.append(Observation.model_validate(raw["observation"]))
        else:
            out.append(f"{raw['error_type']}: {raw['error']}")
    return out


# ------------------------------------------------------------------ the CLI's --learn door
_SERVED: dict[Path, Any] = {}


def start_learning(models: Sequence[Path],
                   serve_as: Sequence[Path] | None = None) -> Callable[[], list[Any]]:
    """Queue the learning of ``models`` on the build service; the returned function waits
    and gives each model's learned profile (`core.learned.learned_profile`) after making
    the CLI's ``--learn`` door (`cli._learn.learned_profile_of`) answer that model (or its
    entry of ``serve_as``: a copy the CLI is run on) with it, so ``fix --learn`` /
    ``graft --learn`` in this process start no vLLM subprocess of their own (the door
    itself is tested by ``test_learned_drafters.py``). Other models still go through it."""
    from vllm_draft_quant.core.learned import learned_profile

    collect = submit_learn([(m, None) for m in models])

    def done() -> list[Any]:
        profiles = []
        for model, served_as, raw in zip(models, serve_as or models, collect(), strict=True):
            assert isinstance(raw, dict) and "observation" in raw, f"{model}: {raw}"
            profile = learned_profile(Observation.model_validate(raw["observation"]),
                                      origin=str(model))
            _SERVED[Path(served_as).resolve()] = profile
            profiles.append(profile)
        _serve()
        return profiles

    return done


def _serve() -> None:
    from vllm_draft_quant.cli import _learn

    door = _learn.learned_profile_of
    if getattr(door, "served", False):
        return

    def served(model: Any, **kwargs: Any) -> Any:
        hit = _SERVED.get(Path(model).resolve())
        return hit if hit is not None else door(model, **kwargs)

    served.served = True  # type: ignore[attr-defined]
    _learn.learned_profile_of = served  # type: ignore[assignment]
