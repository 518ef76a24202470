"""Bits and group size of packed-integer layouts, from header shapes alone.

Integers are packed ``32 // bits`` to an int32. Only the last two dimensions count
(stacked experts add a leading ``[E]``). Each reader returns None when the shapes do
not fit its layout, so a checkpoint whose shapes contradict each other is reported as
unknown rather than guessed.

=================  ===========================  ================  =======================
layout             packed weight                scales            bits from
=================  ===========================  ================  =======================
GPTQ               qweight [in*b/32, out]       scales [in/g,     qzeros [in/g, out*b/32]
                                                out]
AWQ                qweight [in, out*b/32]       scales [in/g,     qweight / qzeros columns
                                                out]
compressed-tensors weight_packed [out, in*b/32] weight_scale      weight_zero_point
(pack-quantized)                                [out, in/g]       [out*b/32, in/g] if asym
=================  ===========================  ================  =======================

The GPTQ and AWQ format modules are built from the same three pieces here:
`shapes_classifier` (a reader above -> ``classify_shapes``), `stored_builder` (the vLLM
config for exactly that layout -> ``builds_stored``) and `bits_runtime_scheme` (a vLLM
config's ``weight_bits`` -> ``runtime_scheme``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import Params, Shapes, VllmConfigSpec
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat

__all__ = ["INT_DTYPES", "awq_layout", "bits_runtime_scheme", "bits_scheme", "ct_layout",
           "gptq_layout", "shapes_classifier", "stored_builder"]

INT_DTYPES = frozenset({"I32", "U32"})
_BITS = (2, 4, 8)


def _two(shapes: Shapes, name: str) -> tuple[int, int] | None:
    s = shapes.get(name)
    if s is None or len(s) < 2 or any(d <= 0 for d in s):
        return None
    return s[-2], s[-1]


def _bits(packed: int, full: int) -> int | None:
    """b with ``packed == full * b / 32``."""
    for b in _BITS:
        if packed * 32 == full * b:
            return b
    return None


def _group(inp: int, groups: int) -> int | None:
    if groups == 1:
        return -1
    return inp // groups if inp % groups == 0 else None


def gptq_layout(p: Params, shapes: Shapes) -> IntLayout | None:
    qw, sc, qz = _two(shapes, "qweight"), _two(shapes, "scales"), _two(shapes, "qzeros")
    if p.get("qweight") not in INT_DTYPES or qw is None or sc is None or qz is None:
        return None
    if qw[1] != sc[1] or qz[0] != sc[0]:
        return None
    bits = _bits(qz[1], sc[1])
    if bits is None:
        return None
    inp = qw[0] * 32 // bits
    g_idx = shapes.get("g_idx")
    if g_idx is not None and tuple(g_idx[-1:]) != (inp,):
        return None
    group = _group(inp, sc[0])
    return None if group is None else IntLayout(bits, group, True, g_idx is not None)


def awq_layout(p: Params, shapes: Shapes) -> IntLayout | None:
    qw, sc, qz = _two(shapes, "qweight"), _two(shapes, "scales"), _two(shapes, "qzeros")
    if p.get("qweight") not in INT_DTYPES or "g_idx" in p or qw is None or sc is None or qz is None:
        return None
    if qw[1] == sc[1] or qz[1] != qw[1] or qz[0] != sc[0]:
        return None
    bits = _bits(qw[1], sc[1])
    group = _group(qw[0], sc[0])
    return None if bits is None or group is None else IntLayout(bits, group, True)


def ct_layout(p: Params, shapes: Shapes) -> IntLayout | None:
    wp, sc = _two(shapes, "weight_packed"), _two(shapes, "weight_scale")
    if p.get("weight_packed") not in INT_DTYPES or wp is None or sc is None or wp[0] != sc[0]:
        return None
    zp = _two(shapes, "weight_zero_point")
    if zp is None:
        # symmetric: no header fixes the bits (``weight_shape`` holds [out, in] as data);
        # read as 4-bit, the INT4 scheme this layout is planned as
        bits: int | None = 4
    else:
        bits = _bits(zp[0], wp[0]) if zp[1] == sc[1] else None
    if bits is None:
        return None
    group = _group(wp[1] * 32 // bits, sc[1])
    return None if group is None else IntLayout(bits, group, zp is not None)


# ------------------------------------------------------------------ format pieces
def bits_scheme(bits: object) -> Scheme:
    """The scheme of a packed-integer layout with ``bits`` (only 4-bit has one)."""
    return Scheme.INT4 if bits == 4 else Scheme.UNKNOWN


def bits_runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    """``runtime_scheme`` of a vLLM config whose ``weight_bits`` says the scheme."""
    return bits_scheme(attrs.get("weight_bits"))


def shapes_classifier(stored: StoredFormat, reader: Callable[[Params, Shapes], IntLayout | None]
                      ) -> Callable[[Params, Shapes], tuple[StoredFormat, IntLayout | None] | None]:
    """``classify_shapes`` of a format whose layout ``reader`` reads: ``stored`` with the
    layout, None when the shapes do not fit."""

    def classify_shapes(p: Params, shapes: Shapes) -> tuple[StoredFormat, IntLayout | None] | None:
        layout = reader(p, shapes)
        return None if layout is None else (stored, layout)

    return classify_shapes


def stored_builder(stored: StoredFormat, method: str,
                   config: Callable[[IntLayout], dict[str, Any]]
                   ) -> Callable[[StoredFormat, IntLayout | None], VllmConfigSpec | None]:
    """``builds_stored`` of a format: the vLLM config ``method`` with ``config(layout)`` for a
    module stored as ``stored`` whose bits the shapes gave, None for anything else."""

    def builds_stored(s: StoredFormat, layout: IntLayout | None) -> VllmConfigSpec | None:
        if s is not stored or layout is None or layout.bits is None:
            return None
        return VllmConfigSpec(method, config(layout))

    return builds_stored
