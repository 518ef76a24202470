"""Stored format of a checkpoint module, from its tensors' header facts only.

`classify` looks at the parameter names and dtypes a module stores (never at
tensor data) and returns a `StoredFormat`. Unknown layouts are reported as
``unknown`` with the tensors named, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vllm_draft_quant.core.schemes import StoredFormat

__all__ = ["ModuleEvidence", "classify", "group_by_module"]

_FLOAT = {"BF16", "F16", "F32", "F64"}
_FP8 = {"F8_E4M3", "F8_E5M2"}


@dataclass(frozen=True)
class ModuleEvidence:
    """The stored format of one checkpoint module, and the tensors that show it."""

    module: str
    format: StoredFormat
    tensors: tuple[str, ...]  # full tensor names
    detail: str  # e.g. "weight U8, weight_scale F8_E4M3, weight_scale_2 F32"


def group_by_module(names: Iterable[str]) -> dict[str, list[str]]:
    """Tensor names grouped by module (the name without its last component)."""
    out: dict[str, list[str]] = {}
    for n in names:
        mod, _, _ = n.rpartition(".")
        out.setdefault(mod, []).append(n)
    return out


def classify(module: str, dtypes: Mapping[str, str]) -> ModuleEvidence:
    """Classify one module from ``{tensor name: safetensors dtype}``."""
    params = {n.rpartition(".")[2]: d for n, d in dtypes.items()}
    detail = ", ".join(f"{p} {d}" for p, d in sorted(params.items()))
    fmt = _format(params)
    return ModuleEvidence(module, fmt, tuple(sorted(dtypes)), detail)


def _format(p: Mapping[str, str]) -> StoredFormat:
    w = p.get("weight")
    if "weight_packed" in p:
        if "weight_global_scale" in p:
            return StoredFormat.CT_NVFP4
        if p["weight_packed"] in ("I32", "U32", "I8", "U8"):
            return StoredFormat.INT4
        return StoredFormat.UNKNOWN
    if "qweight" in p and ("scales" in p or "qzeros" in p):
        return StoredFormat.INT4
    if w is None:
        return StoredFormat.UNKNOWN
    if w in _FP8:
        if "weight_scale_inv" in p:
            return StoredFormat.FP8_BLOCK
        if "weight_scale" in p:
            return StoredFormat.MODELOPT_FP8
        return StoredFormat.UNKNOWN  # FP8 data without any scale
    if w == "U8":
        scale = p.get("weight_scale")
        if scale in _FP8 and "weight_scale_2" in p:
            return StoredFormat.MODELOPT_NVFP4
        if scale in ("U8", "F8_E8M0"):
            return StoredFormat.MXFP4
        return StoredFormat.UNKNOWN
    if w in _FLOAT:
        quant_params = {"weight_scale", "weight_scale_2", "weight_scale_inv", "weight_global_scale",
                        "input_scale", "input_global_scale"}
        return StoredFormat.UNKNOWN if quant_params & p.keys() else StoredFormat.UNQUANTIZED
    return StoredFormat.UNKNOWN
