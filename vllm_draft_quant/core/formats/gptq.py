"""GPTQ exports (AutoGPTQ, GPTQModel; AutoRound's ``auto_round:auto_gptq`` packing
writes the same tensors).

Config (``quantization_config``, ``quant_method`` ``gptq``; vLLM:
``auto_gptq.py:AutoGPTQConfig.from_config``): ``bits``, ``group_size`` (-1: per
channel), ``desc_act``, ``sym``, ``lm_head`` (quantized heads), ``dynamic`` and
``modules_in_block_to_quantize``.

``dynamic`` maps regexes to overrides (``gptq_utils.py:get_dynamic_override``): a
``-:`` key skips the modules it matches, a ``+:`` (or bare) key overrides ``bits`` /
``group_size`` / ``desc_act`` / ``sym`` for them; patterns are ``re.match``-ed and
the first key in the dict's order that matches decides. Here a ``-:`` key is an
exclusion whose pattern refuses whatever an earlier positive key matched (a negative
lookahead, so the rule set's decision stays order-free), and positive keys are target
groups in dict order ahead of a catch-all group.
``modules_in_block_to_quantize`` (nested lists flattened) lists substrings of the
modules that are quantized: a module containing none is unquantized.

Where vLLM's matcher differs from the producer's intent (the plan says which applies):

- GPTQModel matches ``dynamic`` against its own module names (the checkpoint's); vLLM
  matches the *runtime* prefix, so a rule written for ``mtp.layers.0`` misses a
  drafter that renames its layers (DeepSeek/GLM NextN heads ``...shared_head.head``
  are built as ``...head``).
- With no ``modules_in_block_to_quantize`` vLLM fills it from the safetensors headers
  (``AutoGPTQConfig.maybe_update_config``: every module with a non-float tensor), and
  checks it only for linears: routed experts (``get_moe_quant_method``) honour only
  ``dynamic``.
- vLLM 0.33 refuses ``desc_act: true`` with a group size
  (``normalize_and_validate_gptq_desc_act``); GPTQModel's static-groups exports
  (``desc_act: false``) still store a ``g_idx``.

Stored: ``qweight`` I32 [in*bits/32, out], ``qzeros`` I32 [in/g, out*bits/32],
``scales`` [in/g, out], ``g_idx`` I32 [in] (bits and group size from those shapes,
``_packed.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats._packed import (
    INT_DTYPES,
    bits_runtime_scheme,
    bits_scheme,
    gptq_layout,
    shapes_classifier,
    stored_builder,
)
from vllm_draft_quant.core.formats.base import (
    ConfigReading,
    Params,
    QuantFormat,
    TargetGroup,
    ordered_groups,
    rule_group,
)
from vllm_draft_quant.core.formats.transformers_style import not_converted
from vllm_draft_quant.core.rules import Rule, RuleSet, make_rules
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT", "bits_scheme", "dynamic_rules", "flatten", "group_of"]


def group_of(value: object) -> int | None:
    """A config's ``group_size`` as an int (-1: per channel), None when not an int."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def flatten(value: object) -> list[object]:
    if isinstance(value, list):
        return [x for v in value for x in flatten(v)]
    return [value]


def _pattern(key: str) -> str:
    return key[2:] if key[:2] in ("-:", "+:") else key


def dynamic_rules(dynamic: object, default: Scheme, origin: str, group: int | None = None
                  ) -> tuple[tuple[Rule, ...], tuple[TargetGroup, ...]]:
    """(exclusions, target groups) of a ``dynamic`` dict, in vLLM's first-match order."""
    if dynamic is None:
        return (), ()
    if not isinstance(dynamic, dict):
        raise ConfigError(f"{origin}: expected an object mapping '-:'/'+:' regexes to "
                          f"overrides, found {type(dynamic).__name__}; fix the field.")
    exclusions: list[Rule] = []
    groups: list[TargetGroup] = []
    earlier: list[str] = []  # positive patterns before this key
    for key, value in dynamic.items():
        where = f"{origin}[{key!r}]"
        if not isinstance(key, str):
            raise ConfigError(f"{where}: keys must be regex strings.")
        body = _pattern(key)
        guard = "".join(f"(?!(?:{p}))" for p in earlier)
        if key.startswith("-:"):
            text = f"-:{guard}(?:{body})" if guard else key
            exclusions += make_rules([text], grammar="gptq", origin=where)
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected an object of overrides (bits, group_size, "
                              f"desc_act, sym), found {type(value).__name__}.")
        make_rules([key], grammar="gptq", origin=where)  # refuse a bad pattern here
        scheme = bits_scheme(value["bits"]) if "bits" in value else default
        groups.append(rule_group(scheme, [f"+:{guard}(?:{body})"], grammar="gptq", origin=where,
                                 name=f"dynamic[{key!r}]",
                                 group_size=group_of(value.get("group_size", group))))
        earlier.append(body)
    return tuple(exclusions), tuple(groups)


def _in_block(q: Mapping[str, Any], origin: str) -> tuple[Rule, ...]:
    """``modules_in_block_to_quantize`` as one exclusion: names containing none of them."""
    raw = q.get("modules_in_block_to_quantize")
    if raw is None:
        return ()
    names = flatten(raw)
    if not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{origin}.modules_in_block_to_quantize: expected (lists of) "
                          "module name strings; fix the field.")
    if not names:
        return ()
    alts = "|".join(re.escape(str(n)) for n in names)
    return make_rules([f"-:(?!.*(?:{alts}))"], grammar="gptq",
                      origin=f"{origin}.modules_in_block_to_quantize")


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    scheme = bits_scheme(q.get("bits", 4))
    group = group_of(q.get("group_size"))
    excl, groups = dynamic_rules(q.get("dynamic"), scheme, f"{origin}.dynamic", group)
    rules = RuleSet((*excl, *_in_block(q, origin), *not_converted(q, origin)))
    # positive keys first, then every other module with the defaults
    groups = ordered_groups(groups, scheme, everything="+:.*", grammar="gptq",
                            origin=f"{origin} (every other module)", name="default",
                            group_size=group)
    return ConfigReading(scheme, rules, groups, quantizes_lm_heads=bool(q.get("lm_head", False)),
                         group_size=group)


def _classify(p: Params) -> StoredFormat | None:
    if p.get("qweight") in INT_DTYPES and "g_idx" in p:
        return StoredFormat.GPTQ_INT4
    if "qweight" in p and ("scales" in p or "qzeros" in p):
        return StoredFormat.INT4  # GPTQ or AWQ: only the shapes tell
    return None


FORMAT = QuantFormat(
    name="gptq",
    parse=_parse,
    classify=_classify,
    classify_shapes=shapes_classifier(StoredFormat.GPTQ_INT4, gptq_layout),
    quantizes_lm_heads=False,
    builds_stored=stored_builder(StoredFormat.GPTQ_INT4, "gptq", lambda layout: {
        "quant_method": "gptq", "bits": layout.bits, "group_size": layout.group_size,
        "desc_act": False, "sym": True, "lm_head": True}),
    vllm_names=("auto_gptq",),
    runtime_attrs=("weight_bits", "group_size"),
    runtime_scheme=bits_runtime_scheme,
)
