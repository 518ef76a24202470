"""Quantization schemes a draft module can be planned with, and stored formats.

A *scheme* is what the plan decides (what vLLM must build); a *stored format*
is what the checkpoint's tensors are (what the evidence says). Several stored
formats share one scheme: ModelOpt NVFP4 and compressed-tensors NVFP4 are both
``nvfp4``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Literal

__all__ = ["DEQUANTIZABLE", "GROUPS", "Group", "IntLayout", "ModuleKind", "Scheme",
           "StoredFormat"]

#: how users and the factory talk about the parts of a draft layer
Group = Literal["attn", "mlp", "head"]
GROUPS: tuple[Group, ...] = ("attn", "mlp", "head")


class Scheme(str, enum.Enum):
    """The precision a draft module is built with."""

    UNQUANTIZED = "unquantized"
    NVFP4 = "nvfp4"
    FP8 = "fp8"
    FP8_BLOCK = "fp8_block"
    MXFP4 = "mxfp4"
    INT4 = "int4"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class StoredFormat(str, enum.Enum):
    """The layout a module's tensors have in the checkpoint."""

    UNQUANTIZED = "unquantized"  # bf16 / fp16 / fp32, no scales
    MODELOPT_NVFP4 = "modelopt-nvfp4"
    MODELOPT_FP8 = "modelopt-fp8"  # also compressed-tensors float-quantized
    FP8_BLOCK = "fp8-block"  # weight_scale_inv (DeepSeek native)
    #: weight F8_E4M3 + weight_scale per block, [out/b, in/b] or ModelOpt's [out/b, 1, in/b, 1]
    #: (ModelOpt FP8_PB_WO, compressed-tensors ``block`` strategy)
    FP8_BLOCK_SCALE = "fp8-block-weight-scale"
    CT_NVFP4 = "compressed-tensors-nvfp4"
    MXFP4 = "mxfp4"  # Quark, compressed-tensors mxfp4-pack-quantized
    INT4 = "int4"  # GPTQ / AWQ layout not told apart (dtypes only, no shapes)
    GPTQ_INT4 = "gptq-int4"  # qweight [in*b/32, out], qzeros, scales [in/g, out], g_idx
    AWQ_INT4 = "awq-int4"  # qweight [in, out*b/32], qzeros, scales [in/g, out]
    CT_WNA16 = "compressed-tensors-wna16"  # weight_packed [out, in*b/32], weight_scale [out, in/g]
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value

    @property
    def scheme(self) -> Scheme:
        return _FORMAT_TO_SCHEME[self]

    @property
    def two_per_byte(self) -> bool:
        """4-bit floats packed two a byte along the last dimension (its width is half)."""
        return self in _TWO_PER_BYTE


_FORMAT_TO_SCHEME = {
    StoredFormat.UNQUANTIZED: Scheme.UNQUANTIZED,
    StoredFormat.MODELOPT_NVFP4: Scheme.NVFP4,
    StoredFormat.CT_NVFP4: Scheme.NVFP4,
    StoredFormat.MODELOPT_FP8: Scheme.FP8,
    StoredFormat.FP8_BLOCK: Scheme.FP8_BLOCK,
    StoredFormat.FP8_BLOCK_SCALE: Scheme.FP8_BLOCK,
    StoredFormat.MXFP4: Scheme.MXFP4,
    StoredFormat.INT4: Scheme.INT4,
    StoredFormat.GPTQ_INT4: Scheme.INT4,
    StoredFormat.AWQ_INT4: Scheme.INT4,
    StoredFormat.CT_WNA16: Scheme.INT4,
    StoredFormat.UNKNOWN: Scheme.UNKNOWN,
}

#: stored formats whose tensors the adapter can dequantize exactly into a plain layer's
#: unquantized weight (``adapter/dequant.py``: FP8 weight x scale, per tensor, channel or
#: block; NVFP4 with vLLM's own reference dequantization)
DEQUANTIZABLE = frozenset({StoredFormat.MODELOPT_FP8, StoredFormat.MODELOPT_NVFP4,
                           StoredFormat.CT_NVFP4, StoredFormat.FP8_BLOCK})

_TWO_PER_BYTE = frozenset({StoredFormat.MODELOPT_NVFP4, StoredFormat.CT_NVFP4, StoredFormat.MXFP4})


@dataclass(frozen=True)
class IntLayout:
    """Bits and group size of a packed integer layout, read from the tensors' shapes.

    ``group_size`` -1: one scale per output channel. ``zero_point``: the layout stores
    zero points (GPTQ and AWQ always do; compressed-tensors only when asymmetric).
    ``act_order``: a ``g_idx`` is stored (GPTQ activation order or static groups).
    """

    bits: int | None  # None: the headers do not fix it (the config's bits decide)
    group_size: int | None
    zero_point: bool
    act_order: bool = False

    def __str__(self) -> str:
        b = "bits from the config" if self.bits is None else f"{self.bits}-bit"
        g = ("group from the config" if self.group_size is None
             else "channel" if self.group_size == -1 else f"group {self.group_size}")
        return f"{b}, {g}" + (", zero points" if self.zero_point else "") + (
            ", g_idx" if self.act_order else "")


class ModuleKind(str, enum.Enum):
    """What vLLM builds for a draft module, which decides if it can be quantized."""

    LINEAR = "linear"  # a LinearBase subclass: gets a quant method
    EXPERTS = "experts"  # fused MoE experts (w13 / w2): gets a quant method
    LM_HEAD = "lm_head"  # ParallelLMHead: gets a quant method
    FIXED = "fixed"  # a vLLM layer the drafter always builds unquantized (routers)
    PLAIN = "plain"  # torch.nn.Linear (e.g. eh_proj): never quantizable

    @property
    def quantizable(self) -> bool:
        return self not in (ModuleKind.PLAIN, ModuleKind.FIXED)
