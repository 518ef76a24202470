"""Drafter profiles, as data. One entry per vLLM draft architecture.

Each entry was read off vLLM 0.33.0's drafter code (cited per profile) and is
checked against the prefixes the installed vLLM really passes by
``tests/integration/test_profile_prefixes.py``. See ``README.md`` beside this
file for how to add a family.
"""

from __future__ import annotations

from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles.schema import DrafterProfile, LayerRoot, ModuleSpec

__all__ = ["PROFILES"]

L, X, H, P, F = (
    ModuleKind.LINEAR,
    ModuleKind.EXPERTS,
    ModuleKind.LM_HEAD,
    ModuleKind.PLAIN,
    ModuleKind.FIXED,
)

# step3p5_mtp.py: Step3p5AMultiTokenPredictorLayer / Step3p5MTP._rewrite_spec_layer_name.
# Layer n = num_hidden_layers + k in both namespaces; the decoder block gains
# `mtp_block.`; q/k/v and gate/up fuse; stacked 3-D experts `moe.{gate,up,down}_proj`;
# `shared_head.output` loads into `shared_head.head`; eh_proj is a torch nn.Linear.
STEP3P5_MTP = DrafterProfile(
    architecture="Step3p5MTP",
    target_architectures=("Step3p5ForCausalLM", "Step3p7ForCausalLM", "Step3p7ForConditionalGeneration"),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=(
        ModuleSpec("mtp_block.self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("mtp_block.self_attn.o_proj", ("self_attn.o_proj",)),
        ModuleSpec("mtp_block.self_attn.g_proj", ("self_attn.g_proj",)),
        ModuleSpec("mtp_block.mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj"), group="mlp"),
        ModuleSpec("mtp_block.mlp.down_proj", ("mlp.down_proj",), group="mlp"),
        ModuleSpec("mtp_block.moe.gate", ("moe.gate",), F, group="mlp"),
        ModuleSpec("mtp_block.moe.experts",
                   ("moe.gate_proj", "moe.up_proj", "moe.down_proj"), X, group="mlp"),
        ModuleSpec("mtp_block.moe.share_expert.gate_up_proj",
                   ("share_expert.gate_proj", "share_expert.up_proj"), group="mlp"),
        ModuleSpec("mtp_block.moe.share_expert.down_proj", ("share_expert.down_proj",), group="mlp"),
        ModuleSpec("shared_head.head", ("shared_head.output",), H, group="head"),
        ModuleSpec("eh_proj", ("eh_proj",), P, group="head"),
    ),
    text_config_keys=("text_config",),
    families=("Step-3.5-Flash", "Step-3.7-Flash"),
)

# qwen3_next_mtp.py: Qwen3NextMultiTokenPredictor. Layers `mtp.layers.{k}` from 0;
# prefixes stay in checkpoint form; fusions come from Qwen3NextModel.hf_to_vllm_mapper;
# `mtp.fc` is hard-coded unquantized under modelopt_fp4; `lm_head` is the drafter's own
# ParallelLMHead (built without a quant config) loading the target's `lm_head.weight`.
QWEN3_NEXT_MTP = DrafterProfile(
    architecture="Qwen3NextMTP",
    target_architectures=("Qwen3NextForCausalLM",),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}", index="local"),
    modules=(
        ModuleSpec("self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
        ModuleSpec("mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj"), group="mlp"),
        ModuleSpec("mlp.down_proj", ("mlp.down_proj",), group="mlp"),
        ModuleSpec("mlp.gate", ("mlp.gate",), F, group="mlp"),
        ModuleSpec("mlp.experts",
                   ("mlp.experts.{e}.gate_proj", "mlp.experts.{e}.up_proj",
                    "mlp.experts.{e}.down_proj"), X, group="mlp"),
        ModuleSpec("mlp.shared_expert.gate_up_proj",
                   ("mlp.shared_expert.gate_proj", "mlp.shared_expert.up_proj"), group="mlp"),
        ModuleSpec("mlp.shared_expert.down_proj", ("mlp.shared_expert.down_proj",), group="mlp"),
        ModuleSpec("mlp.shared_expert_gate", ("mlp.shared_expert_gate",), F, group="mlp"),
    ),
    globals=(
        ModuleSpec("mtp.fc", ("mtp.fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), F, group="head"),
    ),
    num_layers_keys=("num_nextn_predict_layers", "mtp_num_hidden_layers"),
    families=("Qwen3-Next",),
)

# deepseek_mtp.py: DeepSeekMultiTokenPredictorLayer. Layer n = num_hidden_layers + k;
# parameters gain `mtp_block.` but the decoder layer is built with the layer prefix,
# so runtime prefixes have none; q_a_proj + kv_a_proj_with_mqa fuse into
# fused_qkv_a_proj; the head's runtime prefix is `model.layers.{n}.head`.
DEEPSEEK_MTP = DrafterProfile(
    architecture="DeepSeekMTPModel",
    target_architectures=("DeepseekV3ForCausalLM", "DeepseekV32ForCausalLM",
                          "KimiK2ForCausalLM"),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=(
        ModuleSpec("self_attn.fused_qkv_a_proj",
                   ("self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa")),
        ModuleSpec("self_attn.q_proj", ("self_attn.q_proj",)),
        ModuleSpec("self_attn.kv_a_proj_with_mqa", ("self_attn.kv_a_proj_with_mqa",),
                   unless_present=("self_attn.q_a_proj",)),
        ModuleSpec("self_attn.q_b_proj", ("self_attn.q_b_proj",)),
        ModuleSpec("self_attn.kv_b_proj", ("self_attn.kv_b_proj",)),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
        ModuleSpec("mlp.gate", ("mlp.gate",), F, group="mlp"),
        ModuleSpec("mlp.experts",
                   ("mlp.experts.{e}.gate_proj", "mlp.experts.{e}.up_proj",
                    "mlp.experts.{e}.down_proj"), X, group="mlp"),
        ModuleSpec("mlp.shared_experts.gate_up_proj",
                   ("mlp.shared_experts.gate_proj", "mlp.shared_experts.up_proj"), group="mlp"),
        ModuleSpec("mlp.shared_experts.down_proj", ("mlp.shared_experts.down_proj",), group="mlp"),
        ModuleSpec("mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj"), group="mlp"),
        ModuleSpec("mlp.down_proj", ("mlp.down_proj",), group="mlp"),
        ModuleSpec("head", ("shared_head.head",), H, group="head"),
        ModuleSpec("eh_proj", ("eh_proj",), P, group="head"),
    ),
    families=("DeepSeek-V3", "DeepSeek-R1", "DeepSeek-V3.1", "Kimi-K2"),
)

PROFILES: tuple[DrafterProfile, ...] = (STEP3P5_MTP, QWEN3_NEXT_MTP, DEEPSEEK_MTP)
