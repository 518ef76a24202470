"""The plan: per drafter runtime module, the scheme to build it with, and why.

`Plan` is immutable and serialises to exactly this JSON (``Plan.to_json``; ``plan
--json`` wraps it with the schema and tool versions, see README "JSON output")::

    {"drafter": "<vLLM draft architecture>", "mode": "auto|strict",
     "modules": [{"module": "<runtime prefix>", "scheme": "...", "source": "...",
                  "reason": "...", "checkpoint_tensors": ["..."],
                  "stored": "<stored format>", "layer": <draft layer k or null>,
                  "checkpoint_file": "<shard of its weight, or null>"}],
     "conflicts": [{"module": "...", "message": "...", "cause": "...", "handled": bool}],
     "warnings": ["..."]}

Keys are only ever added (version 1 had the first five module keys and the first two
conflict keys); `PLAN_SCHEMA_VERSION` counts the additions.

The resolver decides in plain dataclasses (`core.decisions`, no pydantic); `Plan.of`
turns its answer into this model.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import fields
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_draft_quant.core.decisions import (
    PLAN_SCHEMA_VERSION,
    Decisions,
    Source,
    precision_label,
)
from vllm_draft_quant.core.schemes import Group, IntLayout, ModuleKind, Scheme, StoredFormat

__all__ = ["PLAN_SCHEMA_VERSION", "Conflict", "ModuleDecision", "Plan", "Source", "precision_label"]


def _fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields by name, values as they are (no deep copy)."""
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ModuleDecision(_Frozen):
    module: str
    scheme: Scheme
    source: Source
    reason: str
    checkpoint_tensors: tuple[str, ...]
    stored: StoredFormat = StoredFormat.UNKNOWN
    layer: int | None = None  # draft layer k (0 = the first MTP/NextN layer); None: shared
    checkpoint_file: str | None = None  # the shard holding its weight (set by `checkpoint`)
    # Not part of the JSON: the stored weight dtype and which group/kind the module is,
    # for the CLI table and the adapter's checks.
    weight_dtype: str = Field(default="", exclude=True)
    kind: ModuleKind = Field(default=ModuleKind.LINEAR, exclude=True)
    group: Group | Literal[""] = Field(default="", exclude=True)
    # packed integers: bits and group size read from the shapes (the reason says them)
    layout: IntLayout | None = Field(default=None, exclude=True)

    @property
    def stored_label(self) -> str:
        """The stored precision in the words users use (BF16, FP8-block, NVFP4, ...)."""
        return precision_label(self.stored.scheme, self.weight_dtype)

    @property
    def decided_label(self) -> str:
        """The precision the module is built with, in the same words."""
        dtype = self.weight_dtype if self.stored is StoredFormat.UNQUANTIZED else ""
        return precision_label(self.scheme, dtype)


class Conflict(_Frozen):
    module: str
    message: str
    #: the module-independent part of ``message`` (one root cause, shown once by `plan`)
    cause: str = ""
    #: True when the plugin already resolves it (auto mode: built as the tensors are stored)
    handled: bool = False


class Plan(_Frozen):
    drafter: str
    mode: Literal["auto", "strict"]
    modules: tuple[ModuleDecision, ...]
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def of(cls, decisions: Decisions) -> Plan:
        """The plan model of the resolver's plain answer (`core.resolver.decide`)."""
        return cls(drafter=decisions.drafter, mode=decisions.mode,
                   modules=tuple(ModuleDecision(**_fields(m)) for m in decisions.modules),
                   conflicts=tuple(Conflict(**_fields(c)) for c in decisions.conflicts),
                   warnings=decisions.warnings)

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
