"""Tiny model families: config.json bodies and every checkpoint module they store.

Names follow the public checkpoints of each family (the names vLLM's loaders read,
see ``step3p5_mtp.py:Step3p5MTP.load_weights``, ``qwen3_next_mtp.py:Qwen3NextMTP.
load_weights``, ``deepseek_mtp.py:DeepSeekMTP.load_weights``). Sizes are tiny but
keep every dimension a multiple of 16 (the NVFP4 group), and inner dimensions of
linears that a quantized MoE/MLP uses are multiples of 128.

A family is data: a ``Family`` lists ``Linear`` modules (quantizable or kept BF16
by real exports) and ``Plain`` tensors (norms, embeddings, router biases, ...),
tagged with the MTP layer they belong to (``mtp=None`` for the target model) and,
for MTP modules, their group: ``attn``, ``mlp`` or ``head``. Modules that are
never quantized by real exports (``eh_proj``, routers, ``lm_head``) have
``quantizable=False``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from vllm_draft_quant.demo import checkpoint as _demo
from vllm_draft_quant.demo.checkpoint import step3p5_config

__all__ = [
    "FAMILIES",
    "Family",
    "Linear",
    "Plain",
    "dense_then_moe",
    "layer_norms",
    "layer_stack",
    "nextn_config",
    "nextn_head",
    "qk_norms",
    "qwen_hybrid",
]

Group = Literal["attn", "mlp", "head", "eh_proj", "router", "target"]

# the demo's tiny sizes (its Step-3.5 checkpoint is this module's step3p5 family)
HIDDEN, VOCAB, EXPERTS, MOE_INTER = _demo.HIDDEN, _demo.VOCAB, _demo.EXPERTS, _demo.MOE_INTER
DENSE_INTER, HEADS, KV_HEADS, HEAD_DIM = (
    _demo.DENSE_INTER,
    _demo.HEADS,
    _demo.KV_HEADS,
    _demo.HEAD_DIM,
)


@dataclass(frozen=True)
class Linear:
    """A linear module as the checkpoint names it (``name`` has no ``.weight``)."""

    name: str
    out: int
    inp: int
    mtp: int | None  # MTP layer k (0-based), None for target modules
    group: Group
    quantizable: bool = True
    stacked_experts: int = 0  # >0: one 3-D tensor [E, out, in] (Step-3.5 target MoE)


@dataclass(frozen=True)
class Plain:
    """A tensor that is never quantized: norm, embedding, router bias, conv, ..."""

    name: str
    shape: tuple[int, ...]
    mtp: int | None
    dtype: Literal["BF16", "F32"] = "BF16"
    init: Literal["normal", "ones", "zeros_ish"] = "normal"


@dataclass(frozen=True)
class Family:
    """One tiny model: architecture, config.json body, modules, exclusion names."""

    name: str
    architecture: str
    num_hidden_layers: int
    num_mtp_layers: int
    config: dict[str, Any]
    linears: tuple[Linear, ...]
    plains: tuple[Plain, ...]
    # checkpoint prefix of MTP layer k, e.g. "model.layers.2" / "mtp.layers.0"
    mtp_layer_prefixes: tuple[str, ...]
    # glob that covers every MTP tensor (used when all MTP modules are BF16)
    mtp_root_glob: str | None
    # glob per (layer k, group); "head" of Qwen3-Next is the global mtp.fc
    group_globs: dict[tuple[int, str], str] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        name: str,
        architecture: str,
        num_mtp_layers: int,
        config: dict[str, Any],
        parts: tuple[list[Linear], list[Plain], list[str], dict[tuple[int, str], str]],
        mtp_root_glob: str | None,
        **extra: Any,
    ) -> Family:
        """A family of two target layers from its (linears, plains, MTP prefixes, globs)."""
        linears, plains, prefixes, globs = parts
        return cls(
            name,
            architecture,
            2,
            num_mtp_layers,
            config,
            tuple(linears),
            tuple(plains),
            tuple(prefixes),
            mtp_root_glob,
            globs,
            **extra,
        )


def _attn_gqa(prefix: str, mtp: int | None, *, gated_q: bool) -> list[Linear]:
    group: Group = "attn" if mtp is not None else "target"
    q_out = HEADS * HEAD_DIM * (2 if gated_q else 1)
    return [
        Linear(f"{prefix}.self_attn.q_proj", q_out, HIDDEN, mtp, group),
        Linear(f"{prefix}.self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN, mtp, group),
        Linear(f"{prefix}.self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN, mtp, group),
        Linear(f"{prefix}.self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM, mtp, group),
    ]


def _mlp(prefix: str, inter: int, mtp: int | None) -> list[Linear]:
    group: Group = "mlp" if mtp is not None else "target"
    return [
        Linear(f"{prefix}.gate_proj", inter, HIDDEN, mtp, group),
        Linear(f"{prefix}.up_proj", inter, HIDDEN, mtp, group),
        Linear(f"{prefix}.down_proj", HIDDEN, inter, mtp, group),
    ]


def _experts(prefix: str, mtp: int | None) -> list[Linear]:
    out: list[Linear] = []
    for e in range(EXPERTS):
        out += _mlp(f"{prefix}.experts.{e}", MOE_INTER, mtp)
    return out


def _norm(name: str, size: int, mtp: int | None) -> Plain:
    return Plain(f"{name}.weight", (size,), mtp, init="ones")


Block = tuple[list[Linear], list[Plain]]
StackParts = tuple[list[Linear], list[Plain], list[str], dict[tuple[int, str], str]]


def layer_stack(
    num_mtp: int,
    mtp_prefix: Callable[[int, int], str],
    layer: Callable[[int, str, int | None], Block],
    mtp_extras: Callable[[str, int], Block],
    *,
    head_glob: bool = True,
) -> StackParts:
    """(linears, plains, MTP prefixes, group globs) of a model whose MTP layers are decoder
    layers like its own (DeepSeek-V3, GLM-4.5 MoE, MiMo).

    Two target layers ``model.layers.{i}`` and ``num_mtp`` MTP layers named
    ``mtp_prefix(n, k)``; each is ``layer(i, prefix, k)`` (``k`` None for the target),
    an MTP layer adds ``mtp_extras(prefix, k)``; then ``lm_head`` and ``model.norm``.
    """
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    layers: list[tuple[str, int | None]] = [(f"model.layers.{i}", None) for i in range(n)]
    layers += [(mtp_prefix(n, k), k) for k in range(num_mtp)]
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for i, (p, k) in enumerate(layers):
        lin, pl = layer(i, p, k)
        linears += lin
        plains += pl
        if k is not None:
            prefixes.append(p)
            lin, pl = mtp_extras(p, k)
            linears += lin
            plains += pl
            globs[(k, "attn")] = f"{p}.self_attn*"
            globs[(k, "mlp")] = f"{p}.mlp*"
            if head_glob:
                globs[(k, "head")] = f"{p}.shared_head*"
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    return linears, plains, prefixes, globs


def layer_norms(p: str, k: int | None) -> list[Plain]:
    return [
        _norm(f"{p}.input_layernorm", HIDDEN, k),
        _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
    ]


def qk_norms(p: str, k: int | None) -> list[Plain]:
    return [
        _norm(f"{p}.self_attn.q_norm", HEAD_DIM, k),
        _norm(f"{p}.self_attn.k_norm", HEAD_DIM, k),
    ]


def dense_then_moe(i: int, p: str, k: int | None) -> Block:
    """Layer 0 dense (``first_k_dense_replace = 1``), every other layer DeepSeek-V3's MoE
    (routed experts, ``shared_experts``, a router with ``e_score_correction_bias``)."""
    if i == 0:
        return _mlp(f"{p}.mlp", DENSE_INTER, k), []
    linears = _experts(f"{p}.mlp", k) + _mlp(f"{p}.mlp.shared_experts", MOE_INTER, k)
    linears.append(Linear(f"{p}.mlp.gate", EXPERTS, HIDDEN, k, "router", False))
    return linears, [
        Plain(f"{p}.mlp.gate.e_score_correction_bias", (EXPERTS,), k, "F32", "zeros_ish")
    ]


def nextn_config(architecture: str, model_type: str, n: int, num_mtp: int) -> dict[str, Any]:
    """The first keys of DeepSeek-V3's and GLM-4.5's ``config.json`` (the rest is each one's)."""
    return {
        "architectures": [architecture],
        "model_type": model_type,
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "moe_intermediate_size": MOE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
    }


def nextn_head(p: str, k: int) -> Block:
    """DeepSeek/GLM NextN extras: ``eh_proj``, ``shared_head.{head,norm}``, ``enorm``, ``hnorm``."""
    linears = [
        Linear(f"{p}.eh_proj", HIDDEN, 2 * HIDDEN, k, "eh_proj", False),
        Linear(f"{p}.shared_head.head", VOCAB, HIDDEN, k, "head"),
    ]
    plains = [_norm(f"{p}.{n}", HIDDEN, k) for n in ("enorm", "hnorm", "shared_head.norm")]
    return linears, plains


# --------------------------------------------------------------------------- Step-3.5
def step3p5(num_mtp: int) -> Family:
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i in range(n):
        p = f"model.layers.{i}"
        linears += _attn_gqa(p, None, gated_q=False)
        plains += layer_norms(p, None) + qk_norms(p, None)
        if i == 0:
            linears += _mlp(f"{p}.mlp", DENSE_INTER, None)
        else:  # MoE layer: stacked 3-D experts, a shared expert, an FP32-able router
            for proj, out, inp in (
                ("gate_proj", MOE_INTER, HIDDEN),
                ("up_proj", MOE_INTER, HIDDEN),
                ("down_proj", HIDDEN, MOE_INTER),
            ):
                linears.append(
                    Linear(f"{p}.moe.{proj}", out, inp, None, "target", stacked_experts=EXPERTS)
                )
            linears.append(Linear(f"{p}.moe.gate", EXPERTS, HIDDEN, None, "router", False))
            plains.append(Plain(f"{p}.moe.router_bias", (EXPERTS,), None, "F32", "zeros_ish"))
            linears += _mlp(f"{p}.share_expert", MOE_INTER, None)
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for k in range(num_mtp):
        p = f"model.layers.{n + k}"
        prefixes.append(p)
        linears += _attn_gqa(p, k, gated_q=False)
        linears += _mlp(f"{p}.mlp", DENSE_INTER, k)
        linears.append(Linear(f"{p}.shared_head.output", VOCAB, HIDDEN, k, "head"))
        linears.append(Linear(f"{p}.eh_proj", HIDDEN, 2 * HIDDEN, k, "eh_proj", False))
        plains += [
            _norm(f"{p}.enorm", HIDDEN, k),
            _norm(f"{p}.hnorm", HIDDEN, k),
            _norm(f"{p}.shared_head.norm", HIDDEN, k),
            _norm(f"{p}.input_layernorm", HIDDEN, k),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
            _norm(f"{p}.self_attn.q_norm", HEAD_DIM, k),
            _norm(f"{p}.self_attn.k_norm", HEAD_DIM, k),
        ]
        globs[(k, "attn")] = f"{p}.self_attn*"
        globs[(k, "mlp")] = f"{p}.mlp*"
        globs[(k, "head")] = f"{p}.shared_head*"
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config = step3p5_config(n, num_mtp)  # the demo's (FINDINGS.md on per-layer lists)
    return Family.of(
        "step3p5", "Step3p5ForCausalLM", num_mtp, config, (linears, plains, prefixes, globs), None
    )


# ------------------------------------------------------------ Qwen3-Next and Qwen3.5 MoE
LIN_K_HEADS, LIN_V_HEADS, LIN_HEAD_DIM, CONV_K = 2, 4, 32, 4
QWEN_LAYER_TYPES = ["linear_attention", "full_attention"]
LIN_KEY_DIM, LIN_VALUE_DIM = LIN_K_HEADS * LIN_HEAD_DIM, LIN_V_HEADS * LIN_HEAD_DIM


def _qwen_moe(prefix: str, mtp: int | None) -> list[Linear]:
    linears = _experts(f"{prefix}.mlp", mtp) + _mlp(f"{prefix}.mlp.shared_expert", MOE_INTER, mtp)
    linears += [
        Linear(f"{prefix}.mlp.gate", EXPERTS, HIDDEN, mtp, "router", False),
        Linear(f"{prefix}.mlp.shared_expert_gate", 1, HIDDEN, mtp, "router", False),
    ]
    return linears


QwenParts = tuple[list[Linear], list[Plain], list[str], dict[tuple[int, str], str]]


def qwen_hybrid(num_mtp: int, root: str, linear_attn: Callable[[str], list[Linear]]) -> QwenParts:
    """(linears, plains, MTP prefixes, group globs) of a Qwen3-Next-style hybrid MoE.

    Target layers under ``root`` alternate Gated-DeltaNet (``linear_attn(prefix)`` gives
    its projections: the two families differ only there) and gated full attention, each
    with a sparse MoE and a shared expert; MTP layers are ``mtp.layers.{k}`` with one
    ``mtp.fc``, ``mtp.norm`` and ``mtp.pre_fc_norm_{hidden,embedding}``.
    """
    linears: list[Linear] = []
    plains: list[Plain] = [Plain(f"{root}.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i, kind in enumerate(QWEN_LAYER_TYPES):
        p = f"{root}.layers.{i}"
        plains += layer_norms(p, None)
        if kind == "linear_attention":
            a = f"{p}.linear_attn"
            linears += linear_attn(a)
            plains += [
                Plain(f"{a}.conv1d.weight", (2 * LIN_KEY_DIM + LIN_VALUE_DIM, 1, CONV_K), None),
                Plain(f"{a}.A_log", (LIN_V_HEADS,), None, "F32"),
                Plain(f"{a}.dt_bias", (LIN_V_HEADS,), None, init="ones"),
                _norm(f"{a}.norm", LIN_HEAD_DIM, None),
            ]
        else:
            linears += _attn_gqa(p, None, gated_q=True)
            plains += qk_norms(p, None)
        linears += _qwen_moe(p, None)
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for k in range(num_mtp):
        p = f"mtp.layers.{k}"
        prefixes.append(p)
        linears += _attn_gqa(p, k, gated_q=True)
        linears += _qwen_moe(p, k)
        plains += layer_norms(p, k) + qk_norms(p, k)
        globs[(k, "attn")] = f"{p}.self_attn*"
        globs[(k, "mlp")] = f"{p}.mlp*"
        globs[(k, "head")] = "mtp.fc*"
    if num_mtp:
        linears.append(Linear("mtp.fc", HIDDEN, 2 * HIDDEN, 0, "head"))
        plains += [
            _norm("mtp.norm", HIDDEN, 0),
            _norm("mtp.pre_fc_norm_hidden", HIDDEN, 0),
            _norm("mtp.pre_fc_norm_embedding", HIDDEN, 0),
        ]
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm(f"{root}.norm", HIDDEN, None))
    return linears, plains, prefixes, globs


#: config.json keys both Qwen hybrids share, in the order each writes them
QWEN_ATTENTION_CONFIG: dict[str, Any] = {
    "num_attention_heads": HEADS,
    "num_key_value_heads": KV_HEADS,
    "head_dim": HEAD_DIM,
    "vocab_size": VOCAB,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6,
}
QWEN_LINEAR_ATTENTION_CONFIG: dict[str, Any] = {
    "layer_types": QWEN_LAYER_TYPES,
    "full_attention_interval": 2,
    "linear_conv_kernel_dim": CONV_K,
    "linear_key_head_dim": LIN_HEAD_DIM,
    "linear_value_head_dim": LIN_HEAD_DIM,
    "linear_num_key_heads": LIN_K_HEADS,
    "linear_num_value_heads": LIN_V_HEADS,
}
QWEN_MOE_CONFIG: dict[str, Any] = {
    "num_experts": EXPERTS,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": MOE_INTER,
    "shared_expert_intermediate_size": MOE_INTER,
}


def _qwen3_next_linear_attn(a: str) -> list[Linear]:
    return [
        Linear(f"{a}.in_proj_qkvz", 2 * LIN_KEY_DIM + 2 * LIN_VALUE_DIM, HIDDEN, None, "target"),
        # kept BF16 and excluded by real exports (tiny output, see qwen_gdn_linear_attn.py)
        Linear(f"{a}.in_proj_ba", 2 * LIN_V_HEADS, HIDDEN, None, "router", False),
        Linear(f"{a}.out_proj", HIDDEN, LIN_VALUE_DIM, None, "target"),
    ]


def qwen3_next(num_mtp: int) -> Family:
    linears, plains, prefixes, globs = qwen_hybrid(num_mtp, "model", _qwen3_next_linear_attn)
    n = len(QWEN_LAYER_TYPES)
    config: dict[str, Any] = {
        "architectures": ["Qwen3NextForCausalLM"],
        "model_type": "qwen3_next",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
        **QWEN_ATTENTION_CONFIG,
        **QWEN_LINEAR_ATTENTION_CONFIG,
        "decoder_sparse_step": 1,
        **QWEN_MOE_CONFIG,
        "norm_topk_prob": True,
        "mlp_only_layers": [],
        "partial_rotary_factor": 0.25,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family.of(
        "qwen3_next",
        "Qwen3NextForCausalLM",
        num_mtp,
        config,
        (linears, plains, prefixes, globs),
        "mtp*",
    )


# --------------------------------------------------------------------------- DeepSeek-V3
Q_LORA, KV_LORA, NOPE, ROPE, V_DIM = 64, 64, 32, 16, 32


def _mla(prefix: str, mtp: int | None) -> tuple[list[Linear], list[Plain]]:
    group: Group = "attn" if mtp is not None else "target"
    a = f"{prefix}.self_attn"
    linears = [
        Linear(f"{a}.q_a_proj", Q_LORA, HIDDEN, mtp, group),
        Linear(f"{a}.q_b_proj", HEADS * (NOPE + ROPE), Q_LORA, mtp, group),
        Linear(f"{a}.kv_a_proj_with_mqa", KV_LORA + ROPE, HIDDEN, mtp, group),
        Linear(f"{a}.kv_b_proj", HEADS * (NOPE + V_DIM), KV_LORA, mtp, group),
        Linear(f"{a}.o_proj", HIDDEN, HEADS * V_DIM, mtp, group),
    ]
    plains = [_norm(f"{a}.q_a_layernorm", Q_LORA, mtp), _norm(f"{a}.kv_a_layernorm", KV_LORA, mtp)]
    return linears, plains


def _ds_layer(i: int, p: str, k: int | None) -> Block:
    attn, attn_norms = _mla(p, k)
    mlp, mlp_plains = dense_then_moe(i, p, k)
    return attn + mlp, attn_norms + layer_norms(p, k) + mlp_plains


def _ds_nextn(p: str, k: int) -> Block:
    linears, plains = nextn_head(p, k)
    # DeepSeek-V3 repeats the embedding in each MTP layer
    return linears, [*plains, Plain(f"{p}.embed_tokens.weight", (VOCAB, HIDDEN), k)]


def deepseek_v3(num_mtp: int) -> Family:
    n = 2
    linears, plains, prefixes, globs = layer_stack(
        num_mtp, lambda n, k: f"model.layers.{n + k}", _ds_layer, _ds_nextn
    )
    config: dict[str, Any] = {
        **nextn_config("DeepseekV3ForCausalLM", "deepseek_v3", n, num_mtp),
        "num_attention_heads": HEADS,
        "num_key_value_heads": HEADS,
        "q_lora_rank": Q_LORA,
        "kv_lora_rank": KV_LORA,
        "qk_nope_head_dim": NOPE,
        "qk_rope_head_dim": ROPE,
        "v_head_dim": V_DIM,
        "n_routed_experts": EXPERTS,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "n_group": 1,
        "topk_group": 1,
        "first_k_dense_replace": 1,
        "moe_layer_freq": 1,
        "routed_scaling_factor": 2.5,
        "scoring_func": "sigmoid",
        "topk_method": "noaux_tc",
        "norm_topk_prob": True,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family.of(
        "deepseek_v3",
        "DeepseekV3ForCausalLM",
        num_mtp,
        config,
        (linears, plains, prefixes, globs),
        None,
    )


FAMILIES: dict[str, Callable[[int], Family]] = {
    "deepseek_v3": deepseek_v3,
    "qwen3_next": qwen3_next,
    "step3p5": step3p5,
}
