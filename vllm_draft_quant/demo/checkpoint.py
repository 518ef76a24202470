"""The demo's checkpoint: a tiny Step-3.7-Flash-shaped ModelOpt NVFP4 export whose
MTP block was grafted in BF16 (the reported bug), written with numpy only.

Two target layers (layer 0 dense, layer 1 MoE with stacked 3-D experts, a shared
expert and an FP32-able router) quantized NVFP4 except what real exports keep BF16
(embeddings, norms, ``lm_head``, the router); one MTP layer ``model.layers.2`` stored
entirely BF16 in its own shard ``model-mtp.safetensors``, next to two target shards and
an index; the exclusion lists (``hf_quant_config.json`` ``exclude_modules``,
``config.json`` ``quantization_config.ignore``) do not mention it. It is exactly what the
test suite's factory writes for ``CheckpointSpec("step3p5", "nvfp4", layout="a",
sharded=True, mtp_own_shard=True)`` (``tests/unit/test_cli_demo.py`` compares the bytes).
Tensor names and layouts: FINDINGS.md "Real checkpoint conventions".
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from vllm_draft_quant.demo import tensors as T

__all__ = [
    "DENSE_INTER",
    "EXPERTS",
    "HEADS",
    "HEAD_DIM",
    "HIDDEN",
    "KV_HEADS",
    "MOE_INTER",
    "VOCAB",
    "modelopt_quant_configs",
    "step3p5_config",
    "write_demo_checkpoint",
]

HIDDEN = 128
VOCAB = 256
EXPERTS = 4
MOE_INTER = 128
DENSE_INTER = 256
HEADS = 4
KV_HEADS = 2
HEAD_DIM = 32
_TARGET_LAYERS = 2
_MTP = f"model.layers.{_TARGET_LAYERS}"  # Step-3.5 numbers its MTP layers after the target's


def step3p5_config(num_hidden_layers: int = _TARGET_LAYERS, num_mtp: int = 1) -> dict[str, Any]:
    """``config.json`` of the tiny Step-3.5 model (without ``quantization_config``).

    Legacy hub form of Step-3.5-Flash's config: per-layer lists cover the target layers
    AND the MTP layers. MTP layers are ``sliding_attention`` (as in Step-3.5-Flash) and
    so is at least one target layer (FINDINGS.md: a ``full_attention`` MTP layer hits an
    IndexError in ``step3p5._get_num_attention_heads`` under transformers 5.20).
    """
    total = num_hidden_layers + num_mtp
    return {
        "architectures": ["Step3p5ForCausalLM"],
        "model_type": "step3p5",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": num_hidden_layers,
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


def modelopt_quant_configs(
    scheme: str, exclusions: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``config.json`` ``quantization_config``, ``hf_quant_config.json``) as ModelOpt 0.37
    writes them for ``scheme`` ``nvfp4`` or ``fp8``, excluding ``exclusions``."""
    algo = "NVFP4" if scheme == "nvfp4" else "FP8"
    w: dict[str, Any] = {"dynamic": False, "num_bits": 8, "type": "float"}
    if scheme == "nvfp4":
        w = {"dynamic": False, "num_bits": 4, "type": "float", "group_size": 16}
    producer = {"name": "modelopt", "version": "0.37.0"}
    qc = {
        "config_groups": {
            "group_0": {"input_activations": dict(w), "weights": dict(w), "targets": ["Linear"]}
        },
        "ignore": list(exclusions),
        "producer": producer,
        "quant_algo": algo,
        "quant_method": "modelopt",
    }
    quantization: dict[str, Any] = {
        "quant_algo": algo,
        "kv_cache_quant_algo": None,
        "exclude_modules": list(exclusions),
    }
    if scheme == "nvfp4":
        quantization["group_size"] = 16
    return qc, {"producer": producer, "quantization": quantization}


