"""The plan: per drafter runtime module, the scheme to build it with, and why.

`Plan` is immutable and serialises to exactly this JSON (``plan --json``)::

    {"drafter": "<vLLM draft architecture>", "mode": "auto|strict",
     "modules": [{"module": "<runtime prefix>", "scheme": "...", "source": "...",
                  "reason": "...", "checkpoint_tensors": ["..."]}],
     "conflicts": [{"module": "...", "message": "..."}]}
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_draft_quant.core.schemes import Group, IntLayout, ModuleKind, Scheme, StoredFormat

__all__ = ["Conflict", "ModuleDecision", "Plan", "Source"]

#: why a module got its scheme; ``dequantize``: vLLM builds it as a layer that cannot
#: hold quantized weights (``torch.nn.Linear``, or a vLLM layer built without a quant
#: config) but the checkpoint stores it quantized, so its stored tensors are
#: dequantized exactly into the layer's unquantized weight while the drafter loads
Source = Literal["evidence", "exclude-rule", "override", "default", "dequantize"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModuleDecision(_Frozen):
    module: str
    scheme: Scheme
    source: Source
    reason: str
    checkpoint_tensors: tuple[str, ...]
    # Not part of the JSON: what the tensors are and which group/kind the module is,
    # for the CLI table and the adapter's checks.
    stored: StoredFormat = Field(default=StoredFormat.UNKNOWN, exclude=True)
    kind: ModuleKind = Field(default=ModuleKind.LINEAR, exclude=True)
    group: Group | Literal[""] = Field(default="", exclude=True)
    # packed integers: bits and group size read from the shapes (the reason says them)
    layout: IntLayout | None = Field(default=None, exclude=True)


class Conflict(_Frozen):
    module: str
    message: str


class Plan(_Frozen):
    drafter: str
    mode: Literal["auto", "strict"]
    modules: tuple[ModuleDecision, ...]
    conflicts: tuple[Conflict, ...] = ()

    def decision(self, module: str) -> ModuleDecision | None:
        """The decision for one runtime prefix, or None if the plan does not cover it."""
        for m in self.modules:
            if m.module == module:
                return m
        return None

    def by_module(self) -> dict[str, ModuleDecision]:
        return {m.module: m for m in self.modules}

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=indent)

    def digest(self) -> str:
        """A stable hash of the plan's JSON (same plan in every process => same digest)."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    def summary(self) -> str:
        """One line: how many modules per scheme, how many unquantized by source, conflicts."""
        per: dict[str, int] = {}
        unq: dict[str, int] = {}
        for m in self.modules:
            per[m.scheme.value] = per.get(m.scheme.value, 0) + 1
            if m.scheme is Scheme.UNQUANTIZED:
                unq[m.source] = unq.get(m.source, 0) + 1
        schemes = ", ".join(f"{n} {s}" for s, n in sorted(per.items()))
        why = ", ".join(f"{n} by {s}" for s, n in sorted(unq.items()))
        return (f"{self.drafter}: {len(self.modules)} modules ({schemes}); "
                f"unquantized: {why or 'none'}; conflicts: {len(self.conflicts)}")
