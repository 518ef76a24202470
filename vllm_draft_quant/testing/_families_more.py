"""More tiny model families: GLM-4.5 MoE, Qwen3.5 MoE (text-only and multimodal), MiMo.

Same shape as ``_families.py`` (a ``Family`` of ``Linear`` and ``Plain`` entries),
registered with the factory by ``factory.py``. Names follow the public checkpoints
and what vLLM 0.33.0's loaders read:

- ``glm4_moe``: ``Glm4MoeForCausalLM`` (GLM-4.5/4.6/4.7). NextN layer
  ``model.layers.{N}`` (``N = num_hidden_layers``) with ``eh_proj``, ``enorm``,
  ``hnorm``, ``shared_head.{norm,head}`` and a MoE decoder block (routed experts,
  one shared expert, a router with ``e_score_correction_bias``); q/k/v carry a bias
  (``attention_bias``). See ``glm4_moe_mtp.py:Glm4MoeMTP.load_weights``.
- ``qwen3_5_moe``: ``Qwen3_5MoeForCausalLM`` (text-only export). Target layers
  alternate Gated-DeltaNet (``linear_attn.in_proj_{qkv,z,b,a}``) and gated full
  attention; every MLP is a sparse MoE with a shared expert. MTP: ``mtp.layers.{k}``,
  ``mtp.fc``, ``mtp.norm``, ``mtp.pre_fc_norm_{hidden,embedding}``. See
  ``qwen3_5_mtp.py``.
- ``qwen3_5_moe_vl``: the same text model inside ``Qwen3_5MoeForConditionalGeneration``:
  target names under ``model.language_model.``, ``lm_head`` and ``mtp.*`` unchanged,
  the text config nested in ``text_config``. The vision tower is not written (tests
  build it with ``limit_mm_per_prompt`` 0, so vLLM does not build it either).
- ``mimo``: ``MiMoForCausalLM`` (Qwen2 body, q/k/v bias). MTP layers
  ``model.mtp_layers.{k}`` with ``input_proj`` (a ``torch.nn.Linear``),
  ``token_layernorm``, ``hidden_layernorm``, ``final_layernorm`` and a dense decoder
  block; no MTP head (the drafter's own ``lm_head`` loads ``lm_head.weight``).
  ``config.json`` has ``model_type: mimo``, which transformers does not know:
  ``extra_files`` carries the ``configuration_mimo.py`` real MiMo repositories ship
  (load with ``trust_remote_code``). See ``mimo_mtp.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vllm_draft_quant.testing._families import (
    DENSE_INTER,
    EXPERTS,
    HEAD_DIM,
    HEADS,
    HIDDEN,
    KV_HEADS,
    MOE_INTER,
    VOCAB,
    Family,
    Group,
    Linear,
    Plain,
    _attn_gqa,
    _experts,
    _mlp,
    _norm,
)

__all__ = ["MORE_FAMILIES", "MoreFamily"]


@dataclass(frozen=True)
class MoreFamily(Family):
    """A family that also writes files beside the weights (e.g. remote-code configs)."""

    extra_files: dict[str, str] = field(default_factory=dict)


def _biases(linears: list[Linear], names: tuple[str, ...]) -> list[Plain]:
    """BF16 biases of the linears whose names end with one of ``names``."""
    return [
        Plain(f"{lin.name}.bias", (lin.out,), lin.mtp)
        for lin in linears
        if lin.name.endswith(names)
    ]


# --------------------------------------------------------------------------- GLM-4.5 MoE
def _glm_moe(prefix: str, mtp: int | None) -> tuple[list[Linear], list[Plain]]:
    linears = _experts(f"{prefix}.mlp", mtp) + _mlp(f"{prefix}.mlp.shared_experts", MOE_INTER, mtp)
    linears.append(Linear(f"{prefix}.mlp.gate", EXPERTS, HIDDEN, mtp, "router", False))
    plains = [
        Plain(f"{prefix}.mlp.gate.e_score_correction_bias", (EXPERTS,), mtp, "F32", "zeros_ish")
    ]
    return linears, plains


def glm4_moe(num_mtp: int) -> Family:
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    layers: list[tuple[str, int | None]] = [(f"model.layers.{i}", None) for i in range(n)]
    layers += [(f"model.layers.{n + k}", k) for k in range(num_mtp)]
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for i, (p, k) in enumerate(layers):
        attn = _attn_gqa(p, k, gated_q=False)
        linears += attn
        plains += _biases(attn, ("q_proj", "k_proj", "v_proj"))
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, k),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
        ]
        if i == 0:  # first_k_dense_replace = 1
            linears += _mlp(f"{p}.mlp", DENSE_INTER, k)
        else:
            lin, pl = _glm_moe(p, k)
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
            ]
            globs[(k, "attn")] = f"{p}.self_attn*"
            globs[(k, "mlp")] = f"{p}.mlp*"
            globs[(k, "head")] = f"{p}.shared_head*"
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["Glm4MoeForCausalLM"],
        "model_type": "glm4_moe",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "moe_intermediate_size": MOE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "partial_rotary_factor": 0.5,
        "attention_bias": True,
        "use_qk_norm": False,
        "hidden_act": "silu",
        "n_routed_experts": EXPERTS,
        "n_shared_experts": 1,
        "num_experts_per_tok": 2,
        "n_group": 1,
        "topk_group": 1,
        "first_k_dense_replace": 1,
        "norm_topk_prob": True,
        "routed_scaling_factor": 2.5,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family(
        "glm4_moe",
        "Glm4MoeForCausalLM",
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        None,
        globs,
    )


# --------------------------------------------------------------------------- Qwen3.5 MoE
LIN_K_HEADS, LIN_V_HEADS, LIN_HEAD_DIM, CONV_K = 2, 4, 32, 4


def _qwen_moe(prefix: str, mtp: int | None) -> list[Linear]:
    linears = _experts(f"{prefix}.mlp", mtp) + _mlp(f"{prefix}.mlp.shared_expert", MOE_INTER, mtp)
    linears += [
        Linear(f"{prefix}.mlp.gate", EXPERTS, HIDDEN, mtp, "router", False),
        Linear(f"{prefix}.mlp.shared_expert_gate", 1, HIDDEN, mtp, "router", False),
    ]
    return linears


def _qwen3_5_text_config(n: int, num_mtp: int, layer_types: list[str]) -> dict[str, Any]:
    return {
        "model_type": "qwen3_5_moe_text",
        "hidden_size": HIDDEN,
        "num_hidden_layers": n,
        "mtp_num_hidden_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "hidden_act": "silu",
        "layer_types": layer_types,
        "full_attention_interval": 2,
        "linear_conv_kernel_dim": CONV_K,
        "linear_key_head_dim": LIN_HEAD_DIM,
        "linear_value_head_dim": LIN_HEAD_DIM,
        "linear_num_key_heads": LIN_K_HEADS,
        "linear_num_value_heads": LIN_V_HEADS,
        "num_experts": EXPERTS,
        "num_experts_per_tok": 2,
        "moe_intermediate_size": MOE_INTER,
        "shared_expert_intermediate_size": MOE_INTER,
        "attn_output_gate": True,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 10000.0,
            "partial_rotary_factor": 0.25,
        },
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }


def _qwen3_5(num_mtp: int, *, root: str, name: str) -> Family:
    n = 2
    layer_types = ["linear_attention", "full_attention"]
    key_dim, value_dim = LIN_K_HEADS * LIN_HEAD_DIM, LIN_V_HEADS * LIN_HEAD_DIM
    linears: list[Linear] = []
    plains: list[Plain] = [Plain(f"{root}.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i, kind in enumerate(layer_types):
        p = f"{root}.layers.{i}"
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, None),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, None),
        ]
        if kind == "linear_attention":
            a = f"{p}.linear_attn"
            linears += [
                Linear(f"{a}.in_proj_qkv", 2 * key_dim + value_dim, HIDDEN, None, "target"),
                Linear(f"{a}.in_proj_z", value_dim, HIDDEN, None, "target"),
                # tiny outputs, kept BF16 and excluded by real exports
                Linear(f"{a}.in_proj_b", LIN_V_HEADS, HIDDEN, None, "router", False),
                Linear(f"{a}.in_proj_a", LIN_V_HEADS, HIDDEN, None, "router", False),
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
    plains.append(_norm(f"{root}.norm", HIDDEN, None))
    text = _qwen3_5_text_config(n, num_mtp, layer_types)
    if name == "qwen3_5_moe":
        arch = "Qwen3_5MoeForCausalLM"
        config: dict[str, Any] = {"architectures": [arch], **text}
    else:
        arch = "Qwen3_5MoeForConditionalGeneration"
        config = {
            "architectures": [arch],
            "model_type": "qwen3_5_moe",
            "text_config": text,
            "vision_config": {
                "model_type": "qwen3_5_moe_vision",
                "depth": 1,
                "hidden_size": 64,
                "intermediate_size": 128,
                "num_heads": 2,
                "in_channels": 3,
                "patch_size": 16,
                "spatial_merge_size": 2,
                "temporal_patch_size": 2,
                "out_hidden_size": HIDDEN,
                "num_position_embeddings": 64,
                "deepstack_visual_indexes": [],
            },
            "image_token_id": VOCAB - 4,
            "video_token_id": VOCAB - 3,
            "vision_start_token_id": VOCAB - 2,
            "vision_end_token_id": VOCAB - 1,
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
        }
    return Family(
        name,
        arch,
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        "mtp*",
        globs,
    )


def qwen3_5_moe(num_mtp: int) -> Family:
    return _qwen3_5(num_mtp, root="model", name="qwen3_5_moe")


def qwen3_5_moe_vl(num_mtp: int) -> Family:
    return _qwen3_5(num_mtp, root="model.language_model", name="qwen3_5_moe_vl")


# --------------------------------------------------------------------------- MiMo
CONFIGURATION_MIMO = '''\
"""MiMo configuration, as Xiaomi's MiMo repositories ship it (remote code)."""

