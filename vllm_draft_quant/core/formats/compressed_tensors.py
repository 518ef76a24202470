"""compressed-tensors (llm-compressor) exports.

Config: ``quantization_config`` with ``quant_method`` ``compressed-tensors``:
``config_groups`` (each: ``targets`` and ``weights`` quantization args) and
``ignore`` (exact names, ``re:`` regexes, class names). Stored: NVFP4
``weight_packed`` + ``weight_global_scale``; MXFP4 ``weight_packed`` U8 +
``weight_scale`` U8/E8M0; INT4 (WNA16, pack-quantized) ``weight_packed`` I32
[out, in*bits/32] + ``weight_scale`` [out, in/g] + ``weight_shape`` (+
``weight_zero_point`` when asymmetric; bits and group size from the shapes,
``_packed.py``); FP8 as
``weight`` F8_E4M3 + ``weight_scale`` (the ModelOpt FP8 layout, see
``modelopt.py``). vLLM: ``compressed-tensors``, read back through its
``target_scheme_map``; LM heads follow the config groups' targets.

`weight_scheme` is the one mapping from a group's weight quantization args to
a `Scheme`: the config parser and the adapter (with the plain attribute values
of vLLM's parsed ``QuantizationArgs``) both use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats._packed import ct_layout
from vllm_draft_quant.core.formats.base import (
    E8M0_DTYPES,
    ConfigReading,
    Params,
    QuantFormat,
    Shapes,
    TargetGroup,
    VllmConfigSpec,
)
from vllm_draft_quant.core.rules import RuleSet, make_rules
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT", "weight_scheme"]

_PACKED_INT = frozenset({"I32", "U32", "I8", "U8"})


def _strategy(w: Mapping[str, Any]) -> str | None:
    """The strategy as compressed-tensors' ``QuantizationArgs`` resolves it.

    Unwritten, it follows from ``group_size``: none -> ``tensor``, > 0 -> ``group``,
    -1 -> ``channel`` (``quant_args.py``: ``validate_model_after``).
    """
    s = w.get("strategy")
    if s is not None:
        return str(s).lower()
    g = w.get("group_size")
    if g is None:
        return "tensor"
    if isinstance(g, int) and g > 0:
        return "group"
    return "channel" if g == -1 else None


def weight_scheme(weights: Mapping[str, Any]) -> Scheme:
    """The scheme vLLM builds for a config group's weight args (``num_bits``, ``type``,
    ``strategy``, ``group_size``, ``symmetric``), as ``compressed_tensors.py`` decides it:

    - 4-bit float, ``tensor_group``, group 16: NVFP4 (``_is_nvfp4_format``);
    - 4-bit float, ``group``, group 32: MXFP4 (``_is_mxfp4``);
    - other 4-bit floats: no scheme vLLM has (``unknown``);
    - 8-bit float: FP8, ``block`` strategy FP8 block; 4-bit int: INT4.
    """
    bits, typ, group = weights.get("num_bits"), weights.get("type"), weights.get("group_size")
    strategy = _strategy(weights)
    if typ == "float" and bits == 4:
        if weights.get("symmetric", True) is False:
            return Scheme.UNKNOWN
        if strategy == "tensor_group" and group == 16:
            return Scheme.NVFP4
        if strategy == "group" and group == 32:
            return Scheme.MXFP4
        return Scheme.UNKNOWN
    if typ == "float" and bits == 8:
        return Scheme.FP8_BLOCK if strategy == "block" else Scheme.FP8
    if typ == "int" and bits == 4:
        return Scheme.INT4
    return Scheme.UNKNOWN


def _int_group(w: Mapping[str, Any]) -> int | None:
    """An integer group's group size (-1: per channel); None for other schemes."""
    if w.get("type") != "int":
        return None
    strategy, g = _strategy(w), w.get("group_size")
    if strategy == "channel":
        return -1
    return g if strategy == "group" and isinstance(g, int) and not isinstance(g, bool) else None


