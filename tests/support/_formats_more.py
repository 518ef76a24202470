"""More checkpoint formats for the factory: DeepSeek-native FP8 block and Quark MXFP4.

Registered with ``factory.py`` (producers ``fp8`` and ``quark``). Tensor layouts
(FINDINGS.md "Real checkpoint conventions"; DeepSeek-V3's and AMD's public exports):

==================  =========================================================
fp8 (block)         weight F8_E4M3 [out,in], weight_scale_inv F32
                    [ceil(out/32), ceil(in/128)]; no activation scale
                    (``activation_scheme: dynamic``)
quark mxfp4         weight U8 [out,in/2] (two E2M1 codes per byte),
                    weight_scale U8 [out,in/32] (E8M0 exponents)
==================  =========================================================

Stacked 3-D experts (Step-3.5's target MoE) get a leading ``[E]`` on every tensor.
FP8 blocks are ``weight_block_size: [32, 128]`` (real exports: ``[128, 128]``): the
tiny families' k/v projections are 64 rows, and vLLM loads a fused q/k/v scale shard
by shard, so every shard's rows must fill whole blocks; vLLM's CPU kernel needs
128-wide K blocks and N blocks a multiple of 32.

Exclusion lists, in each producer's own field and grammar:

- ``fp8``: ``modules_to_not_convert`` (the transformers FineGrainedFP8 field vLLM's
  ``Fp8Config`` reads, exact names in vLLM); a wildcard becomes its literal stem
  (``model.layers.2*`` -> ``model.layers.2``), the substring form transformers reads.
- ``quark``: ``exclude``, exact names or ``re:`` regexes.

vLLM's ``fp8`` and ``quark`` configs never build a quantized ``ParallelLMHead``, so
`head_stays_bf16` tells the factory to keep LM heads BF16 (and excluded) for them
(``HEADS_NEVER_QUANTIZED``; compressed-tensors heads are the factory's
usual layout, see ``factory.py``).
numpy only (no torch, no vllm).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

from vllm_draft_quant.demo import tensors as T

__all__ = [
    "BLOCK",
    "HEADS_NEVER_QUANTIZED",
    "MORE_PRODUCERS",
    "PRODUCER_SCHEMES",
    "head_stays_bf16",
    "quant_config",
    "quant_tensors",
]

BLOCK = (32, 128)  # (rows of out, columns of in) per scale
MXFP4_GROUP = 32
#: producer -> the schemes it writes
PRODUCER_SCHEMES: dict[str, tuple[str, ...]] = {
    "modelopt": ("nvfp4", "fp8"),
    "compressed-tensors": ("nvfp4", "fp8", "int4"),
    "fp8": ("fp8_block",),
    "quark": ("mxfp4",),
    "gptq": ("int4",),
    "awq": ("int4",),
    "auto-round": ("int4",),
}
MORE_PRODUCERS = ("fp8", "quark")
#: producers whose vLLM config cannot build a quantized ParallelLMHead
HEADS_NEVER_QUANTIZED = ("fp8", "quark")
_LM_HEAD_SUFFIXES = ("shared_head.head", "shared_head.output")


def head_stays_bf16(producer: str, linear_name: str) -> bool:
    """Whether an MTP LM head must stay BF16 because ``producer``'s vLLM config cannot
    quantize a ParallelLMHead (``mtp.fc`` of Qwen drafters is a linear, not a head)."""
    return producer in HEADS_NEVER_QUANTIZED and linear_name.endswith(_LM_HEAD_SUFFIXES)


def _e8m0_scales(rng: Any, shape: tuple[int, ...]) -> T.RawTensor:
    """E8M0 exponents 2^-8 .. 2^-4 (biased 119..123): finite, positive."""
    n = math.prod(shape)
    return T.RawTensor("U8", shape, rng.integers(119, 124, size=n, dtype="uint8").tobytes())


def quant_tensors(
    name: str, out: int, inp: int, lead: tuple[int, ...], fmt: str, seed: int
) -> Iterator[tuple[str, T.RawTensor]]:
    """The tensors of linear ``name`` [*lead, out, inp] stored as ``fmt``."""

    def rng(suffix: str) -> Any:
        return T.rng_for(seed, f"{name}.{suffix}")

    if fmt == "fp8_block":
        yield f"{name}.weight", T.e4m3_weight(rng("weight"), (*lead, out, inp))
        blocks = (*lead, -(-out // BLOCK[0]), -(-inp // BLOCK[1]))
        values = rng("weight_scale_inv").uniform(1e-4, 4e-4, size=math.prod(blocks))
        yield f"{name}.weight_scale_inv", T.f32(values, blocks)
    elif fmt == "mxfp4":
        if inp % MXFP4_GROUP:
            raise ValueError(f"{name}: input size {inp} is not a multiple of {MXFP4_GROUP}")
        yield f"{name}.weight", T.nvfp4_packed(rng("weight"), (*lead, out, inp // 2))
        yield f"{name}.weight_scale", _e8m0_scales(rng("weight_scale"), (*lead, out, inp // 32))
    else:
        raise ValueError(f"{name}: format {fmt!r} is not one of fp8_block, mxfp4")


def _to_regex(pattern: str) -> str:
    if "*" not in pattern:
        return pattern
    return "re:" + ".*".join(re.escape(part) for part in pattern.split("*"))


def quant_config(producer: str, exclusions: list[str]) -> dict[str, Any]:
    """``config.json`` ``quantization_config`` for ``producer`` (exclusions as written)."""
    if producer == "fp8":
        qc: dict[str, Any] = {
            "quant_method": "fp8",
            "fmt": "e4m3",
            "activation_scheme": "dynamic",
            "weight_block_size": list(BLOCK),
        }
        if exclusions:
            qc["modules_to_not_convert"] = [e.rstrip("*") for e in exclusions]
        return qc
    if producer == "quark":
        mx = {
            "dtype": "fp4",
            "qscheme": "per_group",
            "group_size": MXFP4_GROUP,
            "ch_axis": -1,
            "observer_cls": "PerBlockMXObserver",
            "round_method": "half_even",
            "scale_calculation_mode": "even",
            "scale_format": "e8m0",
            "scale_type": "float",
            "symmetric": None,
        }
        return {
            "quant_method": "quark",
            "quant_mode": "eager_mode",
            "version": "0.9",
            "algo_config": None,
            "global_quant_config": {
                "weight": {**mx, "is_dynamic": False},
                "input_tensors": {**mx, "is_dynamic": True},
                "output_tensors": None,
                "bias": None,
                "target_device": None,
            },
            "layer_quant_config": {},
            "layer_type_quant_config": {},
            "exclude": [_to_regex(e) for e in exclusions],
            "export": {
                "kv_cache_group": [],
                "min_kv_scale": 0.0,
                "pack_method": "reorder",
                "weight_format": "real_quantized",
                "weight_merge_groups": None,
            },
            "softmax_quant_spec": None,
        }
    raise ValueError(f"producer {producer!r} is not one of {MORE_PRODUCERS}")
