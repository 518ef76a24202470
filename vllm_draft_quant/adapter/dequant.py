"""Dequantize a plain layer's stored tensors while the drafter loads (issue 13, item 5).

Some drafters build a module as a layer that cannot hold quantized weights: a
``torch.nn.Linear`` (MiMo's ``input_proj``, the NextN ``eh_proj`` of DeepSeek, GLM and
GLM-5, EAGLE ``fc``) or a vLLM layer built without a quant config (MiMo-V2's
``eh_proj``). Exports that quantize every linear layer store them quantized, and stock
vLLM dies on the first scale tensor ("There is no module or parameter named
'...input_proj.input_scale'"), plugin or not. The plan marks such modules
``dequantize`` (``core/resolver.py``); this module turns their stored tensors into the
one unquantized ``weight`` the layer has, exactly:

- FP8 (ModelOpt per-tensor, compressed-tensors per-tensor or per-channel):
  ``weight.float() * weight_scale`` (broadcast over rows); DeepSeek-native FP8 blocks:
  each ``weight_block_size`` block times its ``weight_scale_inv`` entry (the block size
  is the quant config's; without one, the load stops with an error naming the module);
- NVFP4 (ModelOpt: ``weight``, ``weight_scale`` per 16 inputs, ``weight_scale_2``;
  compressed-tensors: ``weight_packed``, ``weight_scale``, ``weight_global_scale``, the
  reciprocal of ModelOpt's): vLLM's own reference dequantization
  (``nvfp4_emulation_utils.py:dequantize_to_dtype``, unswizzled scales).

The result is float32; the layer's weight loader rounds it once to the model dtype.
Activation scales (``input_scale``, ``input_global_scale``) belong to a quantized
matmul that is not built, and are not passed on.
"""

from __future__ import annotations

from typing import Any

from vllm_draft_quant.core.schemes import StoredFormat

__all__ = ["AUX", "dequantize", "needed"]

#: per stored format: the tensor suffixes the dequantization needs
_NEEDS: dict[StoredFormat, frozenset[str]] = {
    StoredFormat.MODELOPT_FP8: frozenset({"weight", "weight_scale"}),
    StoredFormat.MODELOPT_NVFP4: frozenset({"weight", "weight_scale", "weight_scale_2"}),
    StoredFormat.CT_NVFP4: frozenset({"weight_packed", "weight_scale", "weight_global_scale"}),
    StoredFormat.FP8_BLOCK: frozenset({"weight", "weight_scale_inv"}),
}
#: every suffix a quantized linear may store besides the weight: not passed to the layer
AUX = frozenset({"weight", "weight_packed", "weight_scale", "weight_scale_2",
                 "weight_global_scale", "input_scale", "input_global_scale",
                 "weight_scale_inv", "weight_zero_point", "input_zero_point"})


def needed(fmt: StoredFormat) -> frozenset[str]:
    return _NEEDS[fmt]


def dequantize(fmt: StoredFormat, parts: dict[str, Any],
               block: tuple[int, int] | None = None) -> Any:
    """The float32 weight ``[out, in]`` the stored ``parts`` (suffix -> tensor) encode;
    ``block``: the FP8 block size (rows, columns) of ``FP8_BLOCK`` tensors."""
    import torch

    if fmt is StoredFormat.FP8_BLOCK:
        if block is None:
            raise ValueError("the quant config gives no weight_block_size")
        w = parts["weight"].to(torch.float32)
        s = parts["weight_scale_inv"].to(torch.float32)
        rows, cols = block
        if s.shape != (-(-w.shape[0] // rows), -(-w.shape[1] // cols)):
            raise ValueError(f"weight_scale_inv {tuple(s.shape)} does not tile weight "
                             f"{tuple(w.shape)} in {rows}x{cols} blocks")
        full = s.repeat_interleave(rows, 0).repeat_interleave(cols, 1)
        return w * full[: w.shape[0], : w.shape[1]]
    if fmt is StoredFormat.MODELOPT_FP8:
        w = parts["weight"].to(torch.float32)
        s = parts["weight_scale"].to(torch.float32)
        if s.numel() == 1:
            return w * s.reshape(())
        return w * s.reshape(-1, 1)  # per output channel
    from vllm_draft_quant.adapter import compat

    ref = compat.nvfp4_reference_dequant()
    if fmt is StoredFormat.MODELOPT_NVFP4:
        packed, scale = parts["weight"], parts["weight_scale"]
        global_scale = parts["weight_scale_2"].to(torch.float32).reshape(())
    else:
        packed, scale = parts["weight_packed"], parts["weight_scale"]
        global_scale = 1.0 / parts["weight_global_scale"].to(torch.float32).reshape(())
    return ref(packed, scale, global_scale, torch.float32, block_size=16, swizzle=False)
