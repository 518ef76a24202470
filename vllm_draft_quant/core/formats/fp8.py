"""vLLM's ``fp8`` config, as DeepSeek's native FP8 exports write it.

Config: ``quant_method`` ``fp8``; ``weight_block_size`` (e.g. ``[128, 128]``)
makes it block-wise; exclusions in ``modules_to_not_convert``/``ignored_layers``
(see ``transformers_style.py``). Stored block FP8: ``weight`` F8_E4M3 +
``weight_scale_inv`` per block. vLLM's ``fp8.py`` quantizes only linear and MoE
layers: LM heads stay unquantized (DeepSeek keeps ``lm_head`` and
``shared_head.head`` BF16 with no ignore list).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import (
    FP8_DTYPES,
    ConfigReading,
    Params,
    QuantFormat,
    VllmConfigSpec,
)
from vllm_draft_quant.core.formats.transformers_style import not_converted
from vllm_draft_quant.core.rules import RuleSet
from vllm_draft_quant.core.schemes import Scheme, StoredFormat

__all__ = ["FORMAT"]


def _scheme(weight_block_size: object) -> Scheme:
    return Scheme.FP8_BLOCK if weight_block_size else Scheme.FP8


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    return ConfigReading(_scheme(q.get("weight_block_size")), RuleSet(not_converted(q, origin)))


def _classify(p: Params) -> StoredFormat | None:
    if p.get("weight") in FP8_DTYPES and "weight_scale_inv" in p:
        return StoredFormat.FP8_BLOCK
    return None


def _runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    return _scheme(attrs.get("weight_block_size"))


FORMAT = QuantFormat(
    name="fp8",
    parse=_parse,
    classify=_classify,
    quantizes_lm_heads=False,
    builds={Scheme.FP8_BLOCK: VllmConfigSpec("fp8", {
        "quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128]})},
    runtime_attrs=("weight_block_size",),
    runtime_scheme=_runtime_scheme,
)
