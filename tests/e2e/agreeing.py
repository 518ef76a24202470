"""Tiny MiMo checkpoints whose draft agrees with the target by construction (torch).

Greedy decoding of the *target* walks a fixed permutation: the embeddings dominate
the residual stream (the target layers add small random terms) and ``lm_head`` maps
token ``x`` to ``PERM[x]``. The MTP layer predicts the same successor, but only
through its MLP: ``input_proj`` passes the token embedding through *negated*, and
the MLP (a SiLU-gated identity, its gate fed by a constant embedding dimension) adds
three times the input back, so the layer's output points at ``+u``. An MTP layer
whose MLP is missing, zero or garbage points at ``-u`` or at noise, and its drafts
are rejected (FINDINGS.md: "scale the draft path so it matters").

The same float weights are written as the BF16 original and as a ModelOpt NVFP4
export (``layout``: which MTP groups are quantized, like the factory's layouts "a"
and "e": the exclusions never mention the MTP layer beyond what the layout keeps
BF16). Every value the NVFP4 writer stores is the ModelOpt encoding of the float
weight: E2M1 nibbles (low nibble first), E4M3 block scales per 16 inputs, one FP32
``weight_scale_2`` and ``input_scale`` per fused group (q/k/v, gate/up share them).
The FP8 writer (ModelOpt per-tensor) gives every shard its own ``weight_scale`` (vLLM
requantizes a fused layer's shards to the largest at load) and a shared ``input_scale``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from support._families_more import CONFIGURATION_MIMO

from vllm_draft_quant.demo.checkpoint import modelopt_quant_configs

__all__ = [
    "HIDDEN",
    "PERM",
    "VOCAB",
    "Written",
    "embedding_and_head",
    "gated_identity",
    "greedy_continuation",
    "write_mimo",
]

HIDDEN, VOCAB, INTER, HEADS, KV_HEADS = 128, 256, 256, 4, 2
HEAD_DIM = HIDDEN // HEADS
TARGET_LAYERS = 2
EMBED_SCALE = 4.0
_GEN = 1234
PERM = torch.randperm(VOCAB, generator=torch.Generator().manual_seed(_GEN)).tolist()
# activation amax per linear kind (ModelOpt's calibrated input_scale = amax / (6 * 448))
_ACT_AMAX = {"qkv": 8.0, "o": 4.0, "gate_up": 8.0, "down": 40.0, "qkv_a": 8.0, "q_b": 8.0,
             "kv_b": 8.0, "qkvz": 8.0}  # fmt: skip
_E2M1 = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])


def greedy_continuation(prompt: list[int], n: int) -> list[int]:
    """The tokens greedy decoding of the agreeing target produces after ``prompt``."""
    out, x = [], prompt[-1]
    for _ in range(n):
        x = PERM[x]
        out.append(x)
    return out


@dataclass(frozen=True)
class Written:
    path: Path
    quantized: tuple[str, ...]  # linear names stored NVFP4


def embedding_and_head(g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(embedding, LM head), both [VOCAB, HIDDEN]: dimension 0 of every embedding is 2 (the
    gate of ``gated_identity``), the rest a random direction of norm sqrt(HIDDEN - 1), all
    times ``EMBED_SCALE``; head row ``PERM[x]`` is token x's direction, so a hidden state
    pointing at embedding x gives ``PERM[x]``."""
    body = torch.randn(VOCAB, HIDDEN - 1, generator=g)
    body = body / body.norm(dim=1, keepdim=True) * math.sqrt(HIDDEN - 1)
    emb = torch.cat([torch.full((VOCAB, 1), 2.0), body], dim=1) * EMBED_SCALE
    head = torch.zeros(VOCAB, HIDDEN)
    head[torch.tensor(PERM), 1:] = body / math.sqrt(HIDDEN - 1) * 4.0
    return emb, head


def gated_identity(inter: int) -> dict[str, torch.Tensor]:
    """``gate_proj``/``up_proj``/``down_proj`` of a SiLU-gated MLP that maps an input
    n ~ -u (u: a normalised embedding, u[0] ~ 1.98 for every token) to ~ +3u:
    gate = -4 * n[0] ~ 7.9 -> silu ~ 7.9; up = n; down = -3/7.9."""
    gate, up, down = (
        torch.zeros(inter, HIDDEN),
        torch.zeros(inter, HIDDEN),
        torch.zeros(HIDDEN, inter),
    )
    gate[:HIDDEN, 0] = -4.0
    up[:HIDDEN, :HIDDEN] = torch.eye(HIDDEN)
    down[:HIDDEN, :HIDDEN] = torch.eye(HIDDEN) * (-3.0 / 7.9)
    return {"gate_proj": gate, "up_proj": up, "down_proj": down}


