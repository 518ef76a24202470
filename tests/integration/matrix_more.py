"""Issue 8's cases: more drafter families and more checkpoint formats, as data.

Cases are ``(family, producer, scheme, layout)``; layouts a..g are
``vllm_draft_quant.testing.LAYOUTS`` (FINDINGS.md "Outcomes"):

- ``FAMILY_CASES``: GLM-4.5 MoE (``Glm4MoeMTPModel``), Qwen3.5 MoE text-only and
  multimodal (``Qwen3_5MoeMTP``), MiMo (``MiMoMTPModel``), each with ModelOpt NVFP4
  and FP8: 4 x 2 x 7 = 56.
- ``FORMAT_CASES``: Step-3.5, Qwen3-Next and DeepSeek-V3 with compressed-tensors
  NVFP4 (``nvfp4-pack-quantized``) and FP8 (``float-quantized``) -- ``ignore`` absent
  (a), ``re:`` (b) and exact (c-g) --, DeepSeek-native FP8 block (``weight_scale_inv``,
  ``modules_to_not_convert`` absent / substring / exact) and Quark MXFP4 (``exclude``
  absent / ``re:`` / exact): 3 x 4 x 7 = 84.

vLLM's ``fp8`` and ``quark`` configs cannot build a quantized ``ParallelLMHead``, so
for those producers layout g keeps LM heads BF16 (``_formats_more.head_stays_bf16``).
compressed-tensors layout g quantizes the MTP head: stock vLLM cannot load that
(``ParallelLMHead`` is never a ``Linear`` target), the plugin can.

``STOCK_OUTCOMES_MORE`` is what stock vLLM 0.33.0 does (plugin off; CPU platform with
the test shims of ``vllm_draft_quant/testing/cpu_shims*.py``), measured with the
target model loaded first; ``Expected`` has the same meaning as in ``matrix.py``
(``silent``: each ``(runtime prefix, checkpoint module)`` loads into a parameter of
the wrong precision, either way round).
"""

from __future__ import annotations

from typing import Any, cast

from matrix import OK, Expected, _loud, _silent

from vllm_draft_quant.testing import CheckpointSpec

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

NEW_FAMILIES = ("glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo")
FIRST_FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
FORMATS = (
    ("compressed-tensors", "nvfp4"),
    ("compressed-tensors", "fp8"),
    ("fp8", "fp8_block"),
    ("quark", "mxfp4"),
)
LAYOUT_KEYS = tuple("abcdefg")

FAMILY_CASES: tuple[Case, ...] = tuple(
    (f, "modelopt", s, lay) for f in NEW_FAMILIES for s in ("nvfp4", "fp8") for lay in LAYOUT_KEYS
)
FORMAT_CASES: tuple[Case, ...] = tuple(
    (f, p, s, lay) for f in FIRST_FAMILIES for p, s in FORMATS for lay in LAYOUT_KEYS
)
CASES: tuple[Case, ...] = FAMILY_CASES + FORMAT_CASES

#: EngineArgs a family needs (MiMo's config is remote code; the Qwen3.5 wrapper's
#: vision tower is not built, so the factory writes none)
ENGINE_ARGS: dict[str, dict[str, Any]] = {
    "mimo": {"trust_remote_code": True},
    "qwen3_5_moe_vl": {"limit_mm_per_prompt": {"image": 0, "video": 0}},
}


def case_id(case: Case) -> str:
    return "-".join(case)


def group_of(case: Case) -> str:
    """Cases are built in groups (one worker batch each), so ``-k`` can pick a group."""
    family, producer, scheme, _ = case
    return f"{family}-{producer}-{scheme}"


def spec_for(case: Case, **options: Any) -> CheckpointSpec:
    family, producer, scheme, layout = case
    return CheckpointSpec(
        cast(Any, family), cast(Any, scheme), cast(Any, producer), layout=layout, **options
    )


def engine_args(family: str) -> dict[str, Any]:
    return dict(ENGINE_ARGS.get(family, {}))


