"""Drafter profiles, as data. One entry per vLLM draft architecture.

Each entry was read off vLLM 0.33.0's drafter code (cited per profile) and is
checked against the prefixes the installed vLLM really passes by
``tests/integration/test_profile_prefixes.py``. See ``README.md`` beside this
file for how to add a family.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec
from vllm_draft_quant.core.schemes import ModuleKind

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
    checks_completeness=True,  # load_weights: "Some parameters like ... are not in the checkpoint"
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

# glm4_moe_mtp.py: Glm4MoeMultiTokenPredictorLayer / Glm4MoeMTP.load_weights. vLLM's
# draft architecture is "Glm4MoeMTPModel" (speculative.py rewrites Glm4MoeForCausalLM to
# it; the registry maps it to the Glm4MoeMTP class). Layer n = num_hidden_layers + k;
# parameters gain `mtp_block.` but Glm4MoeDecoderLayer is built with the layer prefix, so
# runtime prefixes have none; q/k/v and gate/up fuse (stacked_params_mapping); the
# router is a GateLinear built without a quant config; SharedHead builds its
# ParallelLMHead with prefix `model.layers.{n}.head`; eh_proj is a torch nn.Linear.
# load_weights renames `lm_head.weight` to draft layer 0's `shared_head.head.weight`,
# so the target's head and the NextN head feed one parameter (also_fed_by).
GLM4_MOE_MTP = DrafterProfile(
    architecture="Glm4MoeMTPModel",
    target_architectures=("Glm4MoeForCausalLM",),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=(
        ModuleSpec("self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
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
        ModuleSpec("head", ("shared_head.head",), H, group="head", also_fed_by=("lm_head",)),
        ModuleSpec("eh_proj", ("eh_proj",), P, group="head"),
    ),
    families=("GLM-4.5", "GLM-4.5-Air", "GLM-4.6", "GLM-4.7"),
)

# qwen3_5_mtp.py: Qwen3_5MultiTokenPredictor / Qwen3_5MoeMTP. Built with prefix `mtp`,
# so runtime prefixes stay in checkpoint form (`mtp.layers.{k}`, `mtp.fc`); fusions
# come from Qwen3_5Model.hf_to_vllm_mapper (q/k/v, gate/up, shared_expert gate/up);
# `mtp.fc` is hard-coded unquantized under modelopt_fp4; unlike Qwen3-Next, the
# drafter's own `lm_head` is a ParallelLMHead built *with* the quant config. The
# multimodal wrapper (Qwen3_5MoeForConditionalGeneration) gets the same drafter: its
# `model.language_model.*` target names never reach it (only `mtp.*`, `lm_head` and
# the embedding are read) and its text config sits under `text_config`.
QWEN3_5_MOE_MTP = DrafterProfile(
    architecture="Qwen3_5MoeMTP",
    target_architectures=("Qwen3_5MoeForCausalLM", "Qwen3_5MoeForConditionalGeneration"),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}", index="local"),
    modules=(
        ModuleSpec("self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
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
        ModuleSpec("lm_head", ("lm_head",), H, group="head"),
    ),
    num_layers_keys=("mtp_num_hidden_layers",),
    families=("Qwen3.5-MoE", "Qwen3.5-VL-MoE"),
)

# mimo_mtp.py: MiMoMultiTokenPredictor / MiMoMTP. Vllm's draft architecture is
# "MiMoMTPModel". Checkpoint layers `model.mtp_layers.{k}` (k from 0); the hf_to_vllm_mapper
# moves parameters to `model.mtp_layers.{N + k}.mtp_block.*` (N = num_hidden_layers), but
# the Qwen2DecoderLayer is built with prefix `model.layers.{N + k}`, so runtime prefixes
# are `model.layers.{N + k}.self_attn.qkv_proj`, ...: no exclusion written in checkpoint
# names can match them. input_proj is a torch nn.Linear; the drafter's lm_head is a
# ParallelLMHead built without a quant config.
MIMO_MTP = DrafterProfile(
    architecture="MiMoMTPModel",
    target_architectures=("MiMoForCausalLM",),
    root=LayerRoot(checkpoint="model.mtp_layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(
        ModuleSpec("self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
        ModuleSpec("mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj"), group="mlp"),
        ModuleSpec("mlp.down_proj", ("mlp.down_proj",), group="mlp"),
        ModuleSpec("input_proj", ("input_proj",), P, group="head"),
    ),
    globals=(ModuleSpec("lm_head", ("lm_head",), F, group="head"),),
    families=("MiMo-7B",),
)

# llama_eagle3.py: Eagle3LlamaForCausalLM, a *separate* draft model (speculative_config
# method "eagle3" with its own checkpoint; the registry maps every alias below to this
# class). load_weights prefixes `model.` to every name but lm_head/d2t, and
# LlamaModel.hf_to_vllm_mapper renames `midlayer.` -> `layers.0.` (the reference/ModelOpt
# export; speculators exports already say `layers.{k}`); q/k/v and gate/up fuse.
# Parameters sit at `model.layers.{k}`, but LlamaModel builds decoder layer k with prefix
# `model.layers.{N + k}`, N = the *target's* get_total_num_hidden_layers() (start_layer_id).
# Layers, `model.fc` and `lm_head` get get_draft_quant_config(): a fresh parse of the draft
# folder's own config; the embedding is built without one.
EAGLE3_LLAMA = DrafterProfile(
    architecture="Eagle3LlamaForCausalLM",
    target_architectures=(),
    root=LayerRoot(checkpoint="layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(
        ModuleSpec("self_attn.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
        ModuleSpec("mlp.gate_up_proj", ("mlp.gate_proj", "mlp.up_proj"), group="mlp"),
        ModuleSpec("mlp.down_proj", ("mlp.down_proj",), group="mlp"),
    ),
    globals=(
        ModuleSpec("model.fc", ("fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), H, group="head"),
        ModuleSpec("model.embed_tokens", ("embed_tokens",), F, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    text_config_keys=("transformer_layer_config", "text_config"),
    architecture_aliases=("LlamaForCausalLMEagle3", "Eagle3MiniMaxM2ForCausalLM",
                          "Eagle3Qwen2_5vlForCausalLM", "Eagle3Qwen3vlForCausalLM",
                          "PEagleDraftModel", "PeagleLlamaForCausalLM"),
    hidden_layers_from="target",
    checkpoint_renames=(("midlayer.", "layers.0."),),
    families=("EAGLE3 Llama-3.x drafters (EAGLE reference, ModelOpt, speculators exports)",),
)

PROFILES: tuple[DrafterProfile, ...] = (
    STEP3P5_MTP, QWEN3_NEXT_MTP, DEEPSEEK_MTP, GLM4_MOE_MTP, QWEN3_5_MOE_MTP, MIMO_MTP,
    EAGLE3_LLAMA,
)
