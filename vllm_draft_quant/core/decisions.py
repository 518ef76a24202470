"""The resolver's answer as plain data: per drafter module, the scheme and why.

`core.resolver.decide` returns `Decisions`: frozen dataclasses, no pydantic. The
public `core.plan.Plan` (pydantic: the plan JSON, the API, the adapter) is built from
them with `Plan.of`, field for field (`tests/unit/test_plan.py` checks that the two keep
the same fields). ``fix`` and ``graft`` read `Decisions` directly, so a run of either
never imports pydantic (most of a cold start; `tests/unit/test_imports.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from vllm_draft_quant.core.schemes import Group, IntLayout, ModuleKind, Scheme, StoredFormat

__all__ = ["PLAN_SCHEMA_VERSION", "ConflictRecord", "Decision", "Decisions", "Mode", "Source",
           "precision_label"]

#: version of the plan JSON (1: drafter/mode/modules/conflicts; 2: + stored, layer,
#: checkpoint_file, cause, handled, warnings)
PLAN_SCHEMA_VERSION = 2

Mode = Literal["auto", "strict"]

#: why a module got its scheme; ``dequantize``: vLLM builds it as a layer that cannot
#: hold quantized weights (``torch.nn.Linear``, or a vLLM layer built without a quant
#: config) but the checkpoint stores it quantized, so its stored tensors are
#: dequantized exactly into the layer's unquantized weight while the drafter loads
Source = Literal["evidence", "exclude-rule", "override", "default", "dequantize"]


@dataclass(frozen=True)
class Decision:
    """One runtime module's decision (`core.plan.ModuleDecision` has the same fields)."""

    module: str
    scheme: Scheme
    source: Source
    reason: str
    checkpoint_tensors: tuple[str, ...]
    stored: StoredFormat = StoredFormat.UNKNOWN
    layer: int | None = None  # draft layer k (0 = the first MTP/NextN layer); None: shared
    checkpoint_file: str | None = None  # the shard holding its weight (set by `checkpoint`)
    weight_dtype: str = ""
    kind: ModuleKind = ModuleKind.LINEAR
    group: Group | Literal[""] = ""
    layout: IntLayout | None = None


@dataclass(frozen=True)
class ConflictRecord:
    """One disagreement (`core.plan.Conflict` has the same fields)."""

    module: str
    message: str
    cause: str = ""
    handled: bool = False


@dataclass(frozen=True)
class Decisions:
    """Every module's decision, the conflicts and the warnings (`core.plan.Plan`'s fields)."""

    drafter: str
    mode: Mode
    modules: tuple[Decision, ...]
    conflicts: tuple[ConflictRecord, ...] = ()
    warnings: tuple[str, ...] = ()


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
