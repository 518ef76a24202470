"""EAGLE drafters for MiniCPM (vLLM draft architecture ``EagleMiniCPMForCausalLM``).

Read off vLLM 0.33.0 ``model_executor/models/minicpm_eagle.py``
(EagleMiniCPMDecoderLayer._init_attn_block / _init_ffn_block,
EagleMiniCPMModel.__init__ / _init_layers / load_weights,
EagleMiniCPMForCausalLM.__init__). A separate draft checkpoint whose parameters sit at
``model.eagle_layers.{k}`` while the layer is built with prefix
``model.eagle_layers.{N + k}`` (N = the target's layer count); q/k/v and gate/up fuse;
``model.fc`` is a plain ``torch.nn.Linear``; ``lm_head`` a ParallelLMHead with the
quant config. The dense MLP is built without a prefix (``MiniCPMMLP`` gets none), so
its runtime names are ``.gate_up_proj`` / ``.down_proj`` in every draft layer: no
exclusion written in checkpoint names matches them, but the plan can name them exactly
(globals, from draft layer 0; MiniCPM EAGLE drafts have one layer, and in a draft with
more every layer's MLP takes layer 0's stored scheme, since vLLM gives them one prefix).

Stock vLLM builds it with ``vllm_config.quant_config``: the *target's* config, even
though the weights come from the draft's folder. The plugin builds a separate draft
on that folder's own config (``adapter/draft_load.py``, as vLLM does for EAGLE3).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles._fragments import attention

__all__ = ["EAGLE_MINICPM", "PROFILES"]

EAGLE_MINICPM = DrafterProfile(
    architecture="EagleMiniCPMForCausalLM",
    target_architectures=(),
    root=LayerRoot(checkpoint="model.eagle_layers.{n}", runtime="model.eagle_layers.{n}",
                   index="local", runtime_index="global"),
    modules=(*attention(),),
    globals=(
        ModuleSpec(".gate_up_proj", ("model.eagle_layers.0.mlp.gate_proj",
                                     "model.eagle_layers.0.mlp.up_proj"), group="mlp"),
        ModuleSpec(".down_proj", ("model.eagle_layers.0.mlp.down_proj",), group="mlp"),
        ModuleSpec("model.fc", ("model.fc",), ModuleKind.PLAIN, group="head"),
        ModuleSpec("lm_head", ("lm_head",), ModuleKind.LM_HEAD, group="head"),
    ),
    num_layers_keys=("num_hidden_layers",),
    hidden_layers_from="target",
    families=("MiniCPM EAGLE drafters",),
    # EagleMiniCPMModel.__init__ / EagleMiniCPMForCausalLM.__init__ read
    # vllm_config.quant_config: the target's object (with the target's packed mapping).
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
)

PROFILES: tuple[DrafterProfile, ...] = (EAGLE_MINICPM,)
