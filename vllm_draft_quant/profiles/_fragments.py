"""Module blocks several drafter families share, as small functions returning specs.

Each returns `ModuleSpec` tuples in vLLM's shard order; a family file splices them
into its ``modules`` (``(*attention(), *gated_mlp("mlp"), ...)``). ``runtime``
defaults to the checkpoint name; pass it where the drafter builds the module under
another prefix (Step-3.5's ``mtp_block.``).
"""

from __future__ import annotations

from vllm_draft_quant.core.profile import ModuleSpec
from vllm_draft_quant.core.schemes import ModuleKind, Scheme

__all__ = [
    "MODELOPT_FP4_FC_UNQUANTIZED",
    "attention",
    "deepseek_moe",
    "deepseek_nextn_layer",
    "dense_block",
    "dsa_indexer",
    "gated_mlp",
    "mla_attention",
    "nextn_head",
    "qwen_mtp_globals",
    "qwen_sparse_moe",
    "routed_experts",
]


def attention(runtime: str = "self_attn") -> tuple[ModuleSpec, ...]:
    """``self_attn``: q/k/v fused into ``qkv_proj`` (stacked_params_mapping), ``o_proj``."""
    return (
        ModuleSpec(f"{runtime}.qkv_proj",
                   ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj")),
        ModuleSpec(f"{runtime}.o_proj", ("self_attn.o_proj",)),
    )


def mla_attention(runtime: str = "self_attn") -> tuple[ModuleSpec, ...]:
    """DeepSeek's MLA (``DeepseekV2MLAAttention``): ``q_a_proj`` + ``kv_a_proj_with_mqa``
    fuse into ``fused_qkv_a_proj`` (a layer without ``q_a_proj`` keeps
    ``kv_a_proj_with_mqa`` alone and has ``q_proj``), then ``q_b_proj``, ``kv_b_proj``,
    ``o_proj``."""
    return (
        ModuleSpec(f"{runtime}.fused_qkv_a_proj",
                   ("self_attn.q_a_proj", "self_attn.kv_a_proj_with_mqa")),
        ModuleSpec(f"{runtime}.q_proj", ("self_attn.q_proj",)),
        ModuleSpec(f"{runtime}.kv_a_proj_with_mqa", ("self_attn.kv_a_proj_with_mqa",),
                   unless_present=("self_attn.q_a_proj",)),
        ModuleSpec(f"{runtime}.q_b_proj", ("self_attn.q_b_proj",)),
        ModuleSpec(f"{runtime}.kv_b_proj", ("self_attn.kv_b_proj",)),
        ModuleSpec(f"{runtime}.o_proj", ("self_attn.o_proj",)),
    )


def dsa_indexer() -> tuple[ModuleSpec, ...]:
    """The DeepSeek Sparse Attention "lightning indexer" of a DeepSeek-V3.2 / GLM-5 layer
    (``deepseek_v32/attention.py:DeepseekV32Indexer``, and ``deepseek_v2.py:Indexer`` on
    other platforms): ``wq_b`` is built with the quant config; ``wk`` and
    ``weights_proj`` fuse into ``wk_weights_proj`` (the drafter's ``load_weights``
    stacked mapping), which is always built with ``quant_config=None``."""
    return (
        ModuleSpec("self_attn.indexer.wq_b", ("self_attn.indexer.wq_b",)),
        ModuleSpec("self_attn.indexer.wk_weights_proj",
                   ("self_attn.indexer.wk", "self_attn.indexer.weights_proj"),
                   ModuleKind.FIXED),
    )


def gated_mlp(checkpoint: str, runtime: str | None = None) -> tuple[ModuleSpec, ...]:
    """A gated MLP (dense, or a shared expert): gate/up fused into ``gate_up_proj``."""
    rt = checkpoint if runtime is None else runtime
    return (
        ModuleSpec(f"{rt}.gate_up_proj", (f"{checkpoint}.gate_proj", f"{checkpoint}.up_proj"),
                   group="mlp"),
        ModuleSpec(f"{rt}.down_proj", (f"{checkpoint}.down_proj",), group="mlp"),
    )


def dense_block() -> tuple[ModuleSpec, ...]:
    """A dense decoder block (Llama / Qwen2 / Qwen3 style): `attention` then a gated
    ``mlp`` (MiMo, MiMo-V2, dense Qwen3.5, EAGLE3-Llama)."""
    return (*attention(), *gated_mlp("mlp"))


def routed_experts(block: str = "mlp") -> tuple[ModuleSpec, ...]:
    """The router (a vLLM layer built without a quant config) and per-expert tensors
    ``{block}.experts.{e}.*`` loaded through ``fused_moe_make_expert_params_mapping``."""
    return (
        ModuleSpec(f"{block}.gate", (f"{block}.gate",), ModuleKind.FIXED, group="mlp"),
        ModuleSpec(f"{block}.experts",
                   tuple(f"{block}.experts.{{e}}.{p}" for p in ("gate_proj", "up_proj", "down_proj")),
                   ModuleKind.EXPERTS, group="mlp"),
    )


def deepseek_moe() -> tuple[ModuleSpec, ...]:
    """DeepSeek-V3's MLP slot (``DeepseekV2MoE`` or, in the first dense layers, a dense
    ``DeepseekV2MLP``): router, routed experts, ``mlp.shared_experts``, and the dense
    ``mlp`` (only the modules a checkpoint stores are planned)."""
    return (*routed_experts("mlp"), *gated_mlp("mlp.shared_experts"), *gated_mlp("mlp"))


def deepseek_nextn_layer(*, indexer: bool = False) -> tuple[ModuleSpec, ...]:
    """A DeepSeek-style NextN layer (DeepSeek-V3, GLM-4.7-Flash, and with the DSA
    ``indexer`` GLM-5 / DeepSeek-V3.2): MLA, `deepseek_moe`, `nextn_head`."""
    return (*mla_attention(), *(dsa_indexer() if indexer else ()), *deepseek_moe(),
            *nextn_head())


def qwen_sparse_moe() -> tuple[ModuleSpec, ...]:
    """Qwen3NextSparseMoeBlock (Qwen3-Next, Qwen3.5 MoE): the routed experts, one gated
    shared expert and its gate (a router-like layer built without a quant config)."""
    return (
        *routed_experts("mlp"),
        *gated_mlp("mlp.shared_expert"),
        ModuleSpec("mlp.shared_expert_gate", ("mlp.shared_expert_gate",), ModuleKind.FIXED,
                   group="mlp"),
    )


def nextn_head(also_fed_by: tuple[str, ...] = ()) -> tuple[ModuleSpec, ...]:
    """A NextN layer's head and input projection: ``SharedHead`` builds its
    ``ParallelLMHead`` with prefix ``<layer>.head`` (checkpoint ``shared_head.head``);
    ``eh_proj`` is a plain ``torch.nn.Linear``."""
    return (
        ModuleSpec("head", ("shared_head.head",), ModuleKind.LM_HEAD, group="head",
                   also_fed_by=also_fed_by),
        ModuleSpec("eh_proj", ("eh_proj",), ModuleKind.PLAIN, group="head"),
    )


def qwen_mtp_globals(lm_head: ModuleKind = ModuleKind.LM_HEAD) -> tuple[ModuleSpec, ...]:
    """The modules of a Qwen MTP drafter outside its layers: ``mtp.fc`` and the drafter's
    own ``lm_head`` (``lm_head=ModuleKind.FIXED`` where the drafter builds it without a
    quant config, as Qwen3-Next)."""
    return (
        ModuleSpec("mtp.fc", ("mtp.fc",), group="head"),
        ModuleSpec("lm_head", ("lm_head",), lm_head, group="head"),
    )


#: Qwen MTP drafters build ``mtp.fc`` with no quant config when the target's config is
#: ``modelopt_fp4`` (Qwen3NextMultiTokenPredictor / Qwen3_5MultiTokenPredictor.__init__:
#: ``fc_quant = None if quant_config.get_name() == "modelopt_fp4"``).
MODELOPT_FP4_FC_UNQUANTIZED: tuple[tuple[str, Scheme, str], ...] = (
    ("modelopt", Scheme.NVFP4, "mtp.fc"),
)
