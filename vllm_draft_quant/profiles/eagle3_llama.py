"""EAGLE3 Llama-3.x drafters (vLLM draft architecture ``Eagle3LlamaForCausalLM``).

Read off vLLM 0.33.0 ``model_executor/models/llama_eagle3.py`` (LlamaDecoderLayer,
LlamaModel.__init__ / load_weights, Eagle3LlamaForCausalLM). A *separate* draft model
(speculative_config method "eagle3" with its own checkpoint; the registry maps every
alias below to this class). load_weights prefixes ``model.`` to every name but
lm_head/d2t, and LlamaModel.hf_to_vllm_mapper renames ``midlayer.`` -> ``layers.0.``
(the reference/ModelOpt export; speculators exports already say ``layers.{k}``); q/k/v
and gate/up fuse. Parameters sit at ``model.layers.{k}``, but LlamaModel builds decoder
layer k with prefix ``model.layers.{N + k}``, N = the *target's*
get_total_num_hidden_layers() (start_layer_id). The embedding is built without a
quant config.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import dense_block

__all__ = ["EAGLE3_LLAMA", "PROFILES"]

EAGLE3_LLAMA = DrafterProfile(
    architecture="Eagle3LlamaForCausalLM",
    target_architectures=(),
    root=LayerRoot(checkpoint="layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=dense_block(),
    globals=(
        ModuleSpec("model.fc", ("fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.LM_HEAD, group="head"),
        ModuleSpec("model.embed_tokens", ("embed_tokens",), ModuleKind.FIXED, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    text_config_keys=("transformer_layer_config", "text_config"),
    architecture_aliases=("LlamaForCausalLMEagle3", "Eagle3MiniMaxM2ForCausalLM",
                          "Eagle3Qwen2_5vlForCausalLM", "Eagle3Qwen3vlForCausalLM",
                          "PEagleDraftModel", "PeagleLlamaForCausalLM"),
    hidden_layers_from="target",
    checkpoint_renames=(("midlayer.", "layers.0."),),
    families=("EAGLE3 Llama-3.x drafters (EAGLE reference, ModelOpt, speculators exports)",),
    # Layers (LlamaDecoderLayer.get_quant_config), model.fc (LlamaModel.__init__) and
    # lm_head (Eagle3LlamaForCausalLM.__init__) each get get_draft_quant_config()
    # (models/utils.py): a fresh parse of the draft folder's own config, which nothing
    # gives a packed-module mapping (SupportsQuant.__new__ updates vllm_config's object,
    # not these), so exact shard names do not exclude fused modules.
    stock=StockBehaviour(quant_config="draft", packed_exclusions=False),
)

PROFILES: tuple[DrafterProfile, ...] = (EAGLE3_LLAMA,)
