"""Qwen3.8-Flash-Next / Qwen4Exp MTP (vLLM draft architecture ``Qwen4ExpMTP``).

Read off vLLM 0.33.0 ``models/qwen4_exp/nvidia/mtp.py`` (_remap_ignored_layers,
_remap_mtp_weight_name, _make_draft_vllm_config, Qwen4ExpMultiTokenPredictor.__init__,
Qwen4ExpMTP.__init__ / load_weights) and ``nvidia/qsa.py`` (``qkv_proj``, ``o_proj``).
Checkpoint layers ``mtp.layers.{k}`` (also under ``model.language_model.``); the
drafter builds layer k with prefix ``mtp.layers.{N + k}`` (N = num_hidden_layers) and
``fc_embedding`` / ``fc_hidden`` at ``mtp.fc_*``; the checkpoint's
``mtp.shared_head.head`` is loaded into the drafter's own ``lm_head``, a
ParallelLMHead built without a quant config. q/k/v and gate/up fuse
(Qwen3_5Model.hf_to_vllm_mapper); the MoE block is Qwen3-Next's. The QSA indexer is
not described.

vLLM's own workaround: ``_make_draft_vllm_config`` builds the layers with
``get_draft_quant_config`` (a fresh parse of the checkpoint's config) and rewrites its
``ignored_layers`` / ``exclude_modules`` / ``quantized_layers`` from ``mtp.layers.{k}``
to ``mtp.layers.{N + k}`` (exact names; the plugin plans from the stored tensors and
overrides the remapped lists where they disagree with them).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import attention, qwen_sparse_moe

__all__ = ["PROFILES", "QWEN4_EXP_MTP"]

QWEN4_EXP_MTP = DrafterProfile(
    architecture="Qwen4ExpMTP",
    target_architectures=("Qwen4ExpForCausalLM", "Qwen4ExpForConditionalGeneration"),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(*attention(), *qwen_sparse_moe()),
    globals=(
        ModuleSpec("mtp.fc_embedding", ("mtp.fc_embedding",), group="head"),
        ModuleSpec("mtp.fc_hidden", ("mtp.fc_hidden",), group="head"),
        ModuleSpec("lm_head", ("mtp.shared_head.head",), ModuleKind.FIXED, group="head"),
    ),
    num_layers_keys=("mtp_num_hidden_layers", "num_nextn_predict_layers"),
    families=("Qwen3.8-Flash-Next",),
    # _make_draft_vllm_config: get_draft_quant_config (a fresh parse) given the
    # drafter's own packed_modules_mapping by configure_quant_config(..., Qwen4ExpMTP):
    # exact shard names exclude fused modules.
    # _remap_ignored_layers: every entry starting with "mtp." has its ``.layers.<k>``
    # raised by num_hidden_layers, so checkpoint-numbered names match the runtime ones
    # (and runtime-numbered ones no longer do).
    stock=StockBehaviour(quant_config="draft", packed_exclusions=True,
                         shifts_layer_numbers="mtp."),
)

PROFILES: tuple[DrafterProfile, ...] = (QWEN4_EXP_MTP,)
