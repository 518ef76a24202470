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
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vllm_draft_quant.core.schemes import Group, IntLayout, ModuleKind, Scheme, StoredFormat

__all__ = ["PLAN_SCHEMA_VERSION", "Conflict", "ModuleDecision", "Plan", "Source", "precision_label"]

#: version of the plan JSON (1: drafter/mode/modules/conflicts; 2: + stored, layer,
#: checkpoint_file, cause, handled, warnings)
PLAN_SCHEMA_VERSION = 2

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


_LABELS = {
    Scheme.NVFP4: "NVFP4", Scheme.FP8: "FP8", Scheme.FP8_BLOCK: "FP8-block",
    Scheme.MXFP4: "MXFP4", Scheme.INT4: "INT4 w/ group", Scheme.UNKNOWN: "unknown",
}
_DTYPES = {"BF16": "BF16", "F16": "FP16", "F32": "FP32"}


def precision_label(scheme: Scheme, weight_dtype: str = "") -> str:
    """``scheme`` as users say it; unquantized as its stored dtype (BF16 when unknown)."""
    if scheme is Scheme.UNQUANTIZED:
        return _DTYPES.get(weight_dtype, "BF16")
    return _LABELS[scheme]


class Plan(_Frozen):
    drafter: str
    mode: Literal["auto", "strict"]
    modules: tuple[ModuleDecision, ...]
    conflicts: tuple[Conflict, ...] = ()
    warnings: tuple[str, ...] = ()

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
