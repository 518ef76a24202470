"""Configs in transformers' style: MXFP4, and any ``quant_method`` no other format reads
(GPTQ and AWQ have modules of their own, ``gptq.py`` and ``awq.py``).

Exclusions: ``modules_to_not_convert`` (substring containment, as transformers
checks it) and vLLM's ``ignored_layers`` (exact names). vLLM quantizes no LM
head under ``mxfp4``. A method outside the registry (``bitsandbytes``,
``torchao``, ...) is read as ``other``: its exclusions count, its scheme is
``unknown``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import ConfigReading, QuantFormat
from vllm_draft_quant.core.rules import Rule, RuleSet, make_rules
from vllm_draft_quant.core.schemes import Scheme

__all__ = ["MXFP4", "OTHER", "not_converted"]


def not_converted(q: Mapping[str, Any], origin: str) -> tuple[Rule, ...]:
    """The rules of ``modules_to_not_convert`` and ``ignored_layers``."""
    rules = make_rules(q.get("modules_to_not_convert"), grammar="substring",
                       origin=f"{origin}.modules_to_not_convert")
    return rules + make_rules(q.get("ignored_layers"), grammar="exact",
                              origin=f"{origin}.ignored_layers")


def _parser(scheme: Scheme) -> Callable[[Mapping[str, Any], str], ConfigReading]:
    def parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
        return ConfigReading(scheme, RuleSet(not_converted(q, origin)))

    return parse


MXFP4 = QuantFormat(name="mxfp4", parse=_parser(Scheme.MXFP4),
                    quantizes_lm_heads=False)
#: the fallback for a ``quant_method`` no format in the registry reads
OTHER = QuantFormat(name="other", parse=_parser(Scheme.UNKNOWN))
