"""Stored format of a checkpoint module, from its tensors' header facts only.

`classify` looks at the parameter names and dtypes a module stores (never at
tensor data) and returns a `StoredFormat`; which layout is which format's is
each format module's answer (`vllm_draft_quant.core.formats.classify`).
Unknown layouts are reported as ``unknown`` with the tensors named, never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.schemes import IntLayout, StoredFormat

__all__ = ["ModuleEvidence", "classify", "group_by_module"]


@dataclass(frozen=True)
class ModuleEvidence:
    """The stored format of one checkpoint module, and the tensors that show it."""

    module: str
    format: StoredFormat
    tensors: tuple[str, ...]  # full tensor names
    detail: str  # e.g. "weight U8, weight_scale F8_E4M3, weight_scale_2 F32"
    layout: IntLayout | None = None  # packed integers: bits and group size from the shapes


def group_by_module(names: Iterable[str]) -> dict[str, list[str]]:
    """Tensor names grouped by module (the name without its last component)."""
    out: dict[str, list[str]] = {}
    for n in names:
        mod, _, _ = n.rpartition(".")
        out.setdefault(mod, []).append(n)
    return out


def classify(module: str, dtypes: Mapping[str, str],
             shapes: Mapping[str, tuple[int, ...]] | None = None) -> ModuleEvidence:
    """Classify one module from ``{tensor name: safetensors dtype}`` (and, when given,
    ``{tensor name: shape}``, which tells GPTQ from AWQ and gives bits and group size)."""
    params = {n.rpartition(".")[2]: d for n, d in dtypes.items()}
    shp = {n.rpartition(".")[2]: tuple(s) for n, s in (shapes or {}).items() if n in dtypes}
    fmt, layout = formats.classify_layout(params, shp)
    detail = ", ".join(f"{p} {d}" + (f" {list(shp[p])}" if p in shp and layout else "")
                       for p, d in sorted(params.items()))
    if layout is not None:
        detail = f"{fmt}: {layout} ({detail})"
    return ModuleEvidence(module, fmt, tuple(sorted(dtypes)), detail, layout)
