"""Intel AutoRound exports (``quant_method`` ``auto-round``; vLLM reads them as ``inc``,
``inc/inc.py:INCConfig``, layer by layer in ``inc/config_parser.py:INCConfigParser``).

Config: ``bits``, ``group_size``, ``sym``, ``data_type`` (``int``), ``packing_format``
(``auto_round:auto_gptq`` by default, ``auto_round:auto_awq``; the tensors are then
GPTQ's or AWQ's, see ``gptq.py`` / ``awq.py``), ``block_name_to_quantize`` (alias
``to_quant_block_names``: the blocks that are quantized; AutoRound writes a list or a
comma-separated string) and ``extra_config`` (``{module name or regex: {bits,
group_size, sym, ...}}``; ``bits`` >= 16 keeps a module unquantized).

vLLM's order, for one runtime prefix: an ``extra_config`` key equal to it (or ending
``.<key>``) decides; else a prefix outside every ``block_name_to_quantize`` entry
(``startswith``) is unquantized, and LM heads are unquantized unless a key names them;
else a regex key (a key with a regex character, ``re.search``) decides; else the
defaults. Where the producer meant otherwise:

- a comma-separated ``block_name_to_quantize`` string is iterated by vLLM character by
  character (``any(layer_name.startswith(name) for name in ...)``), so every prefix
  starting with one of its letters counts as inside a block; the plan reads the
  producer's intent (the comma-separated names);
- names are matched against runtime prefixes, so keys written for checkpoint names a
  drafter renames (NextN ``shared_head.head`` -> ``head``) miss in vLLM.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import (
    ConfigReading,
    QuantFormat,
    TargetGroup,
    ordered_groups,
)
from vllm_draft_quant.core.formats.gptq import bits_scheme, group_of
from vllm_draft_quant.core.rules import Rule, RuleSet, make_rules
from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT", "block_names"]

_REGEX_CHARS = frozenset(r"*+?^$()[]{}|\\")


def block_names(q: Mapping[str, Any], origin: str) -> list[str] | None:
    """``block_name_to_quantize`` / ``to_quant_block_names`` as the producer meant it."""
    for key in ("block_name_to_quantize", "to_quant_block_names"):
        raw = q.get(key)
        if raw is None:
            continue
        if isinstance(raw, str):
            return [n.strip() for n in raw.split(",") if n.strip()]
        if isinstance(raw, list) and all(isinstance(n, str) for n in raw):
            return list(raw)
        raise ConfigError(f"{origin}.{key}: expected a list of block names or a "
                          f"comma-separated string, found {type(raw).__name__}.")
    return None


def _key_rule(key: str, sign: str, origin: str) -> Rule:
    """One ``extra_config`` key as vLLM matches it: exact/suffix, or ``re.search``."""
    if any(c in _REGEX_CHARS for c in key):
        text = f"{sign}.*?(?:{key})"
    else:
        text = f"{sign}(?:.*\\.)?{re.escape(key)}\\Z"
    return make_rules([text], grammar="gptq", origin=origin)[0]


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    dtype = str(q.get("data_type", "int"))
    scheme = bits_scheme(q.get("bits", 4)) if dtype == "int" else Scheme.UNKNOWN
    extra = q.get("extra_config") or {}
    if not isinstance(extra, dict):
        raise ConfigError(f"{origin}.extra_config: expected an object mapping module names "
                          f"or regexes to {{bits, group_size, sym}}, found {type(extra).__name__}.")
    excl: list[Rule] = []
    listed: list[TargetGroup] = []
    for key, cfg in extra.items():
        where = f"{origin}.extra_config[{key!r}]"
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where}: expected an object such as {{\"bits\": 16}}.")
        bits = cfg.get("bits", q.get("bits", 4))
        if isinstance(bits, int) and bits >= 16:
            excl.append(_key_rule(key, "-:", where))
        else:
            listed.append(TargetGroup(bits_scheme(bits), RuleSet([_key_rule(key, "+:", where)]),
                                      f"extra_config[{key!r}]",
                                      group_of(cfg.get("group_size", q.get("group_size")))))
    blocks = block_names(q, origin)
    if blocks:
        guard = "".join(f"(?!{r.text[2:]})" for g in listed for r in g.targets.rules)
        alts = "|".join(re.escape(b) for b in blocks)
        excl += make_rules([f"-:{guard}(?!(?:{alts}))"], grammar="gptq",
                           origin=f"{origin}.block_name_to_quantize")
    groups = ordered_groups(listed, scheme, everything="+:.*", grammar="gptq",
                            origin=f"{origin} (every other module)", name="default",
                            group_size=group_of(q.get("group_size")))
    heads = any(r.matches("lm_head") or r.matches("model.layers.0.shared_head.head")
                for g in listed for r in g.targets.rules)
    return ConfigReading(scheme, RuleSet(excl), groups, quantizes_lm_heads=heads,
                         group_size=group_of(q.get("group_size")))


def _runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    if attrs.get("extra_config") or attrs.get("data_type") != "int":
        return None  # per-layer: no single scheme
    return bits_scheme(attrs.get("weight_bits"))


FORMAT = QuantFormat(
    name="auto-round",
    quant_methods=("auto-round", "auto_round", "intel/auto-round", "inc"),
    parse=_parse,
    quantizes_lm_heads=False,
    vllm_names=("inc",),
    runtime_attrs=("weight_bits", "data_type", "extra_config"),
    runtime_scheme=_runtime_scheme,
)
