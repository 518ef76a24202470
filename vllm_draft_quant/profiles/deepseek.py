"""DeepSeek-V3 / R1 / V3.1 and Kimi-K2 MTP (vLLM draft architecture ``DeepSeekMTPModel``).

Read off vLLM 0.33.0 ``model_executor/models/deepseek_mtp.py``
(DeepSeekMultiTokenPredictorLayer.__init__, SharedHead, DeepSeekMTP.load_weights).
Layer n = num_hidden_layers + k; parameters gain ``mtp_block.`` but the decoder layer
is built with the layer prefix, so runtime prefixes have none; ``q_a_proj`` +
``kv_a_proj_with_mqa`` fuse into ``fused_qkv_a_proj`` (a layer without ``q_a_proj``
keeps ``kv_a_proj_with_mqa`` alone); the head's runtime prefix is
``model.layers.{n}.head``. Kimi-K2 checkpoints declare ``DeepseekV3ForCausalLM``
(there is no ``KimiK2ForCausalLM`` in vLLM's registry). GLM-5.x and DeepSeek-V3.2
targets get another drafter, ``DeepseekV32MTPModel`` (``deepseek_v32.py``).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import deepseek_nextn_layer

__all__ = ["DEEPSEEK_MTP", "PROFILES"]

DEEPSEEK_MTP = DrafterProfile(
    architecture="DeepSeekMTPModel",
    target_architectures=("DeepseekV3ForCausalLM",),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=deepseek_nextn_layer(),
    families=("DeepSeek-V3", "DeepSeek-R1", "DeepSeek-V3.1", "Kimi-K2"),
    # DeepSeekMultiTokenPredictorLayer.__init__ builds with vllm_config.quant_config, the
    # target's object. DeepSeekMTP has no packed_modules_mapping of its own, so the
    # target's stays on it (DeepseekV2ForCausalLM.packed_modules_mapping: gate_up_proj,
    # plus fused_qkv_a_proj that DeepseekV2ForCausalLM.__init__ adds when q_lora_rank is
    # set): exact shard names exclude fused modules.
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (DEEPSEEK_MTP,)
