"""Tiny Qwen3-Next, Qwen3.5 MoE and dense Qwen3.5 checkpoints (``Qwen3NextForCausalLM``,
``Qwen3_5MoeForCausalLM``, ``Qwen3_5ForCausalLM``: Gated-DeltaNet linear attention, gated
full attention, sparse MoE or a dense MLP; MTP drafters ``Qwen3NextMTP``, ``Qwen3_5MoeMTP``,
``Qwen3_5MTP``) whose draft agrees with the target by construction (torch).

The tensors and ``config.json`` are the test factory's ``qwen3_next``, ``qwen3_5_moe`` and
``qwen3_5`` families (``tests/support/_families.py``, ``_families_more.py``: layer 0 linear
attention, layer 1 full attention, each with four routed experts, a shared expert and its
sigmoid gate, or (dense) one gated MLP; the MTP layer ``mtp.layers.0`` with ``mtp.fc`` and
its pre-fc norms); only the values are chosen here, as ``agreeing_nextn.py`` chooses GLM's.

- embeddings dominate the residual stream and ``lm_head`` maps token x to ``PERM[x]``
  (``agreeing.embedding_and_head``); every other target weight is small and random, so the
  target's linear attention (its convolution and delta-rule recurrence: the stand-ins
  F15-F19 of ``cpu_forward.py``), full attention and MoE run but pass the embedding
  through;
- the MTP layer predicts the same successor only through its *routed experts*: ``mtp.fc``
  passes ``pre_fc_norm_embedding(embedding)`` through negated (the drafter concatenates
  ``[embedding, hidden]``) and every routed expert is ``agreeing.gated_identity``: whichever
  two experts the router picks (weights renormalised to 1) the MoE adds ~3u back and the
  layer points at +u; shared expert and attention are small and random. An MTP layer whose
  experts are missing, zero or garbage points at -u or at noise, and its drafts are
  rejected. Dense Qwen3.5's MTP layer has no experts: its one MLP is
  ``agreeing.gated_identity`` (as MiMo's), so the drafts go through that MLP;
- their RMSNorms scale by ``1 + weight`` (``GemmaRMSNorm``): their weights are zero
  (scale 1); the gated norm inside the linear attention (``RMSNormGated``) has weight one.

Quantized exports (``agreeing.encode``: ModelOpt NVFP4) quantize the target's linear and
full attention projections and shared experts; the target's routed experts (no CPU kernel
for quantized experts, ``cpu_forward.py`` F13's note; dense Qwen3.5's MLPs are quantized) and the gate projections
``in_proj_ba`` / ``in_proj_b``, ``in_proj_a`` (tiny, excluded by real exports) stay BF16, excluded by name. The MTP layer is BF16 and no exclusion
mentions it (layout a, the graft).
"""

from __future__ import annotations

from pathlib import Path

import torch
from agreeing import Written, embedding_and_head, encode, gated_identity, greedy_continuation, save
from support._families import qwen3_next
from support._families_more import qwen3_5, qwen3_5_moe
from torch import Tensor

__all__ = ["greedy_continuation", "write_qwen3_5", "write_qwen3_5_moe", "write_qwen3_next"]

_GEN = 3579
MTP = "mtp.layers.0"
_EXPERTS = ["model.layers.0.mlp.experts", "model.layers.1.mlp.experts"]
# BF16 and excluded by name: the target's routed experts and the tiny gate projections of
# its linear attention (Qwen3-Next fuses them as in_proj_ba, Qwen3.5 stores b and a)
TARGET_BF16 = {
    "qwen3_next": [*_EXPERTS, "model.layers.0.linear_attn.in_proj_ba"],
    "qwen3_5_moe": [*_EXPERTS, "model.layers.0.linear_attn.in_proj_b",
                    "model.layers.0.linear_attn.in_proj_a"],
    "qwen3_5": ["model.layers.0.linear_attn.in_proj_b", "model.layers.0.linear_attn.in_proj_a"],
}  # fmt: skip
_FAMILIES = {"qwen3_next": qwen3_next, "qwen3_5_moe": qwen3_5_moe, "qwen3_5": qwen3_5}


