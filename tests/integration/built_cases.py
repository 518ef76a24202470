"""What the matrix-style integration modules share (``test_more_families.py``,
``test_int4_producers.py``, ``test_per_layer_producers.py``): the cases a session
selects, their builds queued plugin on and off in one batch, and the checks every
module makes of a built case (values equal the checkpoint's, target layers untouched: ``loaded.py``'s checks, which
``test_learned_drafters.py`` uses directly).

A module lists its cases and says how to write one (``write(case, folder) -> model
folder``) and which engine arguments it needs; `start_cases` does the rest::

    def start_built(session, root):
        return start_cases(session, root, sys.modules[__name__], CASES, case_id, write_case,
                           score_test="test_matrix_score")
    built = early_fixture(start_built)
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import loaded
import pytest
from support.harness import BuildRequest, DraftResult, submit_many

from vllm_draft_quant import Plan, plan
from vllm_draft_quant.checkpoint.facts import load_facts

__all__ = ["QUANTIZABLE", "Built", "assert_target_layers_untouched", "assert_values_equal",
           "selected", "start_cases", "weights"]

#: the plan's module kinds that get a quant method (routers and plain layers do not)
QUANTIZABLE = loaded.QUANTIZABLE


@dataclass
class Built:
    """One case: its model folder, its plan, and the drafter built plugin on and off."""

    path: Path
    plan: Plan
    on: DraftResult
    off: DraftResult
    written: Any = None  # what the writer returned, when it is more than the folder


def selected(session: pytest.Session, module: ModuleType, cases: Sequence[Hashable],
             score_test: str) -> list[Any]:
    """The cases of ``module``'s tests this session runs (``-k`` aware); a test named
    ``score_test`` (the module's score over every case) selects them all."""
    wanted: set[Hashable] = set()
    for item in session.items:
        if getattr(item, "module", None) is not module:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "case" in params:
            wanted.add(params["case"])
        if item.name.startswith(score_test):
            wanted.update(cases)
    return [c for c in cases if c in wanted]


def start_cases(session: pytest.Session, root: Path, module: ModuleType,
                cases: Sequence[Hashable], case_id: Callable[[Any], str],
                write: Callable[[Any, Path], Any], *, score_test: str,
                engine_args: Callable[[Any], dict[str, Any]] = lambda c: {},
                ) -> Callable[[], dict[Any, Built]]:
    """Write the selected cases' checkpoints and queue their builds, plugin on and off
    (``VLLM_DRAFT_QUANT=off``) in one batch; return the function that waits for them.
    ``write`` returns the model folder, or an object with a ``path`` (kept as
    `Built.written`)."""
    written = {c: write(c, root / case_id(c)) for c in selected(session, module, cases,
                                                                 score_test)}
    paths = {c: getattr(w, "path", w) for c, w in written.items()}
    reqs = [BuildRequest(p, engine_args=engine_args(c)) for c, p in paths.items()]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=True, workdir=root / "off", env={"VLLM_DRAFT_QUANT": "off"})
    return lambda: {
        c: Built(p, plan(p), a, b, written[c])
        for (c, p), a, b in zip(paths.items(), on(), off(), strict=True)
    }


def weights(params: dict[str, Any], suffixes: tuple[str, ...] = ("weight",)) -> list[Any]:
    """A module's weight parameters (names ending in ``suffixes``), scales left out."""
    return loaded.weights(params, suffixes)


def assert_values_equal(b: Built) -> None:
    """Every parameter of every quantizable planned module equals the checkpoint's bytes
    and shape (``loaded.assert_values_equal``); routers are vLLM's fixed layers."""
    names = load_facts(b.path).names
    templates = {m.prefix: list(m.checkpoint_modules) for m in names.modules}
    loaded.assert_values_equal(b.plan, b.on, b.path, templates)


def assert_target_layers_untouched(b: Built) -> None:
    """The target's layers are the same with the plugin on and off."""
    assert b.on.target_modules and loaded.target_seen(b.on) == loaded.target_seen(b.off)
