"""Step-3.5 / Step-3.7 Flash MTP (vLLM draft architecture ``Step3p5MTP``).

Read off vLLM 0.33.0 ``model_executor/models/step3p5_mtp.py``
(Step3p5AMultiTokenPredictorLayer.__init__, Step3p5MTP.__init__ / load_weights /
_rewrite_spec_layer_name). Layer n = num_hidden_layers + k in both namespaces; the
decoder block gains ``mtp_block.``; q/k/v and gate/up fuse; the MoE experts are
stacked 3-D tensors ``moe.{gate,up,down}_proj``; ``shared_head.output`` loads into
``shared_head.head``; ``eh_proj`` is a ``torch.nn.Linear``.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import (
    DrafterProfile,
    LayerRoot,
    ModuleSpec,
    StockBehaviour,
    StockLimit,
)
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import attention, gated_mlp

__all__ = ["PROFILES", "STEP3P5_MTP"]

STEP3P5_MTP = DrafterProfile(
    architecture="Step3p5MTP",
    target_architectures=("Step3p5ForCausalLM", "Step3p7ForCausalLM", "Step3p7ForConditionalGeneration"),
    root=LayerRoot(checkpoint="model.layers.{n}", runtime="model.layers.{n}", index="global"),
    modules=(
        *attention("mtp_block.self_attn"),
        ModuleSpec("mtp_block.self_attn.g_proj", ("self_attn.g_proj",)),
        *gated_mlp("mlp", "mtp_block.mlp"),
        ModuleSpec("mtp_block.moe.gate", ("moe.gate",), ModuleKind.FIXED, group="mlp"),
        ModuleSpec("mtp_block.moe.experts", ("moe.gate_proj", "moe.up_proj", "moe.down_proj"),
                   ModuleKind.EXPERTS, group="mlp"),
        *gated_mlp("share_expert", "mtp_block.moe.share_expert"),
        ModuleSpec("shared_head.head", ("shared_head.output",), ModuleKind.LM_HEAD, group="head"),
        ModuleSpec("eh_proj", ("eh_proj",), ModuleKind.PLAIN, group="head"),
    ),
    text_config_keys=("text_config",),
    checks_completeness=True,  # load_weights: "Some parameters like ... are not in the checkpoint"
    families=("Step-3.5-Flash", "Step-3.7-Flash"),
    # Step3p5MTP.__init__: `vllm_config.quant_config = get_draft_quant_config(vllm_config)`,
    # a fresh parse of the checkpoint's config (models/utils.py:get_draft_quant_config)
    # that never gets a packed-module mapping: exact shard names do not exclude a fused
    # module, wildcards do (FINDINGS.md "Names").
    stock=StockBehaviour(
        quant_config="draft",
        packed_exclusions=False,
        limits=(
            # measured (FINDINGS.md "More families", compressed-tensors): the KV-cache
            # method's placeholders trip Step3p5MTP.load_weights' completeness check
            StockLimit("cannot load any compressed-tensors Step-3.5 checkpoint (its KV-cache "
                       "method adds placeholder parameters the completeness check reports "
                       "missing)", producer="compressed-tensors"),
        ),
    ),
)

PROFILES: tuple[DrafterProfile, ...] = (STEP3P5_MTP,)
