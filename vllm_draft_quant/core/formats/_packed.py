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
"""

from __future__ import annotations

from vllm_draft_quant.core.formats.base import Params, Shapes
from vllm_draft_quant.core.schemes import IntLayout

__all__ = ["INT_DTYPES", "awq_layout", "ct_layout", "gptq_layout"]

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
