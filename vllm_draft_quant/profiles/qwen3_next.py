"""Qwen3-Next MTP (vLLM draft architecture ``Qwen3NextMTP``).

Read off vLLM 0.33.0 ``model_executor/models/qwen3_next_mtp.py``
(Qwen3NextMultiTokenPredictor.__init__, Qwen3NextMTP). Layers ``mtp.layers.{k}`` from
0; prefixes stay in checkpoint form; fusions come from Qwen3NextModel.hf_to_vllm_mapper
(q/k/v, gate/up, shared_expert gate/up); ``lm_head`` is the drafter's own
ParallelLMHead (built without a quant config) loading the target's ``lm_head.weight``.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import (
    MODELOPT_FP4_FC_UNQUANTIZED,
    dense_block,
    qwen_mtp_globals,
    qwen_sparse_moe,
)

__all__ = ["PROFILES", "QWEN3_NEXT_MTP"]

QWEN3_NEXT_MTP = DrafterProfile(
    architecture="Qwen3NextMTP",
    target_architectures=("Qwen3NextForCausalLM",),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}", index="local"),
    modules=(*dense_block(), *qwen_sparse_moe()),
    globals=qwen_mtp_globals(lm_head=ModuleKind.FIXED),  # its lm_head: no quant config
    num_layers_keys=("num_nextn_predict_layers", "mtp_num_hidden_layers"),
    families=("Qwen3-Next",),
    # The drafter builds with vllm_config.quant_config, the target's object; its own
    # class attribute Qwen3NextMTP.packed_modules_mapping (qkv_proj, gate_up_proj)
    # replaces the target's there (model_loader/utils.py:configure_quant_config), so
    # exact shard names exclude fused modules. mtp.fc: see MODELOPT_FP4_FC_UNQUANTIZED
    # (a checkpoint storing it NVFP4 fails: "no module or parameter named 'fc.input_scale'").
    stock=StockBehaviour(
        quant_config="target",
        packed_exclusions=True,
        always_unquantized=MODELOPT_FP4_FC_UNQUANTIZED,
    ),
)

PROFILES: tuple[DrafterProfile, ...] = (QWEN3_NEXT_MTP,)
