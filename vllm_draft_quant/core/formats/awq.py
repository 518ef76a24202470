"""AWQ exports (AutoAWQ, llm-awq; AutoRound's ``auto_round:auto_awq`` packing writes the
same tensors).

Config (``quant_method`` ``awq``; vLLM: ``auto_awq.py:AutoAWQConfig.from_config``):
``bits``/``w_bit``, ``group_size``/``q_group_size``, ``zero_point``, ``lm_head``,
``modules_to_not_convert``. vLLM matches ``modules_to_not_convert`` by substring
(``quant_utils.py:is_layer_skipped``, ``match_mode="substring"``) against runtime
prefixes, fused modules shard by shard; when the list is empty it fills it from the
safetensors headers (``AutoAWQConfig.maybe_update_config``: modules whose tensors are
all float). On the CPU platform ``awq`` stays ``auto_awq`` and linears take
``AutoAWQMarlinLinearMethod`` (vLLM's CPU WNA16 kernel); routed experts the AWQ MoE
method, or ``moe_wna16``.

Stored: ``qweight`` I32 [in, out*bits/32], ``qzeros`` I32 [in/g, out*bits/32],
``scales`` [in/g, out] (``_packed.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats._packed import (
    awq_layout,
    bits_runtime_scheme,
    bits_scheme,
    shapes_classifier,
    stored_builder,
)
from vllm_draft_quant.core.formats.base import ConfigReading, QuantFormat
from vllm_draft_quant.core.formats.gptq import group_of
from vllm_draft_quant.core.formats.transformers_style import not_converted
from vllm_draft_quant.core.rules import RuleSet
from vllm_draft_quant.core.schemes import StoredFormat

__all__ = ["FORMAT"]


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    bits = q.get("bits", q.get("w_bit", 4))
    return ConfigReading(bits_scheme(bits), RuleSet(not_converted(q, origin)),
                         quantizes_lm_heads=bool(q.get("lm_head", False)),
                         group_size=group_of(q.get("group_size", q.get("q_group_size"))))


FORMAT = QuantFormat(
    name="awq",
    parse=_parse,
    classify_shapes=shapes_classifier(StoredFormat.AWQ_INT4, awq_layout),
    quantizes_lm_heads=False,
    builds_stored=stored_builder(StoredFormat.AWQ_INT4, "awq", lambda layout: {
        "quant_method": "awq", "bits": layout.bits, "group_size": layout.group_size,
        "zero_point": True, "lm_head": True, "modules_to_not_convert": None}),
    vllm_names=("auto_awq",),
    runtime_attrs=("weight_bits", "group_size"),
    runtime_scheme=bits_runtime_scheme,
)
