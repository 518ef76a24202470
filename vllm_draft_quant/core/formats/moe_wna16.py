"""vLLM's ``moe_wna16`` config: a GPTQ or AWQ checkpoint served with
``--quantization moe_wna16`` (``moe_wna16.py:MoeWNA16Config``), and the config vLLM's
GPTQ/AWQ configs fall back to for routed experts Marlin cannot take.

Config: the checkpoint's own GPTQ/AWQ ``quantization_config`` (``quant_method``
``gptq`` or ``awq``; a config whose method is ``moe_wna16`` is read the same way when
it carries ``linear_quant_method``). Linears are delegated to vLLM's GPTQ/AWQ config
(so GPTQ ``dynamic`` applies to them); routed experts take ``MoeWNA16Method``, which
under ``gptq`` skips *nothing* (``modules_to_not_convert`` is ``[]``, ``dynamic`` is
not consulted) and under ``awq`` skips ``modules_to_not_convert`` by substring. The
plan reads the producer's intent (``gptq.py`` / ``awq.py``); for experts under ``gptq``
that is where vLLM's matcher and the intent part.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats import awq, gptq
from vllm_draft_quant.core.formats._packed import bits_runtime_scheme
from vllm_draft_quant.core.formats.base import ConfigReading, QuantFormat
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT"]


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    linear = str(q.get("linear_quant_method", "gptq")).lower()
    if linear == "gptq":
        return gptq.FORMAT.parse(q, origin)
    if linear in ("awq", "awq_marlin"):
        return awq.FORMAT.parse(q, origin)
    raise ConfigError(f"{origin}.linear_quant_method: {linear!r}; moe_wna16 reads only gptq "
                      "and awq checkpoints.")


FORMAT = QuantFormat(
    name="moe_wna16",
    parse=_parse,
    quantizes_lm_heads=False,
    runtime_attrs=("weight_bits", "group_size", "linear_quant_method"),
    runtime_scheme=bits_runtime_scheme,
)
