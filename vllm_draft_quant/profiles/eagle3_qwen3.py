"""EAGLE3 drafters for Qwen3 (vLLM draft architecture ``Eagle3Qwen3ForCausalLM``).

Read off vLLM 0.33.0 ``model_executor/models/qwen3_eagle3.py``
(Qwen3Eagle3DecoderLayer.__init__, Qwen3Eagle3Model.__init__ / hf_to_vllm_mapper,
Eagle3Qwen3ForCausalLM.__init__ / load_weights). Laid out like the Llama EAGLE3
drafter (``eagle3_llama.py``): a separate draft checkpoint, ``midlayer.`` ->
``layers.0.``, ``model.`` prefixed to every name but ``lm_head``/``d2t``, decoder layer
k built with prefix ``model.layers.{N + k}`` (N = the target's layer count), q/k/v and
gate/up fused, ``model.fc`` a ReplicatedLinear and ``lm_head`` a ParallelLMHead, both
with the draft's quant config; the embedding is built without one. One difference
that matters: Qwen3Eagle3DecoderLayer.__init__ replaces the attention's ``qkv_proj``
(input ``2 * hidden``) by a new QKVParallelLinear built with prefix
``maybe_prefix(prefix, "qkv_proj")``, i.e. ``model.layers.{N + k}.qkv_proj`` without
``self_attn`` (measured: the layer vLLM keeps has that prefix; the one its parent
built as ``...self_attn.qkv_proj`` is discarded), so that is the runtime name.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import gated_mlp

__all__ = ["EAGLE3_QWEN3", "PROFILES"]

EAGLE3_QWEN3 = DrafterProfile(
    architecture="Eagle3Qwen3ForCausalLM",
    architecture_aliases=("PeagleQwen3ForCausalLM",),
    target_architectures=(),
    root=LayerRoot(checkpoint="layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(
        ModuleSpec("qkv_proj", ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec("self_attn.o_proj", ("self_attn.o_proj",)),
        *gated_mlp("mlp"),
    ),
    globals=(
        ModuleSpec("model.fc", ("fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.LM_HEAD, group="head"),
        ModuleSpec("model.embed_tokens", ("embed_tokens",), ModuleKind.FIXED, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    text_config_keys=("transformer_layer_config", "text_config"),
    hidden_layers_from="target",
    checkpoint_renames=(("midlayer.", "layers.0."),),
    families=("EAGLE3 Qwen3 drafters",),
    # Qwen3Eagle3DecoderLayer.__init__, Qwen3Eagle3Model.__init__ (fc) and
    # Eagle3Qwen3ForCausalLM.__init__ (lm_head) use get_draft_quant_config(): a fresh
    # parse of the draft folder's config, with no packed-module mapping.
    stock=StockBehaviour(quant_config="draft", packed_exclusions=False),
)

PROFILES: tuple[DrafterProfile, ...] = (EAGLE3_QWEN3,)
