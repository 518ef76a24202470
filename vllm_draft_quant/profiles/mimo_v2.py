"""MiMo-V2 (Flash, Pro) MTP (vLLM draft architectures ``MiMoV2MTPModel`` and
``MiMoV2OmniMTPModel``).

Read off vLLM 0.33.0 ``model_executor/models/mimo_v2_mtp.py`` (MiMoV2MTPLayer.__init__,
_MiMoV2MTPLayers, MiMoV2MultiTokenPredictor.__init__, MiMoV2MTP.__init__ /
load_weights). ``config/speculative.py`` maps ``MiMoV2FlashForCausalLM`` and
``MiMoV2ForCausalLM`` to "MiMoV2MTPModel" and ``MiMoV2OmniForCausalLM`` to
"MiMoV2OmniMTPModel" (a subclass), and builds only the first MTP layer
(``_MIMO_V2_*_NUM_MTP_LAYERS = 1``) whatever ``num_nextn_predict_layers`` says.
Layers are ``model.mtp.layers.{k}`` in checkpoint and runtime names alike; q/k/v fuse
into ``qkv_proj`` (Flash stores them apart), gate/up into ``gate_up_proj``.
``eh_proj`` is a ``ReplicatedLinear`` built with no quant config and no prefix; the
drafter's ``lm_head`` is a ParallelLMHead built without a quant config. Not described:
MiMo-V2-Pro stores ``qkv_proj`` already fused (the plugin then leaves that module to
vLLM's own loading).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import dense_block

__all__ = ["MIMO_V2_MTP", "PROFILES"]

MIMO_V2_MTP = DrafterProfile(
    architecture="MiMoV2MTPModel",
    architecture_aliases=("MiMoV2OmniMTPModel",),
    target_architectures=("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM",
                          "MiMoV2OmniForCausalLM"),
    root=LayerRoot(checkpoint="model.mtp.layers.{n}", runtime="model.mtp.layers.{n}",
                   index="local"),
    modules=(
        *dense_block(),
        ModuleSpec("eh_proj", ("eh_proj",), ModuleKind.FIXED, group="head"),
    ),
    globals=(ModuleSpec("lm_head", ("lm_head",), ModuleKind.FIXED, group="head"),),
    # vLLM builds one MTP layer whatever the config says (no key read)
    num_layers_keys=(),
    default_num_layers=1,
    families=("MiMo-V2-Flash", "MiMo-V2-Pro", "MiMo-V2-Omni"),
    # MiMoV2MultiTokenPredictor.__init__ passes vllm_config.quant_config (the target's
    # object) to the layer; MiMoV2MTP has no packed_modules_mapping, so the target's
    # (qkv_proj, gate_up_proj) stays on it.
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (MIMO_V2_MTP,)