def _weights(name: str, break_experts: bool) -> tuple[dict[str, Tensor], list[str], dict]:
    family = _FAMILIES[name](1)
    config = {**family.config, "eos_token_id": 266}  # never generated: stops at max_tokens
    g = torch.Generator().manual_seed(_GEN)
    w: dict[str, Tensor] = {}
    for p in family.plains:
        if p.name.endswith("linear_attn.norm.weight"):
            w[p.name] = torch.ones(p.shape)  # RMSNormGated: weight * x
        elif p.init == "ones":
            w[p.name] = torch.zeros(p.shape)  # GemmaRMSNorm: (1 + weight) * x
        elif p.name.endswith("A_log"):
            w[p.name] = torch.randn(p.shape, generator=g) * 0.5
        elif p.name.endswith("dt_bias"):
            w[p.name] = torch.ones(p.shape)
        elif p.name.endswith("conv1d.weight"):
            w[p.name] = torch.randn(p.shape, generator=g) * 0.5
    for lin in family.linears:
        w[f"{lin.name}.weight"] = torch.randn(lin.out, lin.inp, generator=g) * 0.02
    emb, head = embedding_and_head(g)
    w["model.embed_tokens.weight"], w["lm_head.weight"] = emb, head
    fc = torch.zeros_like(w["mtp.fc.weight"])  # cat([embedding, hidden])
    fc[:, : emb.shape[1]] = -torch.eye(emb.shape[1])
    w["mtp.fc.weight"] = fc
    scale = 0 if break_experts else 1
    if "num_experts" not in config:  # dense Qwen3.5: the drafts go through the one MLP
        for proj, t in gated_identity(config["intermediate_size"]).items():
            w[f"{MTP}.mlp.{proj}.weight"] = t * scale
    for e in range(config.get("num_experts", 0)):
        for proj, t in gated_identity(config["moe_intermediate_size"]).items():
            w[f"{MTP}.mlp.experts.{e}.{proj}.weight"] = t * scale
    assert sorted(w) == sorted(
        [f"{lin.name}.weight" for lin in family.linears] + [p.name for p in family.plains]
    )
    linears = [
        lin.name
        for lin in family.linears
        if lin.quantizable
        and lin.mtp is None
        and not any(lin.name.startswith(x) for x in TARGET_BF16[name])
    ]
    return w, linears, config


def _write(path: Path, name: str, quant: str | None, break_experts: bool) -> Written:
    path.mkdir(parents=True, exist_ok=True)
    weights, linears, config = _weights(name, break_experts)
    tensors, quantized = encode(weights, linears, quant, lambda lin: True)
    for t in tensors:
        if t.endswith("A_log"):
            tensors[t] = tensors[t].float()  # F32, as the exports store it
    save(path, tensors, config, quant, ["lm_head", *TARGET_BF16[name]])
    return Written(path, tuple(quantized))


def write_qwen3_next(path: Path, *, quant: str | None, break_experts: bool = False) -> Written:
    """The Qwen3-Next BF16 original (``quant=None``) or its ModelOpt ``nvfp4``/``fp8`` export
    (layout a: the target's attention projections and shared experts quantized; its routed
    experts, ``in_proj_ba``, routers, ``lm_head`` and the whole MTP layer BF16).
    ``break_experts`` zeroes the MTP layer's routed experts (a control)."""
    return _write(path, "qwen3_next", quant, break_experts)


def write_qwen3_5_moe(path: Path, *, quant: str | None, break_experts: bool = False) -> Written:
    """``write_qwen3_next`` for Qwen3.5 MoE (text-only ``Qwen3_5MoeForCausalLM``: the same
    Gated-DeltaNet with separate ``in_proj_qkv``/``in_proj_z``/``in_proj_b``/``in_proj_a``;
    MTP drafter ``Qwen3_5MoeMTP``)."""
    return _write(path, "qwen3_5_moe", quant, break_experts)


def write_qwen3_5(path: Path, *, quant: str | None, break_experts: bool = False) -> Written:
    """``write_qwen3_next`` for dense Qwen3.5 (``Qwen3_5ForCausalLM``, MTP drafter
    ``Qwen3_5MTP``): the target's MLPs are quantized too; the MTP layer's one MLP carries
    the drafts (``break_experts`` zeroes it: the control)."""
    return _write(path, "qwen3_5", quant, break_experts)
