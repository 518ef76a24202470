"""The quant-format registry: one answer per format, shared by the core and the adapter."""

from __future__ import annotations

import enum
from typing import Any, get_args

import pydantic
import pytest

from vllm_draft_quant.adapter import compat
from vllm_draft_quant.core import formats
from vllm_draft_quant.core.formats import compressed_tensors
from vllm_draft_quant.core.intent import Producer, intent_from_configs
from vllm_draft_quant.core.schemes import ModuleKind, Scheme, StoredFormat


# ------------------------------------------------ compressed-tensors 4-bit floats, pinned
class _Type(str, enum.Enum):  # as compressed-tensors' QuantizationType
    FLOAT = "float"
    INT = "int"


class _Strategy(str, enum.Enum):  # as compressed-tensors' QuantizationStrategy
    GROUP = "group"
    TENSOR_GROUP = "tensor_group"


class _Args(pydantic.BaseModel):  # the fields vLLM reads off a parsed QuantizationArgs
    num_bits: int
    type: _Type
    strategy: _Strategy
    group_size: int | None
    symmetric: bool = True


class _CompressedTensorsConfig:
    """What ``CompressedTensorsConfig.from_config`` leaves for the adapter to read."""

    def __init__(self, weights: _Args):
        self.target_scheme_map = {"Linear": {"weights": weights, "input_activations": None,
                                             "format": None}}
        self.ignore: list[str] = []

    def get_name(self) -> str:
        return "compressed-tensors"