def _parse(q: Mapping[str, Any], origin: str) -> ConfigReading:
    groups_raw = q.get("config_groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        raise ConfigError(f"{origin}.config_groups: expected a non-empty object of quantization "
                          "groups (compressed-tensors); re-export or fix the field.")
    groups = []
    for name, g in sorted(groups_raw.items()):
        where = f"{origin}.config_groups.{name}"
        if not isinstance(g, dict):
            raise ConfigError(f"{where}: expected an object, found {type(g).__name__}.")
        targets = make_rules(g.get("targets"), grammar="compressed-tensors", origin=f"{where}.targets")
        if not targets:
            raise ConfigError(f"{where}.targets: missing or empty; list module names, 're:' "
                              "patterns or class names such as 'Linear'.")
        w = g.get("weights")
        if not isinstance(w, dict):
            raise ConfigError(f"{where}.weights: expected an object describing the weight "
                              "quantization (num_bits, type, strategy).")
        groups.append(TargetGroup(weight_scheme(w), RuleSet(targets), name, _int_group(w)))
    rules = make_rules(q.get("ignore"), grammar="compressed-tensors", origin=f"{origin}.ignore")
    return ConfigReading(groups[0].scheme, RuleSet(rules), tuple(groups),
                         group_size=groups[0].group_size)


def _classify(p: Params) -> StoredFormat | None:
    packed = p.get("weight_packed")
    if packed is None:
        return None
    if "weight_global_scale" in p:
        return StoredFormat.CT_NVFP4
    if packed == "U8" and p.get("weight_scale") in E8M0_DTYPES:
        return StoredFormat.MXFP4
    if packed in ("I32", "U32"):
        return StoredFormat.CT_WNA16
    if packed in _PACKED_INT:
        return StoredFormat.INT4
    return StoredFormat.UNKNOWN


def _classify_shapes(p: Params, shapes: Shapes) -> tuple[StoredFormat, IntLayout | None] | None:
    if "weight_packed" not in p or "weight_global_scale" in p:
        return None
    layout = ct_layout(p, shapes)
    return None if layout is None else (StoredFormat.CT_WNA16, layout)


def _builds_stored(stored: StoredFormat, layout: IntLayout | None) -> VllmConfigSpec | None:
    """A pack-quantized W4A16 config for every module (``re:.*`` also targets heads)."""
    if stored is not StoredFormat.CT_WNA16 or layout is None or layout.bits is None \
            or layout.group_size is None:
        return None
    group = layout.group_size
    weights = {"num_bits": layout.bits, "type": "int", "symmetric": not layout.zero_point,
               "strategy": "channel" if group == -1 else "group",
               "group_size": None if group == -1 else group, "dynamic": False,
               "actorder": None, "observer": "minmax", "block_structure": None}
    return VllmConfigSpec("compressed-tensors", {
        "quant_method": "compressed-tensors", "format": "pack-quantized",
        "quantization_status": "compressed", "ignore": [], "kv_cache_scheme": None,
        "config_groups": {"group_0": {"targets": ["Linear", "re:.*"], "weights": weights,
                                      "input_activations": None, "output_activations": None,
                                      "format": "pack-quantized"}}})


def _runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    """The one scheme of vLLM's ``target_scheme_map`` (None if it has several)."""
    tsm = attrs.get("target_scheme_map")
    specs = tsm.values() if isinstance(tsm, Mapping) else ()
    schemes = {weight_scheme(s["weights"]) for s in specs
               if isinstance(s, Mapping) and isinstance(s.get("weights"), Mapping)}
    schemes.discard(Scheme.UNKNOWN)
    return schemes.pop() if len(schemes) == 1 else None


FORMAT = QuantFormat(
    name="compressed-tensors",
    parse=_parse,
    classify=_classify,
    classify_shapes=_classify_shapes,
    builds_stored=_builds_stored,
    fix_grammar="compressed-tensors",
    runtime_attrs=("target_scheme_map",),
    runtime_scheme=_runtime_scheme,
)
