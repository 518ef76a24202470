"""AMD Quark exports.

Config: ``quantization_config`` with ``quant_method`` ``quark``: the global
weight dtype in ``global_quant_config.weight.dtype``, exclusions in ``exclude``
(exact names, globs, ``re:`` regexes). Stored MXFP4: ``weight`` U8 (two values
a byte) + ``weight_scale`` U8/E8M0. vLLM: ``quark``, whose ``quant_config`` is
the config dict; LM heads are quantized unless excluded.

Per-layer configs (``layer_quant_config``: ``{name or glob: {"weight": {"dtype":
...}}}``) come before the global config, first key in the dict's order first
(``quark.py:QuarkConfig._find_matched_config``); a key without ``*`` matches in vLLM
when the runtime prefix is a *substring of the key* (``layer_name in name_pattern``), a
key with ``*`` by ``fnmatch``; fused modules take their shards' (equal) configs. The
plan reads keys as the producer wrote them (exact names or globs, in checkpoint names):
a key naming a whole fused module's shard set still agrees, a key that is a longer name
than the module (``mtp.layers.0.self_attn.q_proj.weight``) matches only in vLLM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import (
    E8M0_DTYPES,
    ConfigReading,
    Params,
    QuantFormat,
    TargetGroup,
    ordered_groups,
    rule_group,
)
from vllm_draft_quant.core.rules import RuleSet, make_rules
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT"]

_DTYPES = {"fp4": Scheme.MXFP4, "mxfp4": Scheme.MXFP4, "fp8_e4m3": Scheme.FP8,
           "int4": Scheme.INT4, "uint4": Scheme.INT4}


def _weight_scheme(global_config: object) -> Scheme | None:
    """The global weight dtype's scheme; None when the config names no weight dtype."""
    weight = global_config.get("weight") if isinstance(global_config, dict) else None
    if not isinstance(weight, dict):
        return None
    return _DTYPES.get(str(weight.get("dtype", "")).lower(), Scheme.UNKNOWN)


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    g = q.get("global_quant_config")
    if g is not None and not isinstance(g, dict):
        raise ConfigError(f"{origin}.global_quant_config: expected an object (with 'weight'), "
                          f"found {type(g).__name__}; re-export or fix the field.")
    rules = make_rules(q.get("exclude"), grammar="quark", origin=f"{origin}.exclude")
    default = _weight_scheme(g) or Scheme.UNKNOWN
    return ConfigReading(default, RuleSet(rules), _layer_groups(q, default, origin))


def _layer_groups(q: Mapping[str, Any], default: Scheme, origin: str) -> tuple[TargetGroup, ...]:
    """``layer_quant_config`` as target groups in its order, then the global config."""
    per = q.get("layer_quant_config")
    if not per:
        return ()
    if not isinstance(per, dict):
        raise ConfigError(f"{origin}.layer_quant_config: expected an object mapping module "
                          f"names or globs to quant configs, found {type(per).__name__}.")
    groups = []
    for key, cfg in per.items():
        where = f"{origin}.layer_quant_config[{key!r}]"
        if not isinstance(cfg, dict):
            raise ConfigError(f"{where}: expected an object with 'weight'.")
        scheme = _weight_scheme(cfg)
        groups.append(rule_group(scheme if scheme is not None else Scheme.UNQUANTIZED, [key],
                                 grammar="quark", origin=where,
                                 name=f"layer_quant_config[{key!r}]"))
    return ordered_groups(groups, default, everything="*", grammar="quark",
                          origin=f"{origin}.global_quant_config", name="global_quant_config")


def _classify(p: Params) -> StoredFormat | None:
    if p.get("weight") == "U8" and p.get("weight_scale") in E8M0_DTYPES:
        return StoredFormat.MXFP4
    return None


def _runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    """The global weight scheme: what the adapter's copy of the config (no ``exclude``, no
    ``layer_quant_config``: ``compat.py:_without_exclusions``) quantizes every layer with.
    Only MXFP4 is rebuilt from a Quark config (the one the integration tier loads); for the
    others, and for the per-layer schemes, the adapter builds a config of its own."""
    qc = attrs.get("quant_config")
    if not isinstance(qc, Mapping):
        return None
    scheme = _weight_scheme(qc.get("global_quant_config"))
    return scheme if scheme is Scheme.MXFP4 else None


FORMAT = QuantFormat(
    name="quark",
    parse=_parse,
    classify=_classify,
    runtime_attrs=("quant_config",),
    runtime_scheme=_runtime_scheme,
)
