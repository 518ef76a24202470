"""EAGLE drafters for DeepSeek-V3 (vLLM draft architecture ``EagleDeepSeekMTPModel``,
class ``EagleDeepseekV3ForCausalLM``).

Read off vLLM 0.33.0 ``model_executor/models/deepseek_eagle.py``
(DeepseekV2Model.__init__ / load_weights, EagleDeepseekV3ForCausalLM.__init__ /
load_weights). A separate draft checkpoint: ``model.`` is prefixed to every name but
``lm_head``; decoder layer k (``deepseek_v2.py:DeepseekV2DecoderLayer``: MLA, and the
MoE since its index ``N + k`` is past ``first_k_dense_replace``) is built with prefix
``model.layers.{N + k}`` (N = the target's layer count); ``model.fc`` is a plain
``torch.nn.Linear``; ``lm_head`` a ParallelLMHead and the embedding a
VocabParallelEmbedding, both with the quant config.

Stock vLLM builds it with ``vllm_config.quant_config``: the *target's* config. The
plugin builds a separate draft on that folder's own config (``adapter/draft_load.py``).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import deepseek_moe, mla_attention

__all__ = ["EAGLE_DEEPSEEK_MTP", "PROFILES"]

EAGLE_DEEPSEEK_MTP = DrafterProfile(
    architecture="EagleDeepSeekMTPModel",
    target_architectures=(),
    root=LayerRoot(checkpoint="layers.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(*mla_attention(), *deepseek_moe()),
    globals=(
        ModuleSpec("model.fc", ("fc",), ModuleKind.PLAIN, group="head"),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.LM_HEAD, group="head"),
        ModuleSpec("model.embed_tokens", ("embed_tokens",), ModuleKind.FIXED, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    hidden_layers_from="target",
    families=("DeepSeek-V3 EAGLE drafters",),
    # DeepseekV2Model.__init__ (deepseek_eagle.py) and EagleDeepseekV3ForCausalLM.__init__
    # read vllm_config.quant_config: the target's object, with its packed mapping.
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (EAGLE_DEEPSEEK_MTP,)
