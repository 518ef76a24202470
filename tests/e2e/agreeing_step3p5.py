"""Tiny Step-3.5 checkpoints (``Step3p5ForCausalLM``: sliding-window and full attention with
q/k norms, a dense layer and a MoE layer with stacked experts and a shared expert; MTP
drafter ``Step3p5MTP``) whose draft agrees with the target by construction (torch).

The tensors and ``config.json`` are the test factory's ``step3p5`` family
(``tests/support/_families.py``: layer 0 full attention with a dense MLP, layer 1 sliding
attention with a MoE of four stacked experts (``moe.{gate,up,down}_proj`` [E, out, in]), an
FP32 router with ``router_bias`` and ``share_expert``; the MTP layer ``model.layers.2``, a
sliding-attention decoder block with a dense MLP, ``eh_proj``, ``enorm``, ``hnorm`` and its
own head ``shared_head.{norm,output}``); only the values are chosen here. The sliding
window is cut to ``WINDOW`` tokens, shorter than every generated sequence, so the sliding
layers (the target's layer 1 and the MTP layer) attend through the window of the CPU
attention stand-in F6.

What the MTP layer computes (``step3p5_mtp.py:Step3p5AMultiTokenPredictorLayer.forward``):
``eh_proj(cat([enorm(embedding), hnorm(hidden)]))``, then the decoder block
(``step3p5.py:Step3p5DecoderLayer``), then ``shared_head.norm`` and its head
(``shared_head.output`` in the checkpoint). So:

- embeddings dominate the residual stream and ``lm_head`` maps token x to ``PERM[x]``
  (``agreeing.embedding_and_head``); every other target weight is small and random;
- ``eh_proj`` passes the normalised embedding through negated, and the MTP MLP is
  ``agreeing.gated_identity`` (maps ~-u to ~+3u): the layer points at +u only through
  that MLP; its head ``shared_head.output`` is ``lm_head``'s copy. A draft whose MLP is
  missing, zero or garbage points at -u or at noise and is rejected;
- every RMSNorm is ``GemmaRMSNorm`` (``1 + weight``): weights zero.

Quantized exports (``agreeing.encode``: ModelOpt NVFP4 or FP8) quantize the target's
attention and its dense MLP; the MoE layer's routed and shared experts stay BF16, excluded
by name (``cpu_forward.py`` F13's note: quantized experts have no CPU kernel; the shared
expert is excluded with them because the runtime prefix of the experts,
``model.layers.1.moe``, also contains the shared expert's, ``...moe.share_expert``, and
ModelOpt matches exclusions by containment). The MTP layer is BF16 and no exclusion
mentions it (layout a, the graft).
"""

from __future__ import annotations

from pathlib import Path

import torch
from agreeing import Written, embedding_and_head, encode, gated_identity, greedy_continuation, save
from support._families import step3p5
from torch import Tensor

__all__ = ["WINDOW", "greedy_continuation", "write_step3p5"]

_GEN = 4680
WINDOW = 4
MTP = "model.layers.2"
# BF16 and excluded by name: the target's MoE (stacked routed experts, router) and its
# shared expert (checkpoint name; vLLM's runtime prefix is model.layers.1.moe.share_expert)
TARGET_BF16 = ["model.layers.1.moe", "model.layers.1.share_expert"]


def _weights(break_mlp: bool) -> tuple[dict[str, Tensor], list[str], dict]:
    family = step3p5(1)
    config = {**family.config, "eos_token_id": 266, "sliding_window": WINDOW}
    g = torch.Generator().manual_seed(_GEN)
    w: dict[str, Tensor] = {}
    for p in family.plains:
        if p.init == "ones":
            w[p.name] = torch.zeros(p.shape)  # GemmaRMSNorm: (1 + weight) * x
        elif p.init == "zeros_ish":
            w[p.name] = torch.zeros(p.shape)  # router_bias
    for lin in family.linears:
        lead = (lin.stacked_experts,) if lin.stacked_experts else ()
        w[f"{lin.name}.weight"] = torch.randn(*lead, lin.out, lin.inp, generator=g) * 0.02
    emb, head = embedding_and_head(g)
    w["model.embed_tokens.weight"], w["lm_head.weight"] = emb, head
    w[f"{MTP}.shared_head.output.weight"] = head.clone()
    proj = torch.zeros_like(w[f"{MTP}.eh_proj.weight"])  # cat([embedding, hidden])
    proj[:, : emb.shape[1]] = -torch.eye(emb.shape[1])
    w[f"{MTP}.eh_proj.weight"] = proj
    for name, t in gated_identity(config["intermediate_size"]).items():
        w[f"{MTP}.mlp.{name}.weight"] = t * (0 if break_mlp else 1)
    assert sorted(w) == sorted(
        [f"{lin.name}.weight" for lin in family.linears] + [p.name for p in family.plains]
    )
    linears = [
        lin.name
        for lin in family.linears
        if lin.quantizable
        and lin.mtp is None
        and not lin.stacked_experts
        and not any(lin.name.startswith(x) for x in TARGET_BF16)
    ]
    return w, linears, config


def write_step3p5(path: Path, *, quant: str | None, break_mlp: bool = False) -> Written:
    """The Step-3.5 BF16 original (``quant=None``) or its ModelOpt ``nvfp4``/``fp8`` export
    (layout a: the target's attention and dense MLP quantized; its MoE, shared expert,
    ``lm_head`` and the whole MTP layer BF16). ``break_mlp`` zeroes the MTP layer's MLP
    (a control: its contribution is what makes drafts right)."""
    path.mkdir(parents=True, exist_ok=True)
    weights, linears, config = _weights(break_mlp)
    tensors, quantized = encode(weights, linears, quant, lambda lin: True)
    for name in tensors:
        if name.endswith("router_bias"):
            tensors[name] = tensors[name].float()  # F32, as the exports store it
    save(path, tensors, config, quant, ["lm_head", *TARGET_BF16])
    return Written(path, tuple(quantized))
