"""Tiny NextN MoE checkpoints (GLM-4.x ``Glm4MoeForCausalLM``, DeepSeek-V3
``DeepseekV3ForCausalLM``, each with its NextN MTP layer) whose draft agrees with the target by
construction (torch).

The tensors and ``config.json`` are the test factory's ``glm4_moe`` and ``deepseek_v3``
families (``tests/support/_families_more.py``, ``_families.py``: two target layers, layer 0
dense, layer 1 MoE with four routed experts, a shared expert and a router with
``e_score_correction_bias``, and the NextN layer ``model.layers.2``); only their values are
chosen here, as ``agreeing.py`` chooses MiMo's. DeepSeek's MLA is widened to the latent
size vLLM's CPU MLA backend takes (``kv_lora_rank`` 512 + ``qk_rope_head_dim`` 64 = 576,
``cpu_mla.py:CPUMLABackend.get_supported_head_sizes``).

- embeddings dominate the residual stream and ``lm_head`` maps token x to ``PERM[x]``
  (``agreeing.embedding_and_head``); every other target weight is small and random, so the
  target's attention and MoE layer (its routing included) run but pass the embedding
  through;
- the NextN layer predicts the same successor only through its *routed experts*:
  ``eh_proj`` passes ``enorm(embedding)`` through negated (the NextN layer concatenates
  ``[embedding, hidden]``), and every routed expert is ``agreeing.gated_identity``, so
  whichever experts the router picks (their weights renormalised to 1, times
  ``routed_scaling_factor``) the MoE adds ~7.5u back and the layer points at +u; the
  shared expert and the attention are small and random. A NextN layer whose experts are
  missing, zero or garbage points at -u or at noise, and its drafts are rejected;
- the NextN head (``shared_head.head``) is ``lm_head``'s copy (DeepSeek's NextN
  ``embed_tokens`` the embedding's).

Quantized exports (``agreeing.encode``: ModelOpt NVFP4 or FP8) quantize the target's
attention, dense MLP and shared expert; the target's routed experts stay BF16, excluded by
name (``model.layers.1.mlp.experts``: vLLM 0.33 runs FP8 experts on this CPU through no
kernel, ``cpu_forward.py`` F13's note; keeping them BF16 keeps the target's tokens those of
the reference). The NextN layer is BF16 and no exclusion mentions it (layout a, the graft),
or (``mtp_quantized``) its attention, routed experts and shared expert are quantized too,
the NextN head stays BF16 excluded by its exact checkpoint name (layout d; NVFP4 NextN
experts run on ``cpu_forward.py`` F20), or (``drop_mtp``) the export has no NextN tensors
and the draft is read from another folder (the BF16 original's).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from agreeing import Written, embedding_and_head, encode, gated_identity, greedy_continuation, save
from support._families import Family, Linear
from support.factory import FAMILIES
from torch import Tensor

__all__ = ["greedy_continuation", "write_deepseek_v3", "write_glm4_moe"]

_GEN = 2468
TARGET_EXPERTS = "model.layers.1.mlp.experts"  # excluded: the target's routed experts
# the NextN groups a quantized-MTP export may quantize (``mtp_quantized``)
MTP_GROUPS = {"attn": "self_attn.", "experts": "mlp.experts.", "shared": "mlp.shared_experts."}
# DeepSeek-V3's MLA sizes for vLLM's CPU MLA backend (latent 512 + rope 64)
_MLA = {"kv_lora_rank": 512, "qk_rope_head_dim": 64}


def _family(name: str) -> tuple[Family, dict[str, Any]]:
    family = FAMILIES[name](1)
    config = {**family.config, "eos_token_id": 266}  # never generated: stops at max_tokens
    if "kv_lora_rank" in config:  # MLA (DeepSeek-V3)
        config.update(_MLA)
    return family, config


def _shape(lin: Linear, c: dict[str, Any]) -> tuple[int, int]:
    """``lin``'s [out, in]: the factory's, with MLA's latent sizes from the config ``c``."""
    heads, nope = c.get("num_attention_heads", 0), c.get("qk_nope_head_dim", 0)
    rank, rope = c.get("kv_lora_rank"), c.get("qk_rope_head_dim")
    mla = {
        "q_b_proj": (heads * (nope + rope), lin.inp) if rope else None,
        "kv_a_proj_with_mqa": (rank + rope, lin.inp) if rank and rope else None,
        "kv_b_proj": (lin.out, rank) if rank else None,
    }.get(lin.name.rsplit(".", 1)[-1])
    return mla or (lin.out, lin.inp)


