"""GLM-5.x and DeepSeek-V3.2 MTP (vLLM draft architecture ``DeepseekV32MTPModel``).

``config/speculative.py`` (``hf_config_override``) gives targets of model type
``deepseek_v32`` (``DeepseekV32ForCausalLM``) and ``glm_moe_dsa``
(``GlmMoeDsaForCausalLM``) the draft architecture ``DeepseekV32MTPModel``; the
registry maps it to ``vllm.models.deepseek_v32``'s ``DeepseekV32MTP``, which is
``deepseek_v32/nvidia/mtp.py`` on CUDA, ``amd/mtp.py`` on ROCm and the generic
``deepseek_mtp.py:DeepSeekMTP`` elsewhere (the CPU platform included). Read off vLLM
0.33.0 ``deepseek_v32/nvidia/mtp.py`` (DeepseekV32MultiTokenPredictorLayer.__init__,
DeepseekV32MTP._rewrite_spec_layer_name, DeepseekV32MTP.load_weights),
``deepseek_v32/nvidia/model.py:DeepseekV32DecoderLayer`` and
``deepseek_v32/attention.py`` (DeepseekV32Attention, DeepseekV32Indexer); all three
platforms build the same prefixes.

Like ``DeepSeekMTPModel``: layer n = num_hidden_layers + k, parameters gain
``mtp_block.`` but the decoder layer is built with the layer prefix, MLA with
``fused_qkv_a_proj``, DeepSeek-V3's MoE, ``SharedHead`` (imported from
``deepseek_mtp.py``) building its ParallelLMHead as ``model.layers.{n}.head``, and
``eh_proj`` a plain ``torch.nn.Linear``. The DSA indexer adds ``wq_b`` (quantizable)
and ``wk`` + ``weights_proj`` fused into ``wk_weights_proj`` (built unquantized).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import deepseek_nextn_layer

__all__ = ["DEEPSEEK_V32_MTP", "PROFILES"]

DEEPSEEK_V32_MTP = DrafterProfile(
    architecture="DeepseekV32MTPModel",
    target_architectures=("DeepseekV32ForCausalLM", "GlmMoeDsaForCausalLM"),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=deepseek_nextn_layer(indexer=True),
    families=("GLM-5", "GLM-5.1", "GLM-5.2", "DeepSeek-V3.2", "DeepSeek-V3.2-Exp"),
    # DeepseekV32MultiTokenPredictorLayer.__init__ / DeepseekV32DecoderLayer.__init__
    # build with vllm_config.quant_config, the target's object; DeepseekV32MTP has no
    # packed_modules_mapping, so the target's (DeepseekV2ForCausalLM's, which
    # DeepseekV32ForCausalLM and GlmMoeDsaForCausalLM inherit: gate_up_proj and
    # fused_qkv_a_proj) stays on it: exact shard names exclude fused modules.
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (DEEPSEEK_V32_MTP,)
