"""ModelOpt (NVIDIA TensorRT Model Optimizer) exports.

Config: ``hf_quant_config.json`` ``quantization`` (``quant_algo``,
``exclude_modules``) and/or ``config.json`` ``quantization_config``
(``quant_method`` ``modelopt*``, the same fields at top level or nested under
``quantization``, exclusions in ``ignore`` or ``exclude_modules``).
``MIXED_PRECISION`` lists every quantized module in ``quantized_layers``, each with its
own ``quant_algo`` (``FP8``, ``NVFP4``, ``W4A16_NVFP4``, block FP8 ``FP8_PB_WO`` /
``FP8_BLOCK_SCALES`` for experts, ...); vLLM (``modelopt.py:
ModelOptMixedPrecisionConfig._resolve_quant_algo``) looks a runtime prefix up exactly,
then through its fused shards (all must agree), then as the parent of listed modules
(``experts`` -> ``experts.0.gate_proj``); an unlisted module is unquantized. The plan
reads the same lists in checkpoint names (each shard's own entry).
Stored: NVFP4 ``weight`` U8 + ``weight_scale`` F8_E4M3 + ``weight_scale_2``;
FP8 ``weight`` F8_E4M3 + ``weight_scale`` (per tensor ``[]``, per channel ``[out, 1]``);
block FP8 (``FP8_PB_WO``) the same names with one scale per block: ``[ceil(out/b), in/b]``,
or ModelOpt's 4-D ``[ceil(out/b), 1, in/b, 1]`` (``modelopt.py:KFp8Block128``), stacked
experts with a leading ``[E]``; only the shapes tell it from per-tensor FP8
(`block_scaled`). vLLM: ``modelopt_fp4`` (NVFP4), ``modelopt`` (FP8; ``FP8_PB_WO`` for
block-scaled linears); LM heads are quantized unless excluded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.formats.base import (
    FP8_DTYPES,
    ConfigReading,
    Params,
    QuantFormat,
    Shapes,
    VllmConfigSpec,
)
from vllm_draft_quant.core.rules import RuleSet, make_rules
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError

__all__ = ["FORMAT", "block_scaled", "parse_hf_quant_config"]

_ALGOS = {
    "NVFP4": Scheme.NVFP4,
    "FP8": Scheme.FP8,
    "FP8_PER_CHANNEL_PER_TOKEN": Scheme.FP8,
    "FP8_PB_WO": Scheme.FP8_BLOCK,
    "FP8_BLOCK_SCALES": Scheme.FP8_BLOCK,
    "W4A16_NVFP4": Scheme.NVFP4,
    "MXFP8": Scheme.UNKNOWN,  # vLLM loads it (modelopt_mxfp8); no scheme here builds it
    "W4A8_AWQ": Scheme.INT4,
    "W4A16_AWQ": Scheme.INT4,
    "MXFP4": Scheme.MXFP4,
}


def _algo_scheme(algo: object, origin: str) -> Scheme:
    if not isinstance(algo, str) or algo.upper() not in _ALGOS:
        raise ConfigError(
            f"{origin}: quant_algo {algo!r} is not one of {sorted(_ALGOS)} "
            "or MIXED_PRECISION; fix the field or re-export with a supported algorithm."
        )
    return _ALGOS[algo.upper()]


def _read(q: Mapping[str, Any], origin: str, excl_key: str) -> ConfigReading:
    algo = q.get("quant_algo")
    if algo is None:
        raise ConfigError(f"{origin}: missing 'quant_algo'; ModelOpt configs name their algorithm there.")
    rules = RuleSet(make_rules(q.get(excl_key, q.get("exclude_modules")), grammar="modelopt",
                               origin=f"{origin}.{excl_key}"))
    if not (isinstance(algo, str) and algo.upper() == "MIXED_PRECISION"):
        return ConfigReading(_algo_scheme(algo, f"{origin}.quant_algo"), rules)
    layers = q.get("quantized_layers")
    if not isinstance(layers, dict) or not layers:
        raise ConfigError(
            f"{origin}.quantized_layers: MIXED_PRECISION needs a non-empty object mapping "
            "module names to {\"quant_algo\": ...}; add it or set a single quant_algo."
        )
    per: dict[str, Scheme] = {}
    for name, spec in layers.items():
        if not isinstance(spec, dict):
            raise ConfigError(f"{origin}.quantized_layers[{name!r}]: expected an object "
                              f"with 'quant_algo', found {type(spec).__name__}.")
        per[name] = _algo_scheme(spec.get("quant_algo"), f"{origin}.quantized_layers[{name!r}]")
    return ConfigReading(next(iter(per.values())), rules, per_module=per)


def parse_hf_quant_config(q: Mapping[str, Any], origin: str) -> ConfigReading:
    """``hf_quant_config.json``'s ``quantization`` object (ModelOpt's own file)."""
    return _read(q, origin, "exclude_modules")


def _parse(qc: Mapping[str, Any], origin: str) -> ConfigReading:
    nested = qc.get("quantization")
    inner: Mapping[str, Any] = nested if isinstance(nested, dict) else qc
    return _read(inner, origin, "ignore" if "ignore" in inner else "exclude_modules")


def _classify(p: Params) -> StoredFormat | None:
    w = p.get("weight")
    if w == "U8" and p.get("weight_scale") in FP8_DTYPES and "weight_scale_2" in p:
        return StoredFormat.MODELOPT_NVFP4
    if w in FP8_DTYPES and "weight_scale" in p:
        return StoredFormat.MODELOPT_FP8  # also compressed-tensors float-quantized
    return None


def block_scaled(weight: tuple[int, ...], scale: tuple[int, ...]) -> bool:
    """Whether an FP8 ``weight_scale`` of shape ``scale`` holds one scale per block of a
    ``weight`` of shape ``weight`` (same leading dims): ``[ceil(out/b), ceil(in/b)]`` or
    ``[ceil(out/b), 1, ceil(in/b), 1]`` (ModelOpt's grid: block-scaled even as one block),
    not one per tensor (``[]``, ``[1]``, ``[1, 1]``) or per output channel (``[out]``,
    ``[out, 1]``)."""
    if len(weight) < 2:
        return False
    lead = len(weight) - 2
    grid = len(scale) == len(weight) + 2 and scale[lead + 1] == 1 and scale[lead + 3] == 1
    if grid:  # ModelOpt's 4-D block grid: block-scaled whatever its size (one block too)
        scale = (*scale[:lead], scale[lead], scale[lead + 2])
    if len(scale) != len(weight) or tuple(scale[:lead]) != tuple(weight[:lead]):
        return False
    (out, inp), (so, si) = weight[lead:], scale[lead:]
    if not (0 < so <= out and 0 < si <= inp):
        return False
    if grid:
        return True
    return (so, si) not in ((1, 1), (out, 1)) and (si > 1 or so < out)


def _classify_shapes(p: Params, shapes: Shapes) -> tuple[StoredFormat, IntLayout | None] | None:
    w, s = shapes.get("weight"), shapes.get("weight_scale")
    if p.get("weight") not in FP8_DTYPES or w is None or s is None or "weight_scale_inv" in p:
        return None
    return (StoredFormat.FP8_BLOCK_SCALE, None) if block_scaled(w, s) else None


def _builds_stored(stored: StoredFormat, layout: IntLayout | None) -> VllmConfigSpec | None:
    """Block FP8 under ``weight_scale``: ModelOpt's ``FP8_PB_WO`` (128 x 128 blocks; vLLM's
    ``modelopt.py:KFp8Block128``)."""
    if stored is not StoredFormat.FP8_BLOCK_SCALE:
        return None
    return VllmConfigSpec("modelopt", {"quantization": {
        "quant_algo": "FP8_PB_WO", "kv_cache_quant_algo": None, "exclude_modules": []}})


def _runtime_scheme(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    if name == "modelopt" and str(attrs.get("quant_method", "")).upper() == "FP8_PB_WO":
        return Scheme.FP8_BLOCK
    return {"modelopt_fp4": Scheme.NVFP4, "modelopt": Scheme.FP8}.get(name)


FORMAT = QuantFormat(
    name="modelopt",
    quant_methods=("modelopt*",),
    parse=_parse,
    classify=_classify,
    classify_shapes=_classify_shapes,
    builds_stored=_builds_stored,
    fix_grammar="modelopt",
    builds={
        # ``kv_cache_quant_algo`` is required by vLLM's from_config even when None.
        Scheme.NVFP4: VllmConfigSpec("modelopt_fp4", {"quantization": {
            "quant_algo": "NVFP4", "group_size": 16, "kv_cache_quant_algo": None,
            "exclude_modules": []}}),
        Scheme.FP8: VllmConfigSpec("modelopt", {"quantization": {
            "quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": []}}),
    },
    vllm_names=("modelopt_fp4", "modelopt"),
    runtime_attrs=("quant_method",),
    runtime_scheme=_runtime_scheme,
)