def _weights() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(_GEN + 1)
    w: dict[str, torch.Tensor] = {}
    w["model.embed_tokens.weight"], w["lm_head.weight"] = embedding_and_head(g)
    w["model.norm.weight"] = torch.ones(HIDDEN)

    def small(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * 0.02

    def block(p: str, *, pass_through_mlp: bool) -> None:
        w[f"{p}.self_attn.q_proj.weight"] = small(HEADS * HEAD_DIM, HIDDEN)
        w[f"{p}.self_attn.k_proj.weight"] = small(KV_HEADS * HEAD_DIM, HIDDEN)
        w[f"{p}.self_attn.v_proj.weight"] = small(KV_HEADS * HEAD_DIM, HIDDEN)
        for n, size in (("q", HEADS), ("k", KV_HEADS), ("v", KV_HEADS)):
            w[f"{p}.self_attn.{n}_proj.bias"] = torch.zeros(size * HEAD_DIM)
        w[f"{p}.self_attn.o_proj.weight"] = small(HIDDEN, HEADS * HEAD_DIM)
        w[f"{p}.input_layernorm.weight"] = torch.ones(HIDDEN)
        w[f"{p}.post_attention_layernorm.weight"] = torch.ones(HIDDEN)
        if not pass_through_mlp:
            w[f"{p}.mlp.gate_proj.weight"] = small(INTER, HIDDEN)
            w[f"{p}.mlp.up_proj.weight"] = small(INTER, HIDDEN)
            w[f"{p}.mlp.down_proj.weight"] = small(HIDDEN, INTER)
            return
        for name, t in gated_identity(INTER).items():
            w[f"{p}.mlp.{name}.weight"] = t

    for i in range(TARGET_LAYERS):
        block(f"model.layers.{i}", pass_through_mlp=False)
    m = "model.mtp_layers.0"
    block(m, pass_through_mlp=True)
    proj = torch.zeros(HIDDEN, 2 * HIDDEN)  # cat([hidden, embedding]): embedding, negated
    proj[:, HIDDEN:] = -torch.eye(HIDDEN)
    w[f"{m}.input_proj.weight"] = proj
    for n in ("token_layernorm", "hidden_layernorm", "final_layernorm"):
        w[f"{m}.{n}.weight"] = torch.ones(HIDDEN)
    return w


def _kind(name: str) -> str:
    leaf = name.rsplit(".", 1)[-1]
    return {
        "q_proj": "qkv",
        "k_proj": "qkv",
        "v_proj": "qkv",
        "o_proj": "o",
        "gate_proj": "gate_up",
        "up_proj": "gate_up",
        "down_proj": "down",
        # MLA (DeepSeek-V3): q_a and kv_a fuse into fused_qkv_a_proj
        "q_a_proj": "qkv_a",
        "kv_a_proj_with_mqa": "qkv_a",
        "q_b_proj": "q_b",
        "kv_b_proj": "kv_b",
        # Gated-DeltaNet (Qwen3-Next in_proj_qkvz; Qwen3.5 in_proj_qkv + in_proj_z fuse)
        "in_proj_qkvz": "qkvz",
        "in_proj_qkv": "qkvz",
        "in_proj_z": "qkvz",
        "out_proj": "o",
    }[leaf]


def _fusion(name: str) -> str:
    return name.rsplit(".", 1)[0] + "." + _kind(name)


def nvfp4_encode(w: torch.Tensor, global_amax: float) -> dict[str, torch.Tensor]:
    """ModelOpt NVFP4 tensors of the float weight ``w`` (``weight_scale_2`` from the
    fused group's amax)."""
    out_f, in_f = w.shape
    ws2 = torch.tensor(max(global_amax, 1e-12) / (6.0 * 448.0), dtype=torch.float32)
    blocks = w.float().reshape(out_f, in_f // 16, 16)
    bscale = (blocks.abs().amax(-1) / 6.0 / ws2).clamp(max=448.0).to(torch.float8_e4m3fn)
    denom = (bscale.float() * ws2).unsqueeze(-1)
    scaled = torch.where(denom > 0, blocks / denom.clamp(min=1e-30), torch.zeros_like(blocks))
    mag = (scaled.abs().unsqueeze(-1) - _E2M1).abs().argmin(-1)  # nearest E2M1 magnitude
    code = (mag | ((scaled < 0) & (mag > 0)).long() << 3).reshape(out_f, in_f).to(torch.uint8)
    packed = code[:, 0::2] | (code[:, 1::2] << 4)
    return {"weight": packed, "weight_scale": bscale, "weight_scale_2": ws2}


def fp8_encode(w: torch.Tensor, amax: float) -> dict[str, torch.Tensor]:
    """ModelOpt FP8 per-tensor tensors of ``w`` (scale from ``amax``)."""
    scale = torch.tensor(max(amax, 1e-12) / 448.0, dtype=torch.float32)
    return {"weight": (w.float() / scale).to(torch.float8_e4m3fn), "weight_scale": scale}


def nvfp4_decode(t: dict[str, torch.Tensor]) -> torch.Tensor:
    packed = t["weight"]
    codes = torch.stack([packed & 0xF, packed >> 4], dim=-1).reshape(packed.shape[0], -1).long()
    vals = _E2M1[codes & 7] * torch.where(codes & 8 > 0, -1.0, 1.0)
    scale = t["weight_scale"].float().repeat_interleave(16, dim=1) * t["weight_scale_2"]
    return vals * scale


def _config(num_mtp: int = 1) -> dict[str, Any]:
    return {
        "architectures": ["MiMoForCausalLM"],
        "model_type": "mimo",
        "auto_map": {"AutoConfig": "configuration_mimo.MiMoConfig"},
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": TARGET_LAYERS,
        "num_nextn_predict_layers": num_mtp,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "max_window_layers": TARGET_LAYERS,
        "use_sliding_window": False,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 0,
        "eos_token_id": VOCAB + 10,  # never generated: generation stops at max_tokens
    }


def encode(
    weights: dict[str, torch.Tensor],
    linears: list[str],
    quant: str | None,
    is_quantized: Callable[[str], bool],
    act_amax: dict[str, float] | None = None,
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """The tensors to store and the linears stored quantized: each of ``linears`` for which
    ``is_quantized`` holds as a ModelOpt ``quant`` export (``nvfp4``: a fused group shares
    ``weight_scale_2``, as ModelOpt writes it; ``fp8``: each shard its own ``weight_scale``,
    vLLM requantizes them to the largest at load), with a static ``input_scale`` from the
    activation amax of its kind (``act_amax``, default ``_ACT_AMAX``); the rest BF16."""
    amax_of = {**_ACT_AMAX, **(act_amax or {})}
    amax: dict[str, float] = {}
    for lin in linears:
        key = _fusion(lin)
        amax[key] = max(amax.get(key, 0.0), float(weights[f"{lin}.weight"].abs().max()))
    tensors: dict[str, torch.Tensor] = {}
    quantized: list[str] = []
    for name, t in weights.items():
        lin = name[: -len(".weight")] if name.endswith(".weight") else None
        if quant is not None and lin in linears and is_quantized(lin):
            if quant == "nvfp4":
                enc = nvfp4_encode(t, amax[_fusion(lin)])
            else:
                enc = fp8_encode(t, float(t.abs().max()))
            for suffix, v in enc.items():
                tensors[f"{lin}.{suffix}"] = v
            act_max = 6.0 * 448.0 if quant == "nvfp4" else 448.0
            tensors[f"{lin}.input_scale"] = torch.tensor(
                amax_of[_kind(lin)] / act_max, dtype=torch.float32
            )
            quantized.append(lin)
        else:
            tensors[name] = t.to(torch.bfloat16)
    return tensors, quantized


def save(
    path: Path,
    tensors: dict[str, torch.Tensor],
    config: dict[str, Any],
    quant: str | None,
    exclusions: list[str],
) -> None:
    """``model.safetensors``, ``config.json`` (with the ModelOpt ``quantization_config`` of
    ``quant`` excluding ``exclusions``, and ``hf_quant_config.json``) and a greedy
    ``generation_config.json`` in ``path``."""
    save_file(tensors, str(path / "model.safetensors"), metadata={"format": "pt"})
    if quant is not None:
        qc, hf = modelopt_quant_configs(quant, exclusions)
        config["quantization_config"] = qc
        (path / "hf_quant_config.json").write_text(json.dumps(hf, indent=2))
    (path / "config.json").write_text(json.dumps(config, indent=2))
    (path / "generation_config.json").write_text(json.dumps({"do_sample": False}))


MTP_GROUPS = {"attn": ("self_attn.",), "mlp": ("mlp.",)}


def write_mimo(
    path: Path,
    *,
    quant: str | None,
    mtp_quantized: tuple[str, ...] = (),
    break_mtp_mlp: bool = False,
    drop_mtp: bool = False,
) -> Written:
    """The BF16 original (``quant=None``) or a ModelOpt ``nvfp4``/``fp8`` export of it whose MTP
    groups ``mtp_quantized`` (``attn``, ``mlp``) are quantized too and the rest of the
    MTP layer BF16; exclusions name ``lm_head`` and, by checkpoint name, each BF16 MTP
    module of a quantized group's layer (none when the MTP layer is entirely BF16: the
    graft). ``break_mtp_mlp`` zeroes the MTP MLP's ``down_proj`` (a control: a draft
    whose MLP contributes nothing must be rejected). ``drop_mtp`` writes no MTP tensor
    (an export that dropped them: the draft then comes from another folder)."""
    path.mkdir(parents=True, exist_ok=True)
    weights = _weights()
    if break_mtp_mlp:
        weights["model.mtp_layers.0.mlp.down_proj.weight"].zero_()
    if drop_mtp:
        weights = {n: t for n, t in weights.items() if not n.startswith("model.mtp_layers.")}
    linears = [
        n[: -len(".weight")]
        for n in weights
        if n.endswith("_proj.weight") and ".input_proj" not in n
    ]

    def is_quantized(lin: str) -> bool:
        if not lin.startswith("model.mtp_layers."):
            return True
        return any(g in lin for grp in mtp_quantized for g in MTP_GROUPS[grp])

    tensors, quantized = encode(weights, linears, quant, is_quantized)
    exclusions = ["lm_head"]
    if quant is not None and mtp_quantized:
        exclusions += [lin for lin in linears if lin not in quantized]
    config = _config()
    save(path, tensors, config, quant, exclusions)
    (path / "configuration_mimo.py").write_text(CONFIGURATION_MIMO)
    return Written(path, tuple(quantized))
