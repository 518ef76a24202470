"""EAGLE3 drafters for DeepSeek-V2/V3 and Kimi-K2.5 (vLLM draft architectures
``Eagle3DeepseekV2ForCausalLM`` and ``Eagle3DeepseekV3ForCausalLM``, one class).

Read off vLLM 0.33.0 ``model_executor/models/deepseek_eagle3.py``
(DeepseekV2Eagle3DecoderLayer.__init__, DeepseekV2Eagle3Model.__init__ /
hf_to_vllm_mapper, Eagle3DeepseekV2ForCausalLM.__init__ / load_weights). A separate
draft checkpoint: ``model.`` is prefixed to every name but ``lm_head``/``d2t``,
``midlayer.`` -> ``layers.0.``; decoder layer k is built with prefix
``model.layers.{N + k}`` (N = the target's layer count) with DeepSeek's MLA
(``q_a_proj`` + ``kv_a_proj_with_mqa`` -> ``fused_qkv_a_proj``) and a dense MLP;
``model.fc`` is a ReplicatedLinear with the draft's quant config; ``lm_head`` is a
ParallelLMHead built *without* a quant config, the embedding too.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import gated_mlp, mla_attention

__all__ = ["EAGLE3_DEEPSEEK", "PROFILES"]

EAGLE3_DEEPSEEK = DrafterProfile(
    architecture="Eagle3DeepseekV2ForCausalLM",
    architecture_aliases=("Eagle3DeepseekV3ForCausalLM",),
    target_architectures=(),
    root=LayerRoot(checkpoint="layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(*mla_attention(), *gated_mlp("mlp")),
    globals=(
        ModuleSpec("model.fc", ("fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.FIXED, group="head"),
        ModuleSpec("model.embed_tokens", ("embed_tokens",), ModuleKind.FIXED, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    hidden_layers_from="target",
    checkpoint_renames=(("midlayer.", "layers.0."),),
    families=("EAGLE3 DeepSeek-V3 / Kimi-K2.5 drafters",),
    # DeepseekV2Eagle3DecoderLayer.__init__ and DeepseekV2Eagle3Model.__init__ (fc) use
    # get_draft_quant_config(): a fresh parse, no packed-module mapping.
    stock=StockBehaviour(quant_config="draft", packed_exclusions=False),
)

PROFILES: tuple[DrafterProfile, ...] = (EAGLE3_DEEPSEEK,)
