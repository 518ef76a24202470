"""Qwen3.5 MoE MTP, text-only and multimodal (vLLM draft architecture ``Qwen3_5MoeMTP``).

Read off vLLM 0.33.0 ``model_executor/models/qwen3_5_mtp.py``
(Qwen3_5MultiTokenPredictor.__init__, Qwen3_5MTP.__init__, Qwen3_5MoeMTP). Built with
prefix ``mtp``, so runtime prefixes stay in checkpoint form (``mtp.layers.{k}``,
``mtp.fc``); fusions come from Qwen3_5Model.hf_to_vllm_mapper (q/k/v, gate/up,
shared_expert gate/up); unlike Qwen3-Next, the drafter's own ``lm_head`` is a
ParallelLMHead built *with* the quant config. The multimodal wrapper
(Qwen3_5MoeForConditionalGeneration) gets the same drafter: its
``model.language_model.*`` target names never reach it (only ``mtp.*``, ``lm_head`` and
the embedding are read) and its text config sits under ``text_config``.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import (
    MODELOPT_FP4_FC_UNQUANTIZED,
    attention,
    qwen_mtp_globals,
    qwen_sparse_moe,
)

__all__ = ["PROFILES", "QWEN3_5_MOE_MTP"]

QWEN3_5_MOE_MTP = DrafterProfile(
    architecture="Qwen3_5MoeMTP",
    target_architectures=("Qwen3_5MoeForCausalLM", "Qwen3_5MoeForConditionalGeneration"),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}", index="local"),
    modules=(*attention(), *qwen_sparse_moe()),
    globals=qwen_mtp_globals(),
    num_layers_keys=("mtp_num_hidden_layers",),
    families=("Qwen3.5-MoE", "Qwen3.5-VL-MoE"),
    # Qwen3_5MultiTokenPredictor.__init__ builds with vllm_config.quant_config, the
    # target's object; the drafter's class attribute Qwen3_5MTP.packed_modules_mapping
    # (qkv_proj, gate_up_proj) replaces the target's there
    # (model_loader/utils.py:configure_quant_config), so exact shard names exclude fused
    # modules; mtp.fc: see MODELOPT_FP4_FC_UNQUANTIZED (measured: a checkpoint storing
    # it NVFP4 fails on "fc.input_scale"). Not recorded: the same __init__ also builds
    # the MTP layers unquantized when a GPTQ ``dynamic`` rule names ``mtp`` (``fix``
    # writes no GPTQ configs).
    stock=StockBehaviour(
        quant_config="target",
        packed_exclusions=True,
        always_unquantized=MODELOPT_FP4_FC_UNQUANTIZED,
    ),
)

PROFILES: tuple[DrafterProfile, ...] = (QWEN3_5_MOE_MTP,)