def _ct_config(weights: dict[str, Any], fmt: str) -> dict[str, Any]:
    return {"quant_method": "compressed-tensors", "format": fmt, "ignore": [],
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": weights}}}


# vLLM 0.33 compressed_tensors.py: _is_nvfp4_format (float, 4 bits, TENSOR_GROUP, group 16)
# and _is_mxfp4 (float, 4 bits, GROUP, group 32); the group's "format" does not enter.
FP4_CASES = [
    ("tensor_group", 16, "nvfp4-pack-quantized", Scheme.NVFP4),
    ("group", 32, "mxfp4-pack-quantized", Scheme.MXFP4),
    ("group", 32, "nvfp4-pack-quantized", Scheme.MXFP4),
]


@pytest.mark.parametrize(("strategy", "group", "fmt", "scheme"), FP4_CASES)
def test_fp4_group_size_has_one_answer_in_the_core_and_the_adapter(
    strategy: str, group: int, fmt: str, scheme: Scheme
) -> None:
    weights = {"num_bits": 4, "type": "float", "strategy": strategy, "group_size": group,
               "symmetric": True}
    intent = intent_from_configs(None, _ct_config(weights, fmt))
    assert intent is not None
    said = intent.decide(["model.layers.3.mlp.down_proj"], "model.layers.3.mlp.down_proj",
                         ModuleKind.LINEAR)
    assert intent.scheme is said.scheme is scheme
    # the adapter, given vLLM's parsed config object (enums, a pydantic model)
    parsed = _Args(num_bits=4, type=_Type.FLOAT, strategy=_Strategy(strategy), group_size=group)
    assert compat.scheme_of(_CompressedTensorsConfig(parsed)) is scheme
    # ... and the registry entry it consults, given plain attribute values
    fmt_ = formats.for_vllm_name("compressed-tensors")
    assert fmt_ is formats.COMPRESSED_TENSORS
    tsm = {"Linear": {"weights": weights, "input_activations": None, "format": None}}
    assert fmt_.runtime_scheme("compressed-tensors", {"target_scheme_map": tsm}) is scheme


def test_the_core_and_the_adapter_call_the_same_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = compressed_tensors.weight_scheme

    def spy(weights: Any) -> Scheme:
        calls.append(str(weights.get("group_size")))
        return real(weights)

    monkeypatch.setattr(compressed_tensors, "weight_scheme", spy)
    weights = {"num_bits": 4, "type": "float", "strategy": "group", "group_size": 32}
    intent_from_configs(None, _ct_config(weights, "mxfp4-pack-quantized"))
    compat.scheme_of(_CompressedTensorsConfig(
        _Args(num_bits=4, type=_Type.FLOAT, strategy=_Strategy.GROUP, group_size=32)))
    assert calls == ["32", "32"]


@pytest.mark.parametrize(
    ("weights", "scheme"),
    [
        ({"strategy": "tensor_group", "group_size": 32}, Scheme.UNKNOWN),
        ({"strategy": "group", "group_size": 16}, Scheme.UNKNOWN),
        ({"group_size": 32}, Scheme.MXFP4),  # unwritten strategy: `group` (QuantizationArgs)
        ({"group_size": 16}, Scheme.UNKNOWN),  # ... so vLLM has no NVFP4 for it
        ({"strategy": "tensor_group", "group_size": 16, "symmetric": False}, Scheme.UNKNOWN),
        ({"strategy": "TENSOR_GROUP", "group_size": 16}, Scheme.NVFP4),
    ],
)
def test_other_fp4_args_are_no_vllm_scheme(weights: dict[str, Any], scheme: Scheme) -> None:
    assert compressed_tensors.weight_scheme({"num_bits": 4, "type": "float", **weights}) is scheme


@pytest.mark.parametrize(
    ("weights", "scheme"),
    [
        ({"num_bits": 8, "type": "float", "strategy": "tensor"}, Scheme.FP8),
        ({"num_bits": 8, "type": "float", "strategy": "block"}, Scheme.FP8_BLOCK),
        ({"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128}, Scheme.INT4),
        ({"num_bits": 8, "type": "int"}, Scheme.UNKNOWN),
    ],
)
def test_ct_weight_schemes(weights: dict[str, Any], scheme: Scheme) -> None:
    assert compressed_tensors.weight_scheme(weights) is scheme


def test_adapter_reads_one_scheme_or_none() -> None:
    def tsm(*ws: dict[str, Any]) -> dict[str, Any]:
        return {"target_scheme_map": {f"t{i}": {"weights": w} for i, w in enumerate(ws)}}

    fp8 = {"num_bits": 8, "type": "float", "strategy": "tensor"}
    nvfp4 = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}
    read = formats.COMPRESSED_TENSORS.runtime_scheme
    assert read("compressed-tensors", tsm(fp8, fp8)) is Scheme.FP8
    assert read("compressed-tensors", tsm(fp8, nvfp4)) is None
    assert read("compressed-tensors", tsm()) is None


# ----------------------------------------------------------------------- the registry
def test_registry_names_are_the_producer_literal() -> None:
    names = [f.name for f in formats.FORMATS]
    assert len(names) == len(set(names))
    assert set(names) == set(get_args(Producer))


@pytest.mark.parametrize(
    ("method", "name"),
    [("modelopt", "modelopt"), ("modelopt_fp4", "modelopt"), ("MODELOPT_MIXED", "modelopt"),
     ("compressed-tensors", "compressed-tensors"), ("quark", "quark"), ("fp8", "fp8"),
     ("gptq", "gptq"), ("AWQ", "awq"), ("mxfp4", "mxfp4"), ("bitsandbytes", "other"),
     ("gptq_marlin", "other")],
)
def test_lookup_by_quant_method(method: str, name: str) -> None:
    assert formats.for_method(method).name == name
    assert formats.by_name(name) is formats.for_method(method)


def test_unknown_method_keeps_its_name_for_messages() -> None:
    intent = intent_from_configs(None, {"quant_method": "BitsAndBytes",
                                        "modules_to_not_convert": ["lm_head"]})
    assert intent is not None
    assert (intent.producer, intent.method, intent.scheme) == ("other", "bitsandbytes",
                                                               Scheme.UNKNOWN)


def test_each_scheme_is_built_by_one_format_as_data() -> None:
    seen: dict[Scheme, str] = {}
    for f in formats.FORMATS:
        for scheme in f.builds:
            assert scheme not in seen, f"{scheme} built by {seen[scheme]} and {f.name}"
            seen[scheme] = f.name
    spec = formats.vllm_config_for(Scheme.NVFP4)
    assert spec is not None
    assert (spec.method, dict(spec.config)) == ("modelopt_fp4", {"quantization": {
        "quant_algo": "NVFP4", "group_size": 16, "kv_cache_quant_algo": None,
        "exclude_modules": []}})
    fp8_block = formats.vllm_config_for(Scheme.FP8_BLOCK)
    assert fp8_block is not None and fp8_block.method == "fp8"
    assert formats.vllm_config_for(Scheme.MXFP4) is None


def test_vllm_names_belong_to_one_format() -> None:
    names = [n for f in formats.FORMATS for n in f.vllm_names]
    assert len(names) == len(set(names))
    assert formats.for_vllm_name("modelopt_mixed") is None


def test_fix_writes_modelopt_and_compressed_tensors_lists_only() -> None:
    writable = {f.name: f.fix_grammar for f in formats.FORMATS if f.fix_grammar}
    assert writable == {"modelopt": "modelopt", "compressed-tensors": "compressed-tensors"}
    assert formats.fix_grammar("bitsandbytes") is None


def test_lm_head_policy() -> None:
    keep = {f.name for f in formats.FORMATS if not f.quantizes_lm_heads}
    assert keep == {"fp8", "gptq", "awq", "auto-round", "moe_wna16", "mxfp4"}


# ------------------------------------------------------------------ stored formats
@pytest.mark.parametrize(
    ("params", "stored"),
    [
        ({"weight": "U8", "weight_scale": "F8_E4M3", "weight_scale_2": "F32",
          "input_scale": "F32"}, StoredFormat.MODELOPT_NVFP4),
        ({"weight": "F8_E4M3", "weight_scale": "F32", "input_scale": "F32"},
         StoredFormat.MODELOPT_FP8),
        ({"weight": "F8_E4M3", "weight_scale_inv": "F32"}, StoredFormat.FP8_BLOCK),
        ({"weight_packed": "U8", "weight_scale": "F8_E4M3", "weight_global_scale": "F32",
          "input_global_scale": "F32"}, StoredFormat.CT_NVFP4),
        ({"weight_packed": "U8", "weight_scale": "U8"}, StoredFormat.MXFP4),
        ({"weight_packed": "I32", "weight_scale": "BF16", "weight_shape": "I64"},
         StoredFormat.CT_WNA16),
        ({"qweight": "I32", "scales": "F16", "qzeros": "I32", "g_idx": "I32"},
         StoredFormat.GPTQ_INT4),
        ({"qweight": "I32", "scales": "F16", "qzeros": "I32"}, StoredFormat.INT4),
        ({"weight": "U8", "weight_scale": "U8"}, StoredFormat.MXFP4),
        ({"weight": "BF16", "bias": "BF16"}, StoredFormat.UNQUANTIZED),
        ({"weight": "BF16", "weight_scale": "F32"}, StoredFormat.UNKNOWN),
        ({"weight": "F8_E4M3"}, StoredFormat.UNKNOWN),
        ({"weight": "U8"}, StoredFormat.UNKNOWN),
        ({"weight_packed": "F32"}, StoredFormat.UNKNOWN),
        ({"bias": "BF16"}, StoredFormat.UNKNOWN),
    ],
)
def test_classify(params: dict[str, str], stored: StoredFormat) -> None:
    assert formats.classify(params) is stored


def test_fp4_stored_formats_pack_two_values_a_byte() -> None:
    assert {f for f in StoredFormat if f.two_per_byte} == {
        StoredFormat.MODELOPT_NVFP4, StoredFormat.CT_NVFP4, StoredFormat.MXFP4}
