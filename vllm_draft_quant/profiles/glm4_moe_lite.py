"""GLM-4.7-Flash NextN (vLLM draft architecture ``Glm4MoeLiteMTPModel``).

Read off vLLM 0.33.0 ``model_executor/models/glm4_moe_lite_mtp.py``
(Glm4MoeLiteMultiTokenPredictorLayer.__init__, SharedHead,
Glm4MoeLiteMultiTokenPredictor.__init__, Glm4MoeLiteMTP.load_weights /
_rewrite_spec_layer_name) and ``glm4_moe_lite.py:Glm4MoeLiteDecoderLayer``.
``config/speculative.py`` rewrites ``Glm4MoeLiteForCausalLM`` to
"Glm4MoeLiteMTPModel". Layer n = num_hidden_layers + k; parameters gain
``mtp_block.`` but the decoder layer is built with the layer prefix. Attention is
DeepSeek's MLA (``Glm4MoeLiteMLAAttention`` = ``DeepseekV2MLAAttention`` whenever
``model_config.use_mla``: ``fused_qkv_a_proj``, ``q_b_proj``, ``kv_b_proj``,
``o_proj``), the MoE is GLM-4.5's (router built without a quant config, routed and
shared experts), the head ``SharedHead`` -> ``model.layers.{n}.head``, ``eh_proj`` a
plain ``torch.nn.Linear``. Unlike ``Glm4MoeMTP`` its ``load_weights`` does not route
``lm_head.weight`` into the NextN head.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import deepseek_nextn_layer

__all__ = ["GLM4_MOE_LITE_MTP", "PROFILES"]

GLM4_MOE_LITE_MTP = DrafterProfile(
    architecture="Glm4MoeLiteMTPModel",
    target_architectures=("Glm4MoeLiteForCausalLM",),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=deepseek_nextn_layer(),
    families=("GLM-4.7-Flash",),
    # Glm4MoeLiteMultiTokenPredictorLayer.__init__ builds with vllm_config.quant_config
    # (the target's object); Glm4MoeLiteMTP has no packed_modules_mapping, so the
    # target's (Glm4MoeLiteForCausalLM, a DeepseekV2ForCausalLM: gate_up_proj,
    # fused_qkv_a_proj) stays on it.
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (GLM4_MOE_LITE_MTP,)
