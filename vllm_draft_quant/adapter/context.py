"""The drafter being built right now, and the decisions its layers must get.

Set by the ``load_model`` patch for the duration of one drafter load; read by
the layer-constructor patches. Outside a drafter load it is None and every
patch calls vLLM's original unchanged.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.core.schemes import Scheme

if TYPE_CHECKING:
    from vllm_draft_quant.core.plan import ModuleDecision, Plan

_local = threading.local()


@dataclass
class DraftBuild:
    plan: Plan
    base_config: Any  # the drafter's (private copy of the) quant config
    decisions: dict[str, ModuleDecision] = field(default_factory=dict)
    seen: dict[str, str] = field(default_factory=dict)  # prefix -> what we did
    _forced: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.decisions = {
            m.module: m for m in self.plan.modules if m.kind.quantizable
        }

    def config_for_layer(self, prefix: str, given: Any) -> tuple[bool, Any]:
        """(changed, quant config) a layer with ``prefix`` must be built with."""
        d = self.decisions.get(prefix)
        if d is None:
            return False, given
        if d.scheme is Scheme.UNQUANTIZED:
            self.seen[prefix] = "unquantized"
            return True, None
        from vllm_draft_quant.adapter.compat import config_for

        base = given if given is not None else self.base_config
        key = (id(base), d.scheme, d.stored, d.layout)
        if key not in self._forced:
            self._forced[key] = config_for(d.scheme, base, stored=d.stored, layout=d.layout)
        self.seen[prefix] = d.scheme.value
        return True, self._forced[key]


@dataclass
class LearnBuild:
    """The dry run of ``adapter/learn.py``: every layer the patches see is built
    unquantized, and whether the drafter gave it a quant config is recorded."""

    given_none: dict[str, bool] = field(default_factory=dict)  # prefix -> no config given

    def config_for_layer(self, prefix: str, given: Any) -> tuple[bool, Any]:
        self.given_none[prefix] = given is None
        return True, None


def current() -> DraftBuild | LearnBuild | None:
    return getattr(_local, "build", None)


def activate(build: DraftBuild | LearnBuild | None) -> DraftBuild | LearnBuild | None:
    prev = current()
    _local.build = build
    return prev
