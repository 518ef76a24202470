"""Dense Qwen3.5 / Qwen3.6 MTP, text-only and multimodal (vLLM draft architecture
``Qwen3_5MTP``).

Read off vLLM 0.33.0 ``model_executor/models/qwen3_5_mtp.py``
(Qwen3_5MultiTokenPredictor.__init__, Qwen3_5MTP.__init__ / load_weights) and
``qwen3_5.py:Qwen3_5DecoderLayer`` (a dense layer builds ``Qwen3NextMLP``).
``config/speculative.py`` gives targets of model type ``qwen3_5`` / ``qwen3_5_text``
the draft architecture ``Qwen3_5MTP`` (the MoE ones get ``Qwen3_5MoeMTP``,
``qwen3_5_moe.py``). Built with prefix ``mtp``, so runtime prefixes stay in checkpoint
form (``mtp.layers.{k}``, ``mtp.fc``); fusions come from
Qwen3_5Model.hf_to_vllm_mapper (q/k/v, gate/up); the drafter's own ``lm_head`` is a
ParallelLMHead built with the quant config.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import (
    MODELOPT_FP4_FC_UNQUANTIZED,
    dense_block,
    qwen_mtp_globals,
)

__all__ = ["PROFILES", "QWEN3_5_MTP"]

QWEN3_5_MTP = DrafterProfile(
    architecture="Qwen3_5MTP",
    target_architectures=("Qwen3_5ForCausalLM", "Qwen3_5ForConditionalGeneration"),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}", index="local"),
    modules=dense_block(),
    globals=qwen_mtp_globals(),
    num_layers_keys=("mtp_num_hidden_layers",),
    families=("Qwen3.5", "Qwen3.6", "Qwen3.5-VL"),
    # Same construction as Qwen3_5MoeMTP (one __init__): the target's config object,
    # the drafter's own packed_modules_mapping (qkv_proj, gate_up_proj) put on it by
    # model_loader/utils.py:configure_quant_config, so exact shard names exclude fused
    # modules; mtp.fc forced unquantized under modelopt_fp4 (MODELOPT_FP4_FC_UNQUANTIZED).
    # Not recorded as data: with a GPTQ config whose ``dynamic`` has a "-:" rule naming
    # ``mtp``, the same __init__ builds the MTP layers unquantized (``fix`` writes no
    # GPTQ configs); the plugin's plan builds them as their tensors are stored.
    stock=StockBehaviour(
        quant_config="target",
        packed_exclusions=True,
        always_unquantized=MODELOPT_FP4_FC_UNQUANTIZED,
    ),
)

PROFILES: tuple[DrafterProfile, ...] = (QWEN3_5_MTP,)
