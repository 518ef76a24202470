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

__all__ = ["FAMILIES", "Family", "Linear", "Plain"]

Group = Literal["attn", "mlp", "head", "eh_proj", "router", "target"]

HIDDEN = 128
VOCAB = 256
EXPERTS = 4
MOE_INTER = 128
DENSE_INTER = 256
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 32


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


# --------------------------------------------------------------------------- Step-3.5
def step3p5(num_mtp: int) -> Family:
    n = 2
    total = n + num_mtp
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i in range(n):
        p = f"model.layers.{i}"
        linears += _attn_gqa(p, None, gated_q=False)
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, None),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, None),
            _norm(f"{p}.self_attn.q_norm", HEAD_DIM, None),
            _norm(f"{p}.self_attn.k_norm", HEAD_DIM, None),
        ]
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
    # Legacy hub form of Step-3.5-Flash's config.json: per-layer lists cover the
    # target layers AND the MTP layers (num_hidden_layers + num_nextn_predict_layers).
    # MTP layers are sliding_attention (as in Step-3.5-Flash); at least one target
    # layer is sliding too (see FINDINGS: a full_attention MTP layer hits an
    # IndexError in step3p5._get_num_attention_heads under transformers 5.20).
    config: dict[str, Any] = {
        "architectures": ["Step3p5ForCausalLM"],
        "model_type": "step3p5",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_attention_groups": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "max_seq_len": 4096,
        "rms_norm_eps": 1e-5,
        "layer_types": ["full_attention"] + ["sliding_attention"] * (total - 1),
        "sliding_window": 512,
        "attention_other_setting": {
            "attention_type": "sliding_attention",
            "num_attention_heads": HEADS,
            "num_attention_groups": KV_HEADS,
            "head_dim": HEAD_DIM,
        },
        "rope_theta": [10000.0] * total,
        "partial_rotary_factors": [1.0] * total,
        "swiglu_limits": [0.0] * total,
        "swiglu_limits_shared": [0.0] * total,
        "moe_layers_enum": "1",
        "moe_num_experts": EXPERTS,
        "moe_top_k": 2,
        "moe_intermediate_size": MOE_INTER,
        "share_expert_dim": MOE_INTER,
        "norm_expert_weight": True,
        "need_fp32_gate": True,
        "use_moe_router_bias": True,
        "moe_router_activation": "sigmoid",
        "moe_router_scaling_factor": 1.0,
        "use_head_wise_attn_gate": False,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family(
        "step3p5",
        "Step3p5ForCausalLM",
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        None,
        globs,
    )


# --------------------------------------------------------------------------- Qwen3-Next
LIN_K_HEADS, LIN_V_HEADS, LIN_HEAD_DIM, CONV_K = 2, 4, 32, 4


def _qwen_moe(prefix: str, mtp: int | None) -> list[Linear]:
    linears = _experts(f"{prefix}.mlp", mtp) + _mlp(f"{prefix}.mlp.shared_expert", MOE_INTER, mtp)
    linears += [
        Linear(f"{prefix}.mlp.gate", EXPERTS, HIDDEN, mtp, "router", False),
        Linear(f"{prefix}.mlp.shared_expert_gate", 1, HIDDEN, mtp, "router", False),
    ]
    return linears


def qwen3_next(num_mtp: int) -> Family:
    n = 2
    layer_types = ["linear_attention", "full_attention"]
    key_dim, value_dim = LIN_K_HEADS * LIN_HEAD_DIM, LIN_V_HEADS * LIN_HEAD_DIM
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i, kind in enumerate(layer_types):
        p = f"model.layers.{i}"
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, None),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, None),
        ]
        if kind == "linear_attention":
            a = f"{p}.linear_attn"
            linears += [
                Linear(f"{a}.in_proj_qkvz", 2 * key_dim + 2 * value_dim, HIDDEN, None, "target"),
                # kept BF16 and excluded by real exports (tiny output, see qwen_gdn_linear_attn.py)
                Linear(f"{a}.in_proj_ba", 2 * LIN_V_HEADS, HIDDEN, None, "router", False),
                Linear(f"{a}.out_proj", HIDDEN, value_dim, None, "target"),
            ]
            plains += [
                Plain(f"{a}.conv1d.weight", (2 * key_dim + value_dim, 1, CONV_K), None),
                Plain(f"{a}.A_log", (LIN_V_HEADS,), None, "F32"),
                Plain(f"{a}.dt_bias", (LIN_V_HEADS,), None, init="ones"),
                _norm(f"{a}.norm", LIN_HEAD_DIM, None),
            ]
        else:
            linears += _attn_gqa(p, None, gated_q=True)
            plains += [
                _norm(f"{p}.self_attn.q_norm", HEAD_DIM, None),
                _norm(f"{p}.self_attn.k_norm", HEAD_DIM, None),
            ]
        linears += _qwen_moe(p, None)
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for k in range(num_mtp):
        p = f"mtp.layers.{k}"
        prefixes.append(p)
        linears += _attn_gqa(p, k, gated_q=True)
        linears += _qwen_moe(p, k)
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, k),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
            _norm(f"{p}.self_attn.q_norm", HEAD_DIM, k),
            _norm(f"{p}.self_attn.k_norm", HEAD_DIM, k),
        ]
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
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["Qwen3NextForCausalLM"],
        "model_type": "qwen3_next",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "layer_types": layer_types,
        "full_attention_interval": 2,
        "linear_conv_kernel_dim": CONV_K,
        "linear_key_head_dim": LIN_HEAD_DIM,
        "linear_value_head_dim": LIN_HEAD_DIM,
        "linear_num_key_heads": LIN_K_HEADS,
        "linear_num_value_heads": LIN_V_HEADS,
        "decoder_sparse_step": 1,
        "num_experts": EXPERTS,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": MOE_INTER,
        "shared_expert_intermediate_size": MOE_INTER,
        "norm_topk_prob": True,
        "mlp_only_layers": [],
        "partial_rotary_factor": 0.25,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family(
        "qwen3_next",
        "Qwen3NextForCausalLM",
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        "mtp*",
        globs,
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


def _ds_moe(prefix: str, mtp: int | None) -> tuple[list[Linear], list[Plain]]:
    linears = _experts(f"{prefix}.mlp", mtp) + _mlp(f"{prefix}.mlp.shared_experts", MOE_INTER, mtp)
    linears.append(Linear(f"{prefix}.mlp.gate", EXPERTS, HIDDEN, mtp, "router", False))
    plains = [
        Plain(f"{prefix}.mlp.gate.e_score_correction_bias", (EXPERTS,), mtp, "F32", "zeros_ish")
    ]
    return linears, plains


def deepseek_v3(num_mtp: int) -> Family:
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    layers: list[tuple[str, int | None]] = [(f"model.layers.{i}", None) for i in range(n)]
    layers += [(f"model.layers.{n + k}", k) for k in range(num_mtp)]
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for i, (p, k) in enumerate(layers):
        lin, pl = _mla(p, k)
        linears += lin
        plains += pl
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, k),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
        ]
        if i == 0:
            linears += _mlp(f"{p}.mlp", DENSE_INTER, k)
        else:
            lin, pl = _ds_moe(p, k)
            linears += lin
            plains += pl
        if k is not None:
            prefixes.append(p)
            linears.append(Linear(f"{p}.eh_proj", HIDDEN, 2 * HIDDEN, k, "eh_proj", False))
            linears.append(Linear(f"{p}.shared_head.head", VOCAB, HIDDEN, k, "head"))
            plains += [
                _norm(f"{p}.enorm", HIDDEN, k),
                _norm(f"{p}.hnorm", HIDDEN, k),
                _norm(f"{p}.shared_head.norm", HIDDEN, k),
                # DeepSeek-V3 repeats the embedding in each MTP layer
                Plain(f"{p}.embed_tokens.weight", (VOCAB, HIDDEN), k),
            ]
            globs[(k, "attn")] = f"{p}.self_attn*"
            globs[(k, "mlp")] = f"{p}.mlp*"
            globs[(k, "head")] = f"{p}.shared_head*"
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "moe_intermediate_size": MOE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
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
    return Family(
        "deepseek_v3",
        "DeepseekV3ForCausalLM",
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        None,
        globs,
    )


FAMILIES: dict[str, Callable[[int], Family]] = {
    "deepseek_v3": deepseek_v3,
    "qwen3_next": qwen3_next,
    "step3p5": step3p5,
}
