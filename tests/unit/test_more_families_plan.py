"""Issue 8 without vLLM: the new drafter families and formats plan every module as stored.

- GLM-4.5 MoE, Qwen3.5 MoE (text-only and multimodal) and MiMo with ModelOpt NVFP4/FP8,
  and Step-3.5 / Qwen3-Next / DeepSeek-V3 with compressed-tensors FP8, DeepSeek-native
  FP8 block and Quark MXFP4, over layouts a..g (the integration tier loads the same
  checkpoints through vLLM);
- the runtime prefixes each profile predicts (MiMo's numbering differs between the
  checkpoint and vLLM);
- profile data that makes the adapter drop GLM's shadowing ``lm_head`` and redo
  Step-3.5's completeness check, and the plan saying so.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from _plan_checks import QUANTIZABLE_KINDS, assert_plan_follows_stored_formats
from support import LAYOUTS, CheckpointSpec, MtpFormats, write_checkpoint

from vllm_draft_quant import ConflictError, Scheme, plan
from vllm_draft_quant.adapter.weights import shadowed_modules
from vllm_draft_quant.checkpoint.facts import load_facts
from vllm_draft_quant.profiles import LayerRoot, profile_for_draft, profile_for_target

NEW_FAMILIES = ("glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo", "glm5", "qwen3_5",
                "glm4_moe_lite")
FIRST_FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
NEW_FORMATS = (("compressed-tensors", "fp8"), ("fp8", "fp8_block"), ("quark", "mxfp4"))
MATRIX = [
    pytest.param(f, "modelopt", s, lay, id=f"{f}-modelopt-{s}-{lay}")
    for f, s, lay in itertools.product(NEW_FAMILIES, ("nvfp4", "fp8"), sorted(LAYOUTS))
] + [
    pytest.param(f, p, s, lay, id=f"{f}-{p}-{s}-{lay}")
    for f, (p, s), lay in itertools.product(FIRST_FAMILIES, NEW_FORMATS, sorted(LAYOUTS))
]
DRAFTERS = {
    "glm4_moe": "Glm4MoeMTPModel",
    "qwen3_5_moe": "Qwen3_5MoeMTP",
    "qwen3_5_moe_vl": "Qwen3_5MoeMTP",
    "mimo": "MiMoMTPModel",
    "glm5": "DeepseekV32MTPModel",
    "qwen3_5": "Qwen3_5MTP",
    "glm4_moe_lite": "Glm4MoeLiteMTPModel",
}


def _heads_stay_bf16(family: str, producer: str) -> bool:
    """fp8 / Quark configs cannot quantize a ParallelLMHead; MiMo has no MTP head."""
    return family == "mimo" or (producer in ("fp8", "quark") and family != "qwen3_next")


@pytest.mark.parametrize(("family", "producer", "scheme", "layout"), MATRIX)
def test_every_draft_module_is_planned_as_stored(
    tmp_path: Path, family: str, producer: str, scheme: str, layout: str
) -> None:
    w = write_checkpoint(tmp_path, CheckpointSpec(family, scheme, producer, layout))  # type: ignore[arg-type]
    p = plan(tmp_path)
    assert_plan_follows_stored_formats(p, w)
    quantized = set(LAYOUTS[layout].quantized)
    if _heads_stay_bf16(family, producer):
        quantized.discard("head")
    groups = {
        d.group
        for d in p.modules
        if d.kind in QUANTIZABLE_KINDS and d.scheme is not Scheme.UNQUANTIZED
    }
    assert groups == quantized
    if layout == "a":  # exclusions that do not mention the BF16 MTP: config disagrees
        assert p.conflicts
        with pytest.raises(ConflictError):
            plan(tmp_path, mode="strict")
    else:  # the config describes the tensors (in the producer's own grammar)
        assert p.conflicts == (), [c.message for c in p.conflicts]


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_target_architecture_picks_the_drafter(tmp_path: Path, family: str) -> None:
    w = write_checkpoint(tmp_path, CheckpointSpec(family, "nvfp4", layout="g"))  # type: ignore[arg-type]
    assert plan(tmp_path).drafter == DRAFTERS[family]
    assert (
        profile_for_target(w.config["architectures"], origin="x").architecture == DRAFTERS[family]
    )


EXPECTED_PREFIXES = {
    # NextN layer n = num_hidden_layers (2); decoder layer built without `mtp_block`;
    # the head's prefix is `<layer>.head`
    "glm4_moe": {
        "model.layers.2.self_attn.qkv_proj",
        "model.layers.2.self_attn.o_proj",
        "model.layers.2.mlp.gate",
        "model.layers.2.mlp.experts",
        "model.layers.2.mlp.shared_experts.gate_up_proj",
        "model.layers.2.mlp.shared_experts.down_proj",
        "model.layers.2.head",
        "model.layers.2.eh_proj",
    },
    # prefixes stay in checkpoint form; the drafter's own lm_head
    "qwen3_5_moe": {
        "mtp.layers.0.self_attn.qkv_proj",
        "mtp.layers.0.self_attn.o_proj",
        "mtp.layers.0.mlp.gate",
        "mtp.layers.0.mlp.experts",
        "mtp.layers.0.mlp.shared_expert.gate_up_proj",
        "mtp.layers.0.mlp.shared_expert.down_proj",
        "mtp.layers.0.mlp.shared_expert_gate",
        "mtp.fc",
        "lm_head",
    },
    # checkpoint model.mtp_layers.{k} -> runtime model.layers.{num_hidden_layers + k}
    "mimo": {
        "model.layers.2.self_attn.qkv_proj",
        "model.layers.2.self_attn.o_proj",
        "model.layers.2.mlp.gate_up_proj",
        "model.layers.2.mlp.down_proj",
        "model.layers.2.input_proj",
        "lm_head",
    },
}
EXPECTED_PREFIXES["qwen3_5_moe_vl"] = EXPECTED_PREFIXES["qwen3_5_moe"]
# GLM-5 (DeepseekV32MTPModel): DeepSeek-V3's NextN layer plus the DSA indexer
EXPECTED_PREFIXES["glm5"] = {
    "model.layers.2.self_attn.fused_qkv_a_proj",
    "model.layers.2.self_attn.q_b_proj",
    "model.layers.2.self_attn.kv_b_proj",
    "model.layers.2.self_attn.o_proj",
    "model.layers.2.self_attn.indexer.wq_b",
    "model.layers.2.self_attn.indexer.wk_weights_proj",
    "model.layers.2.mlp.gate",
    "model.layers.2.mlp.experts",
    "model.layers.2.mlp.shared_experts.gate_up_proj",
    "model.layers.2.mlp.shared_experts.down_proj",
    "model.layers.2.head",
    "model.layers.2.eh_proj",
}
EXPECTED_PREFIXES["glm4_moe_lite"] = EXPECTED_PREFIXES["glm5"] - {
    "model.layers.2.self_attn.indexer.wq_b", "model.layers.2.self_attn.indexer.wk_weights_proj"}
# dense Qwen3.5 (Qwen3_5MTP): checkpoint-form prefixes, a dense MLP
EXPECTED_PREFIXES["qwen3_5"] = {
    "mtp.layers.0.self_attn.qkv_proj",
    "mtp.layers.0.self_attn.o_proj",
    "mtp.layers.0.mlp.gate_up_proj",
    "mtp.layers.0.mlp.down_proj",
    "mtp.fc",
    "lm_head",
}


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_runtime_prefixes(tmp_path: Path, family: str) -> None:
    write_checkpoint(tmp_path, CheckpointSpec(family, "fp8", layout="g"))  # type: ignore[arg-type]
    assert {d.module for d in plan(tmp_path).modules} == EXPECTED_PREFIXES[family]


def test_mimo_numbers_checkpoint_and_runtime_layers_differently(tmp_path: Path) -> None:
    layers = (MtpFormats("nvfp4", "bf16", "bf16"), MtpFormats("bf16", "nvfp4", "bf16"))
    write_checkpoint(tmp_path, CheckpointSpec("mimo", "nvfp4", layout=layers, num_mtp_layers=2))
    names = load_facts(tmp_path).names
    assert [(x.checkpoint_root, x.runtime_root) for x in names.layers] == [
        ("model.mtp_layers.0", "model.layers.2"),
        ("model.mtp_layers.1", "model.layers.3"),
    ]
    by = plan(tmp_path, mode="strict").by_module()
    assert by["model.layers.2.self_attn.qkv_proj"].scheme is Scheme.NVFP4
    assert by["model.layers.2.mlp.gate_up_proj"].scheme is Scheme.UNQUANTIZED
    assert by["model.layers.3.self_attn.qkv_proj"].scheme is Scheme.UNQUANTIZED
    assert by["model.layers.3.mlp.down_proj"].scheme is Scheme.NVFP4
    assert (
        by["model.layers.3.mlp.down_proj"]
        .checkpoint_tensors[0]
        .startswith("model.mtp_layers.1.mlp.down_proj.")
    )


def test_layer_root_checks_its_numbering() -> None:
    assert LayerRoot("a.{n}", "b.{n}", "local", "global").runtime_index == "global"
    with pytest.raises(ValueError, match="runtime_index"):
        LayerRoot("a.{n}", "b.{n}", "local", "both")


def test_glm_head_plan_says_lm_head_is_not_passed(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, CheckpointSpec("glm4_moe", "nvfp4", layout="g"))
    p = plan(tmp_path)
    head = p.by_module()["model.layers.2.head"]
    assert head.scheme is Scheme.NVFP4 and head.kind == "lm_head"
    assert "also writes lm_head into it" in head.reason
    assert head.checkpoint_tensors[0].startswith("model.layers.2.shared_head.head.")
    assert shadowed_modules(profile_for_draft(p.drafter), p) == {"lm_head"}


@pytest.mark.parametrize("family", ("step3p5", "qwen3_next", "deepseek_v3", "qwen3_5_moe", "mimo"))
def test_only_glm_shadows_a_module(tmp_path: Path, family: str) -> None:
    write_checkpoint(tmp_path, CheckpointSpec(family, "nvfp4", layout="g"))  # type: ignore[arg-type]
    p = plan(tmp_path)
    assert shadowed_modules(profile_for_draft(p.drafter), p) == frozenset()


def test_only_step3p5_checks_completeness() -> None:
    from vllm_draft_quant.profiles import PROFILES

    assert {p.architecture for p in PROFILES if p.checks_completeness} == {"Step3p5MTP"}


@pytest.mark.parametrize(
    ("producer", "scheme", "field"),
    [
        ("fp8", "fp8_block", "modules_to_not_convert"),
        ("quark", "mxfp4", "exclude"),
        ("compressed-tensors", "fp8", "ignore"),
    ],
)
def test_exclusion_forms_per_producer(
    tmp_path: Path, producer: str, scheme: str, field: str
) -> None:
    """a: the field does not mention MTP; b: one wildcard in the producer's grammar
    (``re:`` regex, or the literal stem vLLM's fp8 matches exactly); c: exact names."""
    written = {}
    for lay in "abc":
        w = write_checkpoint(tmp_path / lay, CheckpointSpec("deepseek_v3", scheme, producer, lay))  # type: ignore[arg-type]
        written[lay] = [
            e
            for e in w.config["quantization_config"].get(field, [])
            if "layers.2" in e.replace("\\", "")
        ]
    assert written["a"] == []
    assert written["b"] == (["model.layers.2"] if producer == "fp8" else [r"re:model\.layers\.2.*"])
    assert "model.layers.2.self_attn.q_a_proj" in written["c"]