# (name, out, in, stacked experts, quantized): every linear, target layers NVFP4 but the
# router and lm_head (the exclusions), the MTP layer BF16 (eh_proj is a plain nn.Linear)
def _linears() -> list[tuple[str, int, int, int, bool]]:
    out: list[tuple[str, int, int, int, bool]] = []
    for i in range(_TARGET_LAYERS + 1):
        p, q = f"model.layers.{i}", i < _TARGET_LAYERS
        out += [
            (f"{p}.self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN, 0, q),
            (f"{p}.self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN, 0, q),
            (f"{p}.self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN, 0, q),
            (f"{p}.self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM, 0, q),
        ]
        mlps = (
            [(f"{p}.mlp", DENSE_INTER, 0)]
            if i != 1
            else [(f"{p}.moe", MOE_INTER, EXPERTS), (f"{p}.share_expert", MOE_INTER, 0)]
        )
        for m, inter, stacked in mlps:
            out += [
                (f"{m}.gate_proj", inter, HIDDEN, stacked, q),
                (f"{m}.up_proj", inter, HIDDEN, stacked, q),
                (f"{m}.down_proj", HIDDEN, inter, stacked, q),
            ]
    out += [
        ("model.layers.1.moe.gate", EXPERTS, HIDDEN, 0, False),
        (f"{_MTP}.shared_head.output", VOCAB, HIDDEN, 0, False),
        (f"{_MTP}.eh_proj", HIDDEN, 2 * HIDDEN, 0, False),
        ("lm_head", VOCAB, HIDDEN, 0, False),
    ]
    return out


def _plains(seed: int) -> list[tuple[str, T.RawTensor]]:
    """Embedding, norms (BF16 around 1.0) and the FP32 router bias."""
    norms = [("model.norm", HIDDEN)]
    for i in range(_TARGET_LAYERS + 1):
        p = f"model.layers.{i}"
        norms += [
            (f"{p}.input_layernorm", HIDDEN),
            (f"{p}.post_attention_layernorm", HIDDEN),
            (f"{p}.self_attn.q_norm", HEAD_DIM),
            (f"{p}.self_attn.k_norm", HEAD_DIM),
        ]
    norms += [(f"{_MTP}.{n}", HIDDEN) for n in ("enorm", "hnorm", "shared_head.norm")]
    out = [
        (f"{n}.weight", T.bf16(T.rng_for(seed, f"{n}.weight"), (size,), mean=1.0))
        for n, size in norms
    ]
    embed, bias = "model.embed_tokens.weight", "model.layers.1.moe.router_bias"
    out.append((embed, T.bf16(T.rng_for(seed, embed), (VOCAB, HIDDEN))))
    out.append((bias, T.f32(T.rng_for(seed, bias).normal(0.0, 0.02, size=(EXPERTS,)), (EXPERTS,))))
    return out


def _natural(name: str) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def write_demo_checkpoint(folder: str | Path, seed: int = 0) -> Path:
    """Write the demo checkpoint into ``folder`` (created if needed); return its path."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, T.RawTensor]] = []
    for name, out, inp, stacked, quantized in _linears():
        lead = (stacked,) if stacked else ()
        rows += T.modelopt_linear(name, out, inp, "nvfp4" if quantized else "bf16", seed, lead)
    rows += _plains(seed)
    rows.sort(key=lambda r: _natural(r[0]))
    mtp = [r for r in rows if r[0].startswith(_MTP + ".")]
    target = [r for r in rows if not r[0].startswith(_MTP + ".")]
    half = len(target) // 2
    shards = {
        "model-00001-of-00002.safetensors": target[:half],
        "model-00002-of-00002.safetensors": target[half:],
        "model-mtp.safetensors": mtp,
    }
    for fname, tensors in shards.items():
        T.write_safetensors(root / fname, tensors, {"format": "pt"})
    T.write_json(
        root / "model.safetensors.index.json",
        {
            "metadata": {"total_size": sum(len(t.data) for _, t in rows)},
            "weight_map": {n: fname for fname, tensors in shards.items() for n, _ in tensors},
        },
    )
    # what real exports keep BF16 in the target; the grafted MTP layer is not mentioned
    qc, hf_quant = modelopt_quant_configs("nvfp4", ["model.layers.1.moe.gate", "lm_head"])
    T.write_json(root / "config.json", {**step3p5_config(), "quantization_config": qc})
    T.write_json(root / "hf_quant_config.json", hf_quant)
    T.write_json(root / "generation_config.json", {"_from_model_config": True})
    return root
