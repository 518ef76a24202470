"""DeepSeek-V4 MTP (vLLM draft architecture ``DeepSeekV4MTPModel``).

Read off vLLM 0.33.0 ``models/deepseek_v4/nvidia/mtp.py``
(DeepSeekV4MultiTokenPredictorLayer.__init__, DeepSeekV4MultiTokenPredictor.__init__,
DeepSeekV4MTP._to_spec_layer_name / load_weights / _rewrite_spec_layer_name),
``nvidia/model.py`` (the ``ffn`` block) and ``attention.py`` (``fused_wqa_wkv``,
``wq_b``, ``wo_a``, ``wo_b``). Checkpoint layers ``mtp.{k}.*`` are renamed to
``model.layers.{N + k}.*`` (N = num_hidden_layers), the runtime prefix the layers are
built with; ``attn.wq_a`` + ``attn.wkv`` fuse into ``attn.fused_wqa_wkv``,
``ffn.shared_experts.w1`` + ``w3`` into ``gate_up_proj`` (``w2`` -> ``down_proj``),
routed experts ``ffn.experts.{e}.w1/w3/w2``; the input projections are two quantizable
``ReplicatedLinear``s, ``e_proj`` and ``h_proj`` (no plain ``eh_proj``); the head
(checkpoint ``head``) is ``SharedHead``'s ParallelLMHead at ``<layer>.head``.

Not built on the CPU platform: ``models/deepseek_v4/cpu/mtp.py:DeepSeekV4MTP.__init__``
raises NotImplementedError ("DeepSeek-V4 speculative decoding (MTP) is not
implemented on CPU"), so this profile is checked against the drafter's code only
(``tests/unit/test_new_profiles.py``). The indexer of compressed-attention layers is
not described.
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec, StockBehaviour
from vllm_draft_quant.core.schemes import ModuleKind

__all__ = ["DEEPSEEK_V4_MTP", "PROFILES"]

DEEPSEEK_V4_MTP = DrafterProfile(
    architecture="DeepSeekV4MTPModel",
    target_architectures=("DeepseekV4ForCausalLM",),
    root=LayerRoot(checkpoint="mtp.{n}", runtime="model.layers.{n}",
                   index="local", runtime_index="global"),
    modules=(
        ModuleSpec("attn.fused_wqa_wkv", ("attn.wq_a", "attn.wkv")),
        ModuleSpec("attn.wq_b", ("attn.wq_b",)),
        ModuleSpec("attn.wo_a", ("attn.wo_a",)),
        ModuleSpec("attn.wo_b", ("attn.wo_b",)),
        ModuleSpec("ffn.gate", ("ffn.gate",), ModuleKind.FIXED, group="mlp"),
        ModuleSpec("ffn.experts",
                   tuple(f"ffn.experts.{{e}}.{p}" for p in ("w1", "w3", "w2")),
                   ModuleKind.EXPERTS, group="mlp"),
        ModuleSpec("ffn.shared_experts.gate_up_proj",
                   ("ffn.shared_experts.w1", "ffn.shared_experts.w3"), group="mlp"),
        ModuleSpec("ffn.shared_experts.down_proj", ("ffn.shared_experts.w2",), group="mlp"),
        ModuleSpec("e_proj", ("e_proj",), group="head"),
        ModuleSpec("h_proj", ("h_proj",), group="head"),
        ModuleSpec("head", ("head",), ModuleKind.LM_HEAD, group="head"),
    ),
    families=("DeepSeek-V4",),
    # DeepSeekV4MultiTokenPredictorLayer.__init__ builds with vllm_config.quant_config,
    # the target's object (DeepSeek-V4's own quant config, deepseek_v4/quant_config.py).
    stock=StockBehaviour(quant_config="target", packed_exclusions=True),
    notes="no CPU implementation in vLLM (deepseek_v4/cpu/mtp.py raises "
          "NotImplementedError); profile checked against the drafter's code only",
)

PROFILES: tuple[DrafterProfile, ...] = (DEEPSEEK_V4_MTP,)