STOCK_OUTCOMES_MORE: dict[Case, Expected] = {
    # glm4_moe / modelopt nvfp4
    ("glm4_moe", "modelopt", "nvfp4", "a"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    ("glm4_moe", "modelopt", "nvfp4", "b"): OK,
    ("glm4_moe", "modelopt", "nvfp4", "c"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    ("glm4_moe", "modelopt", "nvfp4", "d"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    ("glm4_moe", "modelopt", "nvfp4", "e"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    ("glm4_moe", "modelopt", "nvfp4", "f"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    ("glm4_moe", "modelopt", "nvfp4", "g"): _loud(
        "RuntimeError", "model.layers.2.shared_head.head.weight"
    ),
    # glm4_moe / modelopt fp8
    ("glm4_moe", "modelopt", "fp8", "a"): _silent(
        ("model.layers.2.head", "model.layers.2.shared_head.head"),
        ("model.layers.2.self_attn.qkv_proj", "model.layers.2.self_attn.k_proj"),
        ("model.layers.2.self_attn.o_proj", "model.layers.2.self_attn.o_proj"),
        (
            "model.layers.2.mlp.shared_experts.gate_up_proj",
            "model.layers.2.mlp.shared_experts.gate_proj",
        ),
        (
            "model.layers.2.mlp.shared_experts.down_proj",
            "model.layers.2.mlp.shared_experts.down_proj",
        ),
        ("model.layers.2.mlp.experts", "model.layers.2.mlp.experts.0.down_proj"),
    ),
    ("glm4_moe", "modelopt", "fp8", "b"): OK,
    ("glm4_moe", "modelopt", "fp8", "c"): _silent(
        ("model.layers.2.head", "model.layers.2.shared_head.head")
    ),
    ("glm4_moe", "modelopt", "fp8", "d"): _silent(
        ("model.layers.2.head", "model.layers.2.shared_head.head")
    ),
    ("glm4_moe", "modelopt", "fp8", "e"): _silent(
        ("model.layers.2.head", "model.layers.2.shared_head.head")
    ),
    ("glm4_moe", "modelopt", "fp8", "f"): _silent(
        ("model.layers.2.head", "model.layers.2.shared_head.head")
    ),
    ("glm4_moe", "modelopt", "fp8", "g"): OK,
    # qwen3_5_moe / modelopt nvfp4
    ("qwen3_5_moe", "modelopt", "nvfp4", "a"): _loud(
        "RuntimeError", "mtp.layers.0.mlp.experts.w2_weight"
    ),
    ("qwen3_5_moe", "modelopt", "nvfp4", "b"): OK,
    ("qwen3_5_moe", "modelopt", "nvfp4", "c"): OK,
    ("qwen3_5_moe", "modelopt", "nvfp4", "d"): OK,
    ("qwen3_5_moe", "modelopt", "nvfp4", "e"): OK,
    ("qwen3_5_moe", "modelopt", "nvfp4", "f"): OK,
    ("qwen3_5_moe", "modelopt", "nvfp4", "g"): _loud("ValueError", "fc.input_scale"),
    # qwen3_5_moe / modelopt fp8
    ("qwen3_5_moe", "modelopt", "fp8", "a"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.k_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.down_proj", "mtp.layers.0.mlp.shared_expert.down_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.down_proj"),
    ),
    ("qwen3_5_moe", "modelopt", "fp8", "b"): OK,
    ("qwen3_5_moe", "modelopt", "fp8", "c"): OK,
    ("qwen3_5_moe", "modelopt", "fp8", "d"): OK,
    ("qwen3_5_moe", "modelopt", "fp8", "e"): OK,
    ("qwen3_5_moe", "modelopt", "fp8", "f"): OK,
    ("qwen3_5_moe", "modelopt", "fp8", "g"): OK,
    # qwen3_5_moe_vl / modelopt nvfp4
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "a"): _loud(
        "RuntimeError", "mtp.layers.0.mlp.experts.w2_weight"
    ),
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "b"): OK,
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "c"): OK,
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "d"): OK,
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "e"): OK,
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "f"): OK,
    ("qwen3_5_moe_vl", "modelopt", "nvfp4", "g"): _loud("ValueError", "fc.input_scale"),
    # qwen3_5_moe_vl / modelopt fp8
    ("qwen3_5_moe_vl", "modelopt", "fp8", "a"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.k_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.down_proj", "mtp.layers.0.mlp.shared_expert.down_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.down_proj"),
    ),
    ("qwen3_5_moe_vl", "modelopt", "fp8", "b"): OK,
    ("qwen3_5_moe_vl", "modelopt", "fp8", "c"): OK,
    ("qwen3_5_moe_vl", "modelopt", "fp8", "d"): OK,
    ("qwen3_5_moe_vl", "modelopt", "fp8", "e"): OK,
    ("qwen3_5_moe_vl", "modelopt", "fp8", "f"): OK,
    ("qwen3_5_moe_vl", "modelopt", "fp8", "g"): OK,
    # mimo / modelopt nvfp4
    ("mimo", "modelopt", "nvfp4", "a"): _loud(
        "AssertionError", "model.mtp_layers.2.mtp_block.mlp.gate_up_proj"
    ),
    ("mimo", "modelopt", "nvfp4", "b"): _loud(
        "AssertionError", "model.mtp_layers.2.mtp_block.mlp.gate_up_proj"
    ),
    ("mimo", "modelopt", "nvfp4", "c"): _loud(
        "AssertionError", "model.mtp_layers.2.mtp_block.mlp.gate_up_proj"
    ),
    ("mimo", "modelopt", "nvfp4", "d"): OK,
    ("mimo", "modelopt", "nvfp4", "e"): _loud(
        "AssertionError", "model.mtp_layers.2.mtp_block.self_attn.qkv_proj"
    ),
    ("mimo", "modelopt", "nvfp4", "f"): _loud(
        "AssertionError", "model.mtp_layers.2.mtp_block.mlp.gate_up_proj"
    ),
    ("mimo", "modelopt", "nvfp4", "g"): OK,
    # mimo / modelopt fp8
    ("mimo", "modelopt", "fp8", "a"): _silent(
        ("model.layers.2.self_attn.qkv_proj", "model.mtp_layers.0.self_attn.k_proj"),
        ("model.layers.2.self_attn.o_proj", "model.mtp_layers.0.self_attn.o_proj"),
        ("model.layers.2.mlp.gate_up_proj", "model.mtp_layers.0.mlp.gate_proj"),
        ("model.layers.2.mlp.down_proj", "model.mtp_layers.0.mlp.down_proj"),
    ),
    ("mimo", "modelopt", "fp8", "b"): _silent(
        ("model.layers.2.self_attn.qkv_proj", "model.mtp_layers.0.self_attn.k_proj"),
        ("model.layers.2.self_attn.o_proj", "model.mtp_layers.0.self_attn.o_proj"),
        ("model.layers.2.mlp.gate_up_proj", "model.mtp_layers.0.mlp.gate_proj"),
        ("model.layers.2.mlp.down_proj", "model.mtp_layers.0.mlp.down_proj"),
    ),
    ("mimo", "modelopt", "fp8", "c"): _silent(
        ("model.layers.2.self_attn.qkv_proj", "model.mtp_layers.0.self_attn.k_proj"),
        ("model.layers.2.self_attn.o_proj", "model.mtp_layers.0.self_attn.o_proj"),
        ("model.layers.2.mlp.gate_up_proj", "model.mtp_layers.0.mlp.gate_proj"),
        ("model.layers.2.mlp.down_proj", "model.mtp_layers.0.mlp.down_proj"),
    ),
    ("mimo", "modelopt", "fp8", "d"): OK,
    ("mimo", "modelopt", "fp8", "e"): _silent(
        ("model.layers.2.self_attn.qkv_proj", "model.mtp_layers.0.self_attn.k_proj"),
        ("model.layers.2.self_attn.o_proj", "model.mtp_layers.0.self_attn.o_proj"),
    ),
    ("mimo", "modelopt", "fp8", "f"): _silent(
        ("model.layers.2.mlp.gate_up_proj", "model.mtp_layers.0.mlp.gate_proj"),
        ("model.layers.2.mlp.down_proj", "model.mtp_layers.0.mlp.down_proj"),
    ),
    ("mimo", "modelopt", "fp8", "g"): OK,
    # step3p5 / compressed-tensors nvfp4
    ("step3p5", "compressed-tensors", "nvfp4", "a"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.down_proj.weight"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "b"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "c"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.down_proj.weight"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "d"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "e"): _loud(
        "KeyError", "model.layers.2.mtp_block.self_attn.qkv_proj.weight"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "f"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.down_proj.weight"
    ),
    ("step3p5", "compressed-tensors", "nvfp4", "g"): _loud(
        "KeyError", "model.layers.2.shared_head.head.input_global_scale"
    ),
    # step3p5 / compressed-tensors fp8
    ("step3p5", "compressed-tensors", "fp8", "a"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "b"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "c"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "d"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "e"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "f"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.attn.k_zero_point"
    ),
    ("step3p5", "compressed-tensors", "fp8", "g"): _loud(
        "KeyError", "model.layers.2.shared_head.head.input_scale"
    ),
    # step3p5 / fp8 fp8_block
    ("step3p5", "fp8", "fp8_block", "a"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight_scale_inv"
    ),
    ("step3p5", "fp8", "fp8_block", "b"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight_scale_inv"
    ),
    ("step3p5", "fp8", "fp8_block", "c"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight_scale_inv"
    ),
    ("step3p5", "fp8", "fp8_block", "d"): OK,
    ("step3p5", "fp8", "fp8_block", "e"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.self_attn.o_proj.weight_scale_inv"
    ),
    ("step3p5", "fp8", "fp8_block", "f"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight_scale_inv"
    ),
    ("step3p5", "fp8", "fp8_block", "g"): OK,
    # step3p5 / quark mxfp4
    ("step3p5", "quark", "mxfp4", "a"): _loud(
        "AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight"
    ),
    ("step3p5", "quark", "mxfp4", "b"): OK,
    ("step3p5", "quark", "mxfp4", "c"): _loud(
        "AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight"
    ),
    ("step3p5", "quark", "mxfp4", "d"): OK,
    ("step3p5", "quark", "mxfp4", "e"): _loud(
        "AssertionError", "model.layers.2.mtp_block.self_attn.qkv_proj.weight"
    ),
    ("step3p5", "quark", "mxfp4", "f"): _loud(
        "AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj.weight"
    ),
    ("step3p5", "quark", "mxfp4", "g"): OK,
    # qwen3_next / compressed-tensors nvfp4
    ("qwen3_next", "compressed-tensors", "nvfp4", "a"): _loud("ValueError", "fc.weight"),
    ("qwen3_next", "compressed-tensors", "nvfp4", "b"): OK,
    ("qwen3_next", "compressed-tensors", "nvfp4", "c"): OK,
    ("qwen3_next", "compressed-tensors", "nvfp4", "d"): OK,
    ("qwen3_next", "compressed-tensors", "nvfp4", "e"): OK,
    ("qwen3_next", "compressed-tensors", "nvfp4", "f"): OK,
    ("qwen3_next", "compressed-tensors", "nvfp4", "g"): OK,
    # qwen3_next / compressed-tensors fp8
    ("qwen3_next", "compressed-tensors", "fp8", "a"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.k_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.down_proj", "mtp.layers.0.mlp.shared_expert.down_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.down_proj"),
    ),
    ("qwen3_next", "compressed-tensors", "fp8", "b"): OK,
    ("qwen3_next", "compressed-tensors", "fp8", "c"): OK,
    ("qwen3_next", "compressed-tensors", "fp8", "d"): OK,
    ("qwen3_next", "compressed-tensors", "fp8", "e"): OK,
    ("qwen3_next", "compressed-tensors", "fp8", "f"): OK,
    ("qwen3_next", "compressed-tensors", "fp8", "g"): OK,
    # qwen3_next / fp8 fp8_block
    ("qwen3_next", "fp8", "fp8_block", "a"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.k_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.down_proj", "mtp.layers.0.mlp.shared_expert.down_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.down_proj"),
    ),
    ("qwen3_next", "fp8", "fp8_block", "b"): _silent(
        ("mtp.fc", "mtp.fc"),
        ("mtp.layers.0.self_attn.qkv_proj", "mtp.layers.0.self_attn.k_proj"),
        ("mtp.layers.0.self_attn.o_proj", "mtp.layers.0.self_attn.o_proj"),
        ("mtp.layers.0.mlp.shared_expert.gate_up_proj", "mtp.layers.0.mlp.shared_expert.gate_proj"),
        ("mtp.layers.0.mlp.shared_expert.down_proj", "mtp.layers.0.mlp.shared_expert.down_proj"),
        ("mtp.layers.0.mlp.experts", "mtp.layers.0.mlp.experts.0.down_proj"),
    ),
    ("qwen3_next", "fp8", "fp8_block", "c"): OK,
    ("qwen3_next", "fp8", "fp8_block", "d"): OK,
    ("qwen3_next", "fp8", "fp8_block", "e"): OK,
    ("qwen3_next", "fp8", "fp8_block", "f"): OK,
    ("qwen3_next", "fp8", "fp8_block", "g"): OK,
    # qwen3_next / quark mxfp4
    ("qwen3_next", "quark", "mxfp4", "a"): _loud("AssertionError", "fc.weight"),
    ("qwen3_next", "quark", "mxfp4", "b"): OK,
    ("qwen3_next", "quark", "mxfp4", "c"): OK,
    ("qwen3_next", "quark", "mxfp4", "d"): OK,
    ("qwen3_next", "quark", "mxfp4", "e"): OK,
    ("qwen3_next", "quark", "mxfp4", "f"): OK,
    ("qwen3_next", "quark", "mxfp4", "g"): OK,
    # deepseek_v3 / compressed-tensors nvfp4
    ("deepseek_v3", "compressed-tensors", "nvfp4", "a"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_weight"
    ),
    ("deepseek_v3", "compressed-tensors", "nvfp4", "b"): OK,
    ("deepseek_v3", "compressed-tensors", "nvfp4", "c"): OK,
    ("deepseek_v3", "compressed-tensors", "nvfp4", "d"): OK,
    ("deepseek_v3", "compressed-tensors", "nvfp4", "e"): OK,
    ("deepseek_v3", "compressed-tensors", "nvfp4", "f"): OK,
    ("deepseek_v3", "compressed-tensors", "nvfp4", "g"): _loud(
        "KeyError", "model.layers.2.shared_head.head.input_global_scale"
    ),
    # deepseek_v3 / compressed-tensors fp8
    ("deepseek_v3", "compressed-tensors", "fp8", "a"): _silent(
        (
            "model.layers.2.self_attn.fused_qkv_a_proj",
            "model.layers.2.self_attn.kv_a_proj_with_mqa",
        ),
        ("model.layers.2.self_attn.q_b_proj", "model.layers.2.self_attn.q_b_proj"),
        ("model.layers.2.self_attn.kv_b_proj", "model.layers.2.self_attn.kv_b_proj"),
        ("model.layers.2.self_attn.o_proj", "model.layers.2.self_attn.o_proj"),
        (
            "model.layers.2.mlp.shared_experts.gate_up_proj",
            "model.layers.2.mlp.shared_experts.gate_proj",
        ),
        (
            "model.layers.2.mlp.shared_experts.down_proj",
            "model.layers.2.mlp.shared_experts.down_proj",
        ),
        ("model.layers.2.mlp.experts", "model.layers.2.mlp.experts.0.down_proj"),
    ),
    ("deepseek_v3", "compressed-tensors", "fp8", "b"): OK,
    ("deepseek_v3", "compressed-tensors", "fp8", "c"): OK,
    ("deepseek_v3", "compressed-tensors", "fp8", "d"): OK,
    ("deepseek_v3", "compressed-tensors", "fp8", "e"): OK,
    ("deepseek_v3", "compressed-tensors", "fp8", "f"): OK,
    ("deepseek_v3", "compressed-tensors", "fp8", "g"): _loud(
        "KeyError", "model.layers.2.shared_head.head.input_scale"
    ),
    # deepseek_v3 / fp8 fp8_block
    ("deepseek_v3", "fp8", "fp8_block", "a"): _silent(
        (
            "model.layers.2.self_attn.fused_qkv_a_proj",
            "model.layers.2.self_attn.kv_a_proj_with_mqa",
        ),
        ("model.layers.2.self_attn.q_b_proj", "model.layers.2.self_attn.q_b_proj"),
        ("model.layers.2.self_attn.kv_b_proj", "model.layers.2.self_attn.kv_b_proj"),
        ("model.layers.2.self_attn.o_proj", "model.layers.2.self_attn.o_proj"),
        (
            "model.layers.2.mlp.shared_experts.gate_up_proj",
            "model.layers.2.mlp.shared_experts.gate_proj",
        ),
        (
            "model.layers.2.mlp.shared_experts.down_proj",
            "model.layers.2.mlp.shared_experts.down_proj",
        ),
        ("model.layers.2.mlp.experts", "model.layers.2.mlp.experts.0.down_proj"),
    ),
    ("deepseek_v3", "fp8", "fp8_block", "b"): _silent(
        (
            "model.layers.2.self_attn.fused_qkv_a_proj",
            "model.layers.2.self_attn.kv_a_proj_with_mqa",
        ),
        ("model.layers.2.self_attn.q_b_proj", "model.layers.2.self_attn.q_b_proj"),
        ("model.layers.2.self_attn.kv_b_proj", "model.layers.2.self_attn.kv_b_proj"),
        ("model.layers.2.self_attn.o_proj", "model.layers.2.self_attn.o_proj"),
        (
            "model.layers.2.mlp.shared_experts.gate_up_proj",
            "model.layers.2.mlp.shared_experts.gate_proj",
        ),
        (
            "model.layers.2.mlp.shared_experts.down_proj",
            "model.layers.2.mlp.shared_experts.down_proj",
        ),
        ("model.layers.2.mlp.experts", "model.layers.2.mlp.experts.0.down_proj"),
    ),
    ("deepseek_v3", "fp8", "fp8_block", "c"): OK,
    ("deepseek_v3", "fp8", "fp8_block", "d"): OK,
    ("deepseek_v3", "fp8", "fp8_block", "e"): OK,
    ("deepseek_v3", "fp8", "fp8_block", "f"): OK,
    ("deepseek_v3", "fp8", "fp8_block", "g"): OK,
    # deepseek_v3 / quark mxfp4
    ("deepseek_v3", "quark", "mxfp4", "a"): _loud(
        "RuntimeError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_weight"
    ),
    ("deepseek_v3", "quark", "mxfp4", "b"): OK,
    ("deepseek_v3", "quark", "mxfp4", "c"): OK,
    ("deepseek_v3", "quark", "mxfp4", "d"): OK,
    ("deepseek_v3", "quark", "mxfp4", "e"): OK,
    ("deepseek_v3", "quark", "mxfp4", "f"): OK,
    ("deepseek_v3", "quark", "mxfp4", "g"): OK,
}

assert len(FAMILY_CASES) == 56 and len(FORMAT_CASES) == 84
assert sorted(STOCK_OUTCOMES_MORE) == sorted(CASES)
