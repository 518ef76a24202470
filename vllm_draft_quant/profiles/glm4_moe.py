"""GLM-4.5 / 4.6 / 4.7 MoE NextN (vLLM draft architecture ``Glm4MoeMTPModel``).

Read off vLLM 0.33.0 ``model_executor/models/glm4_moe_mtp.py``
(Glm4MoeMultiTokenPredictorLayer.__init__, SharedHead, Glm4MoeMultiTokenPredictor.__init__,
Glm4MoeMTP.load_weights). ``config/speculative.py`` rewrites the target's
Glm4MoeForCausalLM to "Glm4MoeMTPModel"; the registry maps it to the Glm4MoeMTP class.
Layer n = num_hidden_layers + k; parameters gain ``mtp_block.`` but Glm4MoeDecoderLayer
is built with the layer prefix, so runtime prefixes have none; q/k/v and gate/up fuse
(stacked_params_mapping); the router is a GateLinear built without a quant config;
SharedHead builds its ParallelLMHead with prefix ``model.layers.{n}.head``; eh_proj is
a ``torch.nn.Linear``. load_weights renames ``lm_head.weight`` to draft layer 0's
``shared_head.head.weight``, so the target's head and the NextN head feed one
parameter (``also_fed_by``; stock vLLM keeps whichever it reads last).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.profiles._fragments import attention, deepseek_moe, nextn_head

__all__ = ["GLM4_MOE_MTP", "PROFILES"]

GLM4_MOE_MTP = DrafterProfile(
    architecture="Glm4MoeMTPModel",
    target_architectures=("Glm4MoeForCausalLM",),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=(
        *attention(),
        *deepseek_moe(),  # GLM's MoE block is DeepSeek-V3's
        *nextn_head(also_fed_by=("lm_head",)),
    ),
    families=("GLM-4.5", "GLM-4.5-Air", "GLM-4.6", "GLM-4.7"),
    # Glm4MoeMultiTokenPredictor.__init__ passes vllm_config.quant_config (the target's
    # object) to every layer. Glm4MoeMTP has no packed_modules_mapping, so the target's
    # (Glm4MoeForCausalLM.packed_modules_mapping: qkv_proj, gate_up_proj) stays on it:
    # exact shard names exclude fused modules (measured, FINDINGS.md "More families":
    # exact checkpoint names fail only on the head, whose runtime prefix differs).
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (GLM4_MOE_MTP,)