def _weights(family: Family, config: dict[str, Any], break_experts: bool) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(_GEN)
    nextn = family.mtp_layer_prefixes[0]
    w: dict[str, Tensor] = {}
    for p in family.plains:
        shape = p.shape
        if p.name.endswith("kv_a_layernorm.weight"):
            shape = (config["kv_lora_rank"],)
        if p.init == "ones":
            w[p.name] = torch.ones(shape)
        elif p.init == "zeros_ish" or p.name.endswith(".bias"):
            w[p.name] = torch.zeros(shape)
    for lin in family.linears:
        w[f"{lin.name}.weight"] = torch.randn(*_shape(lin, config), generator=g) * 0.02
    emb, head = embedding_and_head(g)
    w["model.embed_tokens.weight"], w["lm_head.weight"] = emb, head
    if f"{nextn}.embed_tokens.weight" in {p.name for p in family.plains}:
        w[f"{nextn}.embed_tokens.weight"] = emb.clone()
    w[f"{nextn}.shared_head.head.weight"] = head.clone()
    proj = torch.zeros_like(w[f"{nextn}.eh_proj.weight"])  # cat([embedding, hidden])
    proj[:, : emb.shape[1]] = -torch.eye(emb.shape[1])
    w[f"{nextn}.eh_proj.weight"] = proj
    for e in range(config["n_routed_experts"]):
        for name, t in gated_identity(config["moe_intermediate_size"]).items():
            w[f"{nextn}.mlp.experts.{e}.{name}.weight"] = t * (0 if break_experts else 1)
    assert sorted(w) == sorted(
        [f"{lin.name}.weight" for lin in family.linears] + [p.name for p in family.plains]
    )
    return w


def _write(
    path: Path,
    family_name: str,
    quant: str | None,
    break_experts: bool,
    mtp_quantized: tuple[str, ...] = (),
    drop_mtp: bool = False,
) -> Written:
    path.mkdir(parents=True, exist_ok=True)
    family, config = _family(family_name)
    weights = _weights(family, config, break_experts)
    nextn = family.mtp_layer_prefixes[0]
    if drop_mtp:  # an export without the NextN layer: the draft comes from another folder
        weights = {n: t for n, t in weights.items() if not n.startswith(f"{nextn}.")}

    def quantized_here(lin: Linear) -> bool:
        if lin.mtp is None:
            return not lin.name.startswith(TARGET_EXPERTS)
        return lin.group != "head" and any(
            lin.name.startswith(f"{nextn}.{MTP_GROUPS[g]}") for g in mtp_quantized
        )

    linears = [
        lin.name
        for lin in family.linears
        if lin.quantizable and quantized_here(lin) and f"{lin.name}.weight" in weights
    ]
    tensors, quantized = encode(weights, linears, quant, lambda lin: True)
    for name in tensors:
        if name.endswith("e_score_correction_bias"):
            tensors[name] = tensors[name].float()  # F32, as the exports store it
    exclusions = ["lm_head", TARGET_EXPERTS]
    if quant is not None and mtp_quantized:
        # the NextN modules kept BF16, by exact checkpoint name (layout d/e)
        exclusions += [
            lin.name
            for lin in family.linears
            if lin.mtp is not None and lin.quantizable and lin.name not in quantized
        ]
    save(path, tensors, config, quant, exclusions)
    return Written(path, tuple(quantized))


def write_glm4_moe(
    path: Path,
    *,
    quant: str | None,
    break_experts: bool = False,
    mtp_quantized: tuple[str, ...] = (),
    drop_mtp: bool = False,
) -> Written:
    """The GLM-4.x BF16 original (``quant=None``) or its ModelOpt ``nvfp4``/``fp8`` export
    (layout a: attention, dense MLP and shared expert of the target quantized; its routed
    experts, router, ``lm_head`` and the whole NextN layer BF16). ``mtp_quantized``: the
    NextN groups (``MTP_GROUPS``) quantized too, the rest of the NextN layer's quantizable
    modules excluded by exact checkpoint name. ``drop_mtp``: no NextN tensors.
    ``break_experts`` zeroes the NextN layer's routed experts (a control: their
    contribution is what makes drafts right)."""
    return _write(path, "glm4_moe", quant, break_experts, mtp_quantized, drop_mtp)


def write_deepseek_v3(
    path: Path,
    *,
    quant: str | None,
    break_experts: bool = False,
    mtp_quantized: tuple[str, ...] = (),
    drop_mtp: bool = False,
) -> Written:
    """``write_glm4_moe`` for DeepSeek-V3 (MLA attention; the NextN layer repeats the
    embedding)."""
    return _write(path, "deepseek_v3", quant, break_experts, mtp_quantized, drop_mtp)
