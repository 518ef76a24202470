"""The stock-vLLM outcome of every (family, scheme, layout) case, as data.

Layouts a..g are ``support.factory.LAYOUTS`` (FINDINGS.md "Outcomes");
the producer is ModelOpt. Measured on vllm 0.33.0 (CPU platform, test shims),
with the target model loaded before the drafter as the V1 runner does. They agree
with FINDINGS.md.

Outcomes:

- ``ok``: the drafter loads and no quantized parameter kept vLLM's -3.4e38 scale;
- ``loud``: loading raises ``error_type``; ``match`` is a substring of the error
  text (type, first message line, module being loaded);
- ``silent``: loads, but each ``(runtime prefix, checkpoint module)`` in
  ``wrong`` is a quantized-dtype module fed by a BF16 checkpoint tensor.

Later issues flip entries to "loads correctly with the plugin" by reading this
table with ``plugin=True`` (``expected_with_plugin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

from support import CheckpointSpec

from vllm_draft_quant import Scheme

Outcome = Literal["ok", "loud", "silent"]
Case = tuple[str, str, str]  # (family, scheme, layout)

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
SCHEMES = ("nvfp4", "fp8")
LAYOUT_KEYS = tuple("abcdefg")


@dataclass(frozen=True)
class Expected:
    outcome: Outcome
    error_type: str | None = None
    match: str | None = None
    wrong: tuple[tuple[str, str], ...] = ()


OK = Expected("ok")


def _loud(error_type: str, match: str) -> Expected:
    return Expected("loud", error_type, match)


def _silent(*wrong: tuple[str, str]) -> Expected:
    return Expected("silent", wrong=tuple(wrong))


_STEP_FP8_MISSING = _loud(
    "RuntimeError", "are not in the checkpoint and will falsely use random initialization"
)
_SIZE = "The size of tensor a"
_DS_HEAD = ("model.layers.2.head", "model.layers.2.shared_head.head")

STOCK_OUTCOMES: dict[Case, Expected] = {
    # Step3p5MTP: packed uint8 NVFP4 params vs BF16 tensors (the reported bug)
    ("step3p5", "nvfp4", "a"): _loud("AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj"),
    ("step3p5", "nvfp4", "b"): OK,
    ("step3p5", "nvfp4", "c"): _loud("AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj"),
    ("step3p5", "nvfp4", "d"): _loud("RuntimeError", "model.layers.2.shared_head.head"),
    ("step3p5", "nvfp4", "e"): _loud(
        "AssertionError", "model.layers.2.mtp_block.self_attn.qkv_proj"
    ),
    ("step3p5", "nvfp4", "f"): _loud("AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj"),
    ("step3p5", "nvfp4", "g"): OK,
    ("step3p5", "fp8", "a"): _STEP_FP8_MISSING,
    ("step3p5", "fp8", "b"): OK,
    ("step3p5", "fp8", "c"): _STEP_FP8_MISSING,
    ("step3p5", "fp8", "d"): _STEP_FP8_MISSING,
    ("step3p5", "fp8", "e"): _STEP_FP8_MISSING,
    ("step3p5", "fp8", "f"): _STEP_FP8_MISSING,
    ("step3p5", "fp8", "g"): OK,
    # Qwen3NextMTP: exclusion prefixes stay in checkpoint form; fc forced BF16 under NVFP4
    ("qwen3_next", "nvfp4", "a"): _loud("RuntimeError", "mtp.layers.0.mlp.experts.w2_weight"),
    ("qwen3_next", "nvfp4", "b"): OK,
    ("qwen3_next", "nvfp4", "c"): OK,
    ("qwen3_next", "nvfp4", "d"): OK,
    ("qwen3_next", "nvfp4", "e"): OK,
    ("qwen3_next", "nvfp4", "f"): OK,
    ("qwen3_next", "nvfp4", "g"): _loud("ValueError", "fc.input_scale"),
    ("qwen3_next", "fp8", "a"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.q_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.up_proj"),
    ),
    ("qwen3_next", "fp8", "b"): OK,
    ("qwen3_next", "fp8", "c"): OK,
    ("qwen3_next", "fp8", "d"): OK,
    ("qwen3_next", "fp8", "e"): OK,
    ("qwen3_next", "fp8", "f"): OK,
    ("qwen3_next", "fp8", "g"): OK,
    # DeepSeekMTP: head prefix is model.layers.N.head, not the checkpoint's shared_head.head
    ("deepseek_v3", "nvfp4", "a"): _loud("RuntimeError", "mlp.experts.routed_experts.w2_weight"),
    ("deepseek_v3", "nvfp4", "b"): OK,
    ("deepseek_v3", "nvfp4", "c"): _loud("RuntimeError", "model.layers.2.shared_head.head"),
    ("deepseek_v3", "nvfp4", "d"): _loud("RuntimeError", "model.layers.2.shared_head.head"),
    ("deepseek_v3", "nvfp4", "e"): _loud("RuntimeError", "model.layers.2.shared_head.head"),
    ("deepseek_v3", "nvfp4", "f"): _loud("RuntimeError", "model.layers.2.shared_head.head"),
    ("deepseek_v3", "nvfp4", "g"): OK,
    ("deepseek_v3", "fp8", "a"): _silent(
        _DS_HEAD,
        ("model.layers.2.self_attn.fused_qkv_a_proj", "model.layers.2.self_attn.q_a_proj"),
        ("model.layers.2.self_attn.kv_b_proj", "model.layers.2.self_attn.kv_b_proj"),
        ("model.layers.2.self_attn.o_proj", "model.layers.2.self_attn.o_proj"),
        ("model.layers.2.mlp.experts", "model.layers.2.mlp.experts.0.down_proj"),
        (
            "model.layers.2.mlp.shared_experts.gate_up_proj",
            "model.layers.2.mlp.shared_experts.gate_proj",
        ),
    ),
    ("deepseek_v3", "fp8", "b"): OK,
    ("deepseek_v3", "fp8", "c"): _silent(_DS_HEAD),
    ("deepseek_v3", "fp8", "d"): _silent(_DS_HEAD),
    ("deepseek_v3", "fp8", "e"): _silent(_DS_HEAD),
    ("deepseek_v3", "fp8", "f"): _silent(_DS_HEAD),
    ("deepseek_v3", "fp8", "g"): OK,
}

# The reported bug: a grafted BF16 MTP block in a Step-3.5 NVFP4 export.
HEADLINE: Case = ("step3p5", "nvfp4", "a")
HEADLINE_EXPECTED = _loud("AssertionError", "mtp_block.mlp.gate_up_proj")

assert len(STOCK_OUTCOMES) == len(FAMILIES) * len(SCHEMES) * len(LAYOUT_KEYS) == 42


def spec_for(case: Case, **options: Any) -> CheckpointSpec:
    """The ModelOpt checkpoint of ``case`` (extra CheckpointSpec options allowed)."""
    family, scheme, layout = case
    return CheckpointSpec(cast(Any, family), cast(Any, scheme), layout=layout, **options)


def expected_with_plugin(case: Case) -> Expected:
    """What the plugin must achieve on ``case``: every drafter loads correctly."""
    del case
    return OK


#: what a correct load looks like, per stored scheme: the quant method's class name
#: starts with one of these, and the weight parameters have this dtype
SCHEME_METHODS = {
    Scheme.UNQUANTIZED: ("Unquantized",),
    Scheme.NVFP4: ("ModelOptLinearMethod", "ModelOptNvFp4FusedMoE", "CompressedTensors"),
    Scheme.FP8: ("ModelOptLinearMethod", "ModelOptFp8MoEMethod", "CompressedTensors"),
    Scheme.FP8_BLOCK: ("Fp8LinearMethod", "Fp8MoEMethod"),
    Scheme.MXFP4: ("QuarkLinearMethod", "QuarkOCP_MX_MoEMethod"),
}
SCHEME_WEIGHT_DTYPE = {
    Scheme.UNQUANTIZED: "bfloat16",
    Scheme.NVFP4: "uint8",
    Scheme.FP8: "float8_e4m3fn",
    Scheme.FP8_BLOCK: "float8_e4m3fn",
    Scheme.MXFP4: "uint8",
}


def assert_loud(expected: Expected, result: Any) -> None:
    """``result`` (a DraftResult) failed the way ``expected`` (a ``loud`` outcome) says."""
    assert not result.ok, f"expected {expected.error_type}, but the drafter loaded"
    assert result.error_type == expected.error_type, result.error_text
    assert expected.match and expected.match in result.error_text, result.error_text