from transformers.models.qwen2.configuration_qwen2 import Qwen2Config


class MiMoConfig(Qwen2Config):
    model_type = "mimo"

    def __init__(self, *args, num_nextn_predict_layers=0, **kwargs):
        self.num_nextn_predict_layers = num_nextn_predict_layers
        super().__init__(*args, **kwargs)
'''


def mimo(num_mtp: int) -> Family:
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    layers: list[tuple[str, int | None]] = [(f"model.layers.{i}", None) for i in range(n)]
    layers += [(f"model.mtp_layers.{k}", k) for k in range(num_mtp)]
    prefixes = []
    globs: dict[tuple[int, str], str] = {}
    for p, k in layers:
        attn = _attn_gqa(p, k, gated_q=False)
        linears += attn
        plains += _biases(attn, ("q_proj", "k_proj", "v_proj"))
        linears += _mlp(f"{p}.mlp", DENSE_INTER, k)
        plains += [
            _norm(f"{p}.input_layernorm", HIDDEN, k),
            _norm(f"{p}.post_attention_layernorm", HIDDEN, k),
        ]
        if k is not None:
            prefixes.append(p)
            group: Group = "eh_proj"
            linears.append(Linear(f"{p}.input_proj", HIDDEN, 2 * HIDDEN, k, group, False))
            plains += [
                _norm(f"{p}.token_layernorm", HIDDEN, k),
                _norm(f"{p}.hidden_layernorm", HIDDEN, k),
                _norm(f"{p}.final_layernorm", HIDDEN, k),
            ]
            globs[(k, "attn")] = f"{p}.self_attn*"
            globs[(k, "mlp")] = f"{p}.mlp*"
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["MiMoForCausalLM"],
        "model_type": "mimo",
        "auto_map": {"AutoConfig": "configuration_mimo.MiMoConfig"},
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_nextn_predict_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "max_window_layers": n,
        "use_sliding_window": False,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return MoreFamily(
        "mimo",
        "MiMoForCausalLM",
        n,
        num_mtp,
        config,
        tuple(linears),
        tuple(plains),
        tuple(prefixes),
        "model.mtp_layers*",
        globs,
        extra_files={"configuration_mimo.py": CONFIGURATION_MIMO},
    )


MORE_FAMILIES: dict[str, Callable[[int], Family]] = {
    "glm4_moe": glm4_moe,
    "mimo": mimo,
    "qwen3_5_moe": qwen3_5_moe,
    "qwen3_5_moe_vl": qwen3_5_moe_vl,
}
