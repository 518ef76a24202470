"""Qwen3.8-Flash-Next / Qwen4Exp MTP (vLLM draft architecture ``Qwen4ExpMTP``).

Read off vLLM 0.33.0 ``models/qwen4_exp/nvidia/mtp.py`` (_remap_ignored_layers,
_remap_mtp_weight_name, _make_draft_vllm_config, Qwen4ExpMultiTokenPredictor.__init__,
Qwen4ExpMTP.__init__ / load_weights) and ``nvidia/qsa.py`` (``qkv_proj``, ``o_proj``).
Checkpoint layers ``mtp.layers.{k}`` (also under ``model.language_model.``); the
drafter builds layer k with prefix ``mtp.layers.{N + k}`` (N = num_hidden_layers) and
``fc_embedding`` / ``fc_hidden`` at ``mtp.fc_*``; the drafter's own ``lm_head``, a
ParallelLMHead built without a quant config, is fed the checkpoint's ``lm_head``
(``_remap_mtp_weight_name`` keeps ``lm_head.``; an ``mtp.shared_head.head`` would land
in the same parameter, last one read wins: not described). q/k/v and gate/up fuse
(Qwen3_5Model.hf_to_vllm_mapper); the MoE block is Qwen3-Next's. Every hyper-connection
(``nvidia/hyperconnection.py:GatedResidual``: each layer's ``attn_hyper_connection`` /
``mlp_hyper_connection``, the final ``mtp.hyper_connection_mixer``) builds its
projections with ``quant_config=None``; ``input_mix_weight_down`` and
``block_inject_weight`` fuse into ``input_mix_weight_down_block_inject``
(``model.py:_EXTRA_WEIGHTS_MAPPER``). The QSA indexer (config ``indexer_n_heads``) is
not described: without it the layer's attention is Qwen3-Next's
(``model.py:Qwen4ExpDecoderLayer.__init__``), the configuration the tests build on
the CPU (QSA needs FlashAttention).

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


def _hyper_connection(name: str, *, combine: bool = True) -> tuple[ModuleSpec, ...]:
    """A ``GatedResidual``'s projections, all built with no quant config: the
    ``ReplicatedLinear`` ones as routers are (``FIXED``); with ``combine`` (every layer's,
    not the final mixer) down and inject are one ``MergedColumnParallelLinear``, a
    ``LINEAR`` layer stock vLLM never quantizes (the plugin gives it its stored precision)."""
    if combine:
        down = ModuleSpec(f"{name}.input_mix_weight_down_block_inject",
                          (f"{name}.input_mix_weight_down", f"{name}.block_inject_weight"),
                          group="head")
    else:
        down = ModuleSpec(f"{name}.input_mix_weight_down", (f"{name}.input_mix_weight_down",),
                          ModuleKind.FIXED, group="head")
    return (down, ModuleSpec(f"{name}.input_mix_weight_up", (f"{name}.input_mix_weight_up",),
                             ModuleKind.FIXED, group="head"))


QWEN4_EXP_MTP = DrafterProfile(
    architecture="Qwen4ExpMTP",
    target_architectures=("Qwen4ExpForCausalLM", "Qwen4ExpForConditionalGeneration"),
    root=LayerRoot(checkpoint="mtp.layers.{n}", runtime="mtp.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(*attention(), *qwen_sparse_moe(), *_hyper_connection("attn_hyper_connection"),
             *_hyper_connection("mlp_hyper_connection")),
    globals=(
        ModuleSpec("mtp.fc_embedding", ("mtp.fc_embedding",), group="head"),
        ModuleSpec("mtp.fc_hidden", ("mtp.fc_hidden",), group="head"),
        *_hyper_connection("mtp.hyper_connection_mixer", combine=False),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.FIXED, group="head"),
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
