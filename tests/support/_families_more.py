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

from support import _families as _ds
from support._families import (
    DENSE_INTER,
    EXPERTS,
    HEAD_DIM,
    HEADS,
    HIDDEN,
    KV_HEADS,
    LIN_KEY_DIM,
    LIN_V_HEADS,
    LIN_VALUE_DIM,
    QWEN_ATTENTION_CONFIG,
    QWEN_LAYER_TYPES,
    QWEN_LINEAR_ATTENTION_CONFIG,
    QWEN_MOE_CONFIG,
    VOCAB,
    Block,
    Family,
    Linear,
    Plain,
    _attn_gqa,
    _mlp,
    _norm,
    dense_then_moe,
    layer_norms,
    layer_stack,
    nextn_config,
    nextn_head,
    qwen_hybrid,
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
def _gqa_with_bias(p: str, k: int | None) -> Block:
    """Attention with q/k/v biases (GLM's ``attention_bias``, MiMo's Qwen2 body)."""
    attn = _attn_gqa(p, k, gated_q=False)
    return attn, _biases(attn, ("q_proj", "k_proj", "v_proj"))


def _glm_layer(i: int, p: str, k: int | None) -> Block:
    attn, biases = _gqa_with_bias(p, k)
    mlp, mlp_plains = dense_then_moe(i, p, k)  # GLM's MoE block is DeepSeek-V3's
    return attn + mlp, biases + layer_norms(p, k) + mlp_plains


def glm4_moe(num_mtp: int) -> Family:
    n = 2
    linears, plains, prefixes, globs = layer_stack(
        num_mtp, lambda n, k: f"model.layers.{n + k}", _glm_layer, nextn_head
    )
    config: dict[str, Any] = {
        **nextn_config("Glm4MoeForCausalLM", "glm4_moe", n, num_mtp),
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
    return Family.of(
        "glm4_moe", "Glm4MoeForCausalLM", num_mtp, config, (linears, plains, prefixes, globs), None
    )


# --------------------------------------------------------------------------- Qwen3.5 MoE
def _qwen3_5_linear_attn(a: str) -> list[Linear]:
    return [
        Linear(f"{a}.in_proj_qkv", 2 * LIN_KEY_DIM + LIN_VALUE_DIM, HIDDEN, None, "target"),
        Linear(f"{a}.in_proj_z", LIN_VALUE_DIM, HIDDEN, None, "target"),
        # tiny outputs, kept BF16 and excluded by real exports
        Linear(f"{a}.in_proj_b", LIN_V_HEADS, HIDDEN, None, "router", False),
        Linear(f"{a}.in_proj_a", LIN_V_HEADS, HIDDEN, None, "router", False),
        Linear(f"{a}.out_proj", HIDDEN, LIN_VALUE_DIM, None, "target"),
    ]


def _qwen3_5_text_config(n: int, num_mtp: int) -> dict[str, Any]:
    return {
        "model_type": "qwen3_5_moe_text",
        "hidden_size": HIDDEN,
        "num_hidden_layers": n,
        "mtp_num_hidden_layers": num_mtp,
        **QWEN_ATTENTION_CONFIG,
        "hidden_act": "silu",
        **QWEN_LINEAR_ATTENTION_CONFIG,
        **QWEN_MOE_CONFIG,
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
    linears, plains, prefixes, globs = qwen_hybrid(num_mtp, root, _qwen3_5_linear_attn)
    n = len(QWEN_LAYER_TYPES)
    text = _qwen3_5_text_config(n, num_mtp)
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
    return Family.of(name, arch, num_mtp, config, (linears, plains, prefixes, globs), "mtp*")


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


def _mimo_layer(i: int, p: str, k: int | None) -> Block:
    attn, biases = _gqa_with_bias(p, k)
    return attn + _mlp(f"{p}.mlp", DENSE_INTER, k), biases + layer_norms(p, k)


def _mimo_mtp(p: str, k: int) -> Block:
    """MiMo's MTP extras: ``input_proj`` (a ``torch.nn.Linear``) and three norms; no head."""
    norms = ("token_layernorm", "hidden_layernorm", "final_layernorm")
    return [Linear(f"{p}.input_proj", HIDDEN, 2 * HIDDEN, k, "eh_proj", False)], [
        _norm(f"{p}.{n}", HIDDEN, k) for n in norms
    ]


def mimo(num_mtp: int) -> Family:
    n = 2
    linears, plains, prefixes, globs = layer_stack(
        num_mtp, lambda n, k: f"model.mtp_layers.{k}", _mimo_layer, _mimo_mtp, head_glob=False
    )
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
    return MoreFamily.of(
        "mimo",
        "MiMoForCausalLM",
        num_mtp,
        config,
        (linears, plains, prefixes, globs),
        "model.mtp_layers*",
        extra_files={"configuration_mimo.py": CONFIGURATION_MIMO},
    )


# --------------------------------------------------------------------------- Qwen3.5 dense
def qwen3_5(num_mtp: int) -> Family:
    """Dense Qwen3.5 / 3.6 (``Qwen3_5ForCausalLM``, model type ``qwen3_5_text``): the MoE
    family's layers with a dense gated MLP in every layer and MTP layer; vLLM gives it
    the draft architecture ``Qwen3_5MTP``."""
    linears, plains, prefixes, globs = qwen_hybrid(num_mtp, "model", _qwen3_5_linear_attn)
    roots = {lin.name.split(".mlp.")[0]: lin.mtp for lin in linears if ".mlp." in lin.name}
    linears = [lin for lin in linears if ".mlp." not in lin.name]
    for root, k in roots.items():
        linears += _mlp(f"{root}.mlp", DENSE_INTER, k)
    n = len(QWEN_LAYER_TYPES)
    text = _qwen3_5_text_config(n, num_mtp)
    for key in QWEN_MOE_CONFIG:
        text.pop(key, None)
    config: dict[str, Any] = {"architectures": ["Qwen3_5ForCausalLM"], **text,
                              "model_type": "qwen3_5_text", "intermediate_size": DENSE_INTER}
    return Family.of("qwen3_5", "Qwen3_5ForCausalLM", num_mtp, config,
                     (linears, plains, prefixes, globs), "mtp*")


# --------------------------------------------------------------------------- GLM-5 (DSA)
INDEX_HEADS, INDEX_HEAD_DIM, INDEX_TOPK = 4, 64, 64


def _dsa_indexer(p: str, k: int | None) -> Block:
    """The DSA "lightning indexer" of a GLM-5 / DeepSeek-V3.2 layer: ``wq_b`` (quantized
    by exports), ``wk`` and ``weights_proj`` (kept BF16: vLLM builds them unquantized as
    ``wk_weights_proj``), ``k_norm`` (a LayerNorm with bias)."""
    a = f"{p}.self_attn.indexer"
    group = "attn" if k is not None else "target"
    linears = [
        Linear(f"{a}.wq_b", INDEX_HEADS * INDEX_HEAD_DIM, _ds.Q_LORA, k, group),  # type: ignore[arg-type]
        Linear(f"{a}.wk", INDEX_HEAD_DIM, HIDDEN, k, "router", False),
        Linear(f"{a}.weights_proj", INDEX_HEADS, HIDDEN, k, "router", False),
    ]
    plains = [Plain(f"{a}.k_norm.weight", (INDEX_HEAD_DIM,), k, init="ones"),
              Plain(f"{a}.k_norm.bias", (INDEX_HEAD_DIM,), k, init="zeros_ish")]
    return linears, plains


def _glm5_layer(i: int, p: str, k: int | None) -> Block:
    lin, pl = _ds._ds_layer(i, p, k)
    ilin, ipl = _dsa_indexer(p, k)
    return lin + ilin, pl + ipl


def glm5(num_mtp: int) -> Family:
    """GLM-5.x (``GlmMoeDsaForCausalLM``, model type ``glm_moe_dsa``): DeepSeek-V3's layers
    (MLA, DeepSeek MoE, NextN head) plus the DSA indexer; vLLM gives it the draft
    architecture ``DeepseekV32MTPModel``."""
    return _dsa("glm5", "GlmMoeDsaForCausalLM", "glm_moe_dsa", num_mtp)


def deepseek_v32(num_mtp: int) -> Family:
    """DeepSeek-V3.2 (``DeepseekV32ForCausalLM``, model type ``deepseek_v32``): the same
    tensors as GLM-5; vLLM gives it ``DeepseekV32MTPModel`` too."""
    return _dsa("deepseek_v32", "DeepseekV32ForCausalLM", "deepseek_v32", num_mtp)


def _dsa(name: str, arch: str, model_type: str, num_mtp: int) -> Family:
    n = 2
    linears, plains, prefixes, globs = layer_stack(
        num_mtp, lambda n, k: f"model.layers.{n + k}", _glm5_layer, _ds._ds_nextn
    )
    config = dict(_ds.deepseek_v3(num_mtp).config)
    config.update({
        "architectures": [arch],
        "model_type": model_type,
        "num_hidden_layers": n,
        "index_topk": INDEX_TOPK,
        "index_head_dim": INDEX_HEAD_DIM,
        "index_n_heads": INDEX_HEADS,
        "head_dim": _ds.ROPE,
        "hidden_act": "silu",
    })
    return Family.of(name, arch, num_mtp, config, (linears, plains, prefixes, globs), None)


# --------------------------------------------------------------------------- GLM-4.7-Flash
def glm4_moe_lite(num_mtp: int) -> Family:
    """GLM-4.7-Flash (``Glm4MoeLiteForCausalLM``): DeepSeek-V3's tensor names (MLA with
    ``q_a_proj``, DeepSeek MoE, NextN head); vLLM gives it ``Glm4MoeLiteMTPModel``."""
    linears, plains, prefixes, globs = layer_stack(
        num_mtp, lambda n, k: f"model.layers.{n + k}", _ds._ds_layer, _ds._ds_nextn
    )
    config = dict(_ds.deepseek_v3(num_mtp).config)
    for key in ("moe_layer_freq", "scoring_func", "topk_method"):
        config.pop(key, None)
    config.update({"architectures": ["Glm4MoeLiteForCausalLM"], "model_type": "glm4_moe_lite",
                   "hidden_act": "silu"})
    return Family.of("glm4_moe_lite", "Glm4MoeLiteForCausalLM", num_mtp, config,
                     (linears, plains, prefixes, globs), None)


MORE_FAMILIES: dict[str, Callable[[int], Family]] = {
    "glm4_moe_lite": glm4_moe_lite,
    "glm5": glm5,
    "deepseek_v32": deepseek_v32,
    "qwen3_5": qwen3_5,
    "glm4_moe": glm4_moe,
    "mimo": mimo,
    "qwen3_5_moe": qwen3_5_moe,
    "qwen3_5_moe_vl": qwen3_5_moe_vl,
}
