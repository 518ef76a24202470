"""Fuzzing: arbitrary JSON to every config parser raises only the project's errors.

``fuzz``-marked: 10,000 examples each (``pytest -m fuzz``); CI runs a smaller profile
(``strategies.FUZZ_EXAMPLES``). The safetensors header reader's fuzz test lives in
``test_headers.py``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import FUZZ_EXAMPLES, json_values

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.core.intent import intent_from_configs
from vllm_draft_quant.core.overrides import Overrides
from vllm_draft_quant.errors import DraftQuantError

pytestmark = pytest.mark.fuzz
_FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

_KEYS = ["quantization", "quant_algo", "exclude_modules", "ignore", "quant_method",
         "config_groups", "targets", "weights", "num_bits", "type", "format", "quantized_layers",
         "strategy", "group_size", "symmetric",
         "global_quant_config", "exclude", "modules_to_not_convert", "weight_block_size",
         "architectures", "num_hidden_layers", "num_nextn_predict_layers", "text_config",
         "quantization_config", "modules", "version", "dynamic", "bits", "desc_act", "sym",
         "lm_head", "modules_in_block_to_quantize", "block_name_to_quantize",
         "to_quant_block_names", "extra_config", "data_type", "layer_quant_config",
         "linear_quant_method", "w_bit", "zero_point"]
_VALUES = ["NVFP4", "FP8", "MIXED_PRECISION", "modelopt", "compressed-tensors", "quark", "fp8",
           "Linear", "re:.*", "re:(", "*", "model.layers.2*", "float", "int", "group",
           "tensor_group",
           "DeepseekV3ForCausalLM", "Step3p5ForCausalLM", "Qwen3NextForCausalLM",
           "gptq", "awq", "auto-round", "moe_wna16", "-:mtp.*", "+:.*", "-:(", "mtp\\..*"]
# JSON shaped like the configs: their keys and values, nested, mixed with arbitrary JSON.
config_like = st.recursive(
    st.one_of(st.sampled_from(_VALUES), json_values, st.integers(-3, 70)),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.sampled_from(_KEYS), inner, max_size=5)),
    max_leaves=20,
)


def _only_ours(fn: Any, *args: Any) -> None:
    with contextlib.suppress(DraftQuantError):
        fn(*args)


@_FUZZ
@given(hq=st.one_of(st.none(), st.dictionaries(st.sampled_from(_KEYS), config_like)),
       qc=st.one_of(st.none(), st.dictionaries(st.sampled_from(_KEYS), config_like)))
def test_quant_config_parsers(hq: Any, qc: Any) -> None:
    _only_ours(intent_from_configs, hq, qc)


@_FUZZ
@given(data=config_like)
def test_overrides_validation(data: Any) -> None:
    from pydantic import ValidationError

    with contextlib.suppress(ValidationError):  # load_overrides makes it a ConfigError
        Overrides.model_validate(data)


@_FUZZ
@given(config=st.dictionaries(st.sampled_from(_KEYS), config_like),
       hq=st.one_of(st.none(), st.dictionaries(st.sampled_from(_KEYS), config_like)))
def test_model_folder_configs(tmp_path: Path, config: dict[str, Any], hq: Any) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    hq_path = tmp_path / "hf_quant_config.json"
    if hq is None:
        hq_path.unlink(missing_ok=True)
    else:
        hq_path.write_text(json.dumps(hq))

    def run() -> None:
        plan_from_facts(load_facts(tmp_path))

    _only_ours(run)


_JSONISH = st.text(alphabet='{}[]",:0123456789.eE+-truefalsnmodelthd \\', max_size=200)


@_FUZZ
@given(text=_JSONISH | st.text(max_size=200) | st.builds(
    lambda d, inner: "[" * d + inner + "]" * d, st.integers(0, 3000), _JSONISH))
def test_speculative_config_text(text: str) -> None:
    """``--speculative-config`` text: only the project's ConfigError, always one line."""
    from vllm_draft_quant.core.speculative import parse_speculative_config
    from vllm_draft_quant.errors import ConfigError

    try:
        parse_speculative_config(text)
    except ConfigError as e:
        assert "\n" not in str(e)


@_FUZZ
@given(text=_JSONISH | st.text(max_size=200), suffix=st.sampled_from([".json", ".yaml"]))
def test_overrides_file_text(tmp_path: Path, text: str, suffix: str) -> None:
    """An overrides file of any text: only ConfigError, one line."""
    from vllm_draft_quant.checkpoint.overrides_file import load_overrides
    from vllm_draft_quant.errors import ConfigError

    path = tmp_path / ("o" + suffix)
    path.write_bytes(text.encode("utf-8", "replace"))
    try:
        load_overrides(path)
    except ConfigError as e:
        assert "\n" not in str(e)
