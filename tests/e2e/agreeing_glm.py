"""A tiny GLM-4.x MoE checkpoint (``Glm4MoeForCausalLM`` + its NextN layer) whose draft agrees
with the target by construction (torch).

The tensors and ``config.json`` are the test factory's ``glm4_moe`` family
(``tests/support/_families_more.py``: two target layers, layer 0 dense, layer 1 MoE with four
routed experts, a shared expert and a router with ``e_score_correction_bias``, and the NextN
layer ``model.layers.2``); only their values are chosen here, as ``agreeing.py`` chooses
MiMo's:

- embeddings dominate the residual stream and ``lm_head`` maps token x to ``PERM[x]``
  (``agreeing.embedding_and_head``); every other target weight is small and random, so the
  target's MoE layer (its routing included) runs but passes the embedding through;
- the NextN layer predicts the same successor only through its *routed experts*:
  ``eh_proj`` passes ``enorm(embedding)`` through negated (GLM concatenates
  ``[embedding, hidden]``), and every routed expert is ``agreeing.gated_identity``, so
  whichever experts the router picks (their weights renormalised to 1, times
  ``routed_scaling_factor``) the MoE adds ~7.5u back and the layer points at +u; the
  shared expert and the attention are small and random. A NextN layer whose experts are
  missing, zero or garbage points at -u or at noise, and its drafts are rejected;
- the NextN head (``shared_head.head``) is ``lm_head``'s copy.

Quantized exports (``agreeing.encode``: ModelOpt NVFP4 or FP8) quantize the target's
attention, dense MLP and shared expert; the target's routed experts stay BF16, excluded by
name (``model.layers.1.mlp.experts``): vLLM 0.33 runs quantized experts on this CPU
through no kernel (``cpu_forward.py`` F13's note). The NextN layer is BF16 and no exclusion
mentions it (layout a, the graft).
"""

from __future__ import annotations

from pathlib import Path

import torch
from agreeing import Written, embedding_and_head, encode, gated_identity, greedy_continuation, save
from support.factory import FAMILIES

__all__ = ["greedy_continuation", "write_glm4_moe"]

_GEN = 2468
_FAMILY = FAMILIES["glm4_moe"](1)
NEXTN = _FAMILY.mtp_layer_prefixes[0]
TARGET_EXPERTS = "model.layers.1.mlp.experts"  # excluded: the target's routed experts


def _weights(break_experts: bool) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(_GEN)
    w: dict[str, torch.Tensor] = {}
    for p in _FAMILY.plains:
        if p.init == "ones":
            w[p.name] = torch.ones(p.shape)
        elif p.init == "zeros_ish" or p.name.endswith(".bias"):
            w[p.name] = torch.zeros(p.shape)
    for lin in _FAMILY.linears:
        w[f"{lin.name}.weight"] = torch.randn(lin.out, lin.inp, generator=g) * 0.02
    emb, head = embedding_and_head(g)
    w["model.embed_tokens.weight"], w["lm_head.weight"] = emb, head
    w[f"{NEXTN}.shared_head.head.weight"] = head.clone()
    proj = torch.zeros_like(w[f"{NEXTN}.eh_proj.weight"])  # cat([embedding, hidden])
    proj[:, : emb.shape[1]] = -torch.eye(emb.shape[1])
    w[f"{NEXTN}.eh_proj.weight"] = proj
    experts = _FAMILY.config["n_routed_experts"]
    for e in range(experts):
        for name, t in gated_identity(_FAMILY.config["moe_intermediate_size"]).items():
            w[f"{NEXTN}.mlp.experts.{e}.{name}.weight"] = t * (0 if break_experts else 1)
    assert sorted(w) == sorted(
        [f"{lin.name}.weight" for lin in _FAMILY.linears] + [p.name for p in _FAMILY.plains]
    )
    return w


def write_glm4_moe(path: Path, *, quant: str | None, break_experts: bool = False) -> Written:
    """The BF16 original (``quant=None``) or its ModelOpt ``nvfp4``/``fp8`` export (layout a:
    attention, dense MLP and shared expert of the target quantized; its routed experts,
    router, ``lm_head`` and the whole NextN layer BF16). ``break_experts`` zeroes the NextN
    layer's routed experts (a control: their contribution is what makes drafts right)."""
    path.mkdir(parents=True, exist_ok=True)
    weights = _weights(break_experts)
    linears = [
        lin.name
        for lin in _FAMILY.linears
        if lin.quantizable and lin.mtp is None and not lin.name.startswith(TARGET_EXPERTS)
    ]
    tensors, quantized = encode(weights, linears, quant, lambda lin: True)
    for name in tensors:
        if name.endswith("e_score_correction_bias"):
            tensors[name] = tensors[name].float()  # F32, as GLM's exports store it
    config = {**_FAMILY.config, "eos_token_id": 266}  # never generated: stops at max_tokens
    save(path, tensors, config, quant, ["lm_head", TARGET_EXPERTS])
    return Written(path, tuple(quantized))
