"""A tiny Llama target and an EAGLE3 draft that agree by construction (torch).

The target is built like ``agreeing.py``'s MiMo: embeddings dominate the residual stream
and ``lm_head`` maps token ``x`` to ``PERM[x]``. Here ``PERM`` walks one cycle through
``DRAFT_IDS`` (the 128 target ids the draft vocabulary holds, through ``d2t``) and one
through the other 128 ids; each prompt of ``cases.PROMPTS`` ends inside ``DRAFT_IDS`` and
has its other tokens outside it, so greedy decoding stays in the draft vocabulary and
never meets a token of its own context again.

The draft follows vLLM's ``llama_eagle3.py`` (``Eagle3LlamaForCausalLM``): ``fc`` reads the
target's hidden states after the embedding and after each of its two layers
(``eagle_aux_hidden_state_layer_ids`` [0, 1, 2]); its one layer concatenates the
normalised embedding ``e`` of its input token with ``hidden_norm(h)`` (``h``: ``fc``'s
output in the first draft step, the draft's own pre-norm output in the next ones) for
q/k/v, and adds ``h`` back as the residual. The draft must predict ``PERM`` of its input
token, which it sees only through attention:

- q/k read ``e`` only (q four times k), so each position attends to itself (random
  embeddings are nearly orthogonal; the self score is ~23 above the others);
- v = ``-e - 2 hidden_norm(h)`` and ``o_proj`` = I: every ``h`` here has RMS 2 (``fc``
  scales the embedding output, whose RMS is the same for every token, and the layer's
  output is ``2 e``), so the attention output cancels the residual ``h`` exactly and
  ``attention + h = -e``;
- the MLP is ``agreeing.py``'s SiLU-gated identity times -3: ``mlp(norm(-e)) = 3 e``,
  so the layer's output is ``2 e`` (RMS 2 again: the next step's ``h``);
- ``lm_head`` row ``d2t``-index of ``PERM[y]`` points at ``y``'s embedding.

A draft whose MLP is missing or wrong points at ``-e`` or at noise and is rejected; a
draft whose attention is wrong loses the token. Every weight of the attention is 0 or a
power of two (exact in NVFP4 and FP8: ``agreeing.encode``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from agreeing import EMBED_SCALE, encode, gated_identity, save

__all__ = ["DRAFT_IDS", "PERM", "greedy_continuation", "write_eagle3_draft", "write_llama"]

HIDDEN, VOCAB, INTER, HEADS, HEAD_DIM = 128, 256, 256, 4, 32
TARGET_LAYERS, DRAFT_VOCAB = 2, 128
AUX_LAYERS = [0, 1, 2]  # the embedding output, then after each target layer
_GEN = 4321
# cases.PROMPTS: the last tokens start the walks, the others must never come back
_STARTS, _AVOID = (8, 64), (3, 17, 42, 99, 5, 77, 130, 200, 11)
# the draft's attention input (e, hidden_norm(h)) and its output (-e - 2 hidden_norm(h))
_ACT_AMAX = {"qkv": 8.0, "o": 16.0}


def _permutation() -> tuple[list[int], list[int]]:
    g = torch.Generator().manual_seed(_GEN)
    rest = [t for t in range(VOCAB) if t not in _STARTS + _AVOID]
    pick = torch.randperm(len(rest), generator=g).tolist()
    inside = list(_STARTS) + [rest[i] for i in pick[: DRAFT_VOCAB - len(_STARTS)]]
    inside = [inside[i] for i in torch.randperm(DRAFT_VOCAB, generator=g).tolist()]
    outside = [t for t in range(VOCAB) if t not in set(inside)]
    perm = [0] * VOCAB
    for cycle in (inside, outside):
        for i, t in enumerate(cycle):
            perm[t] = cycle[(i + 1) % len(cycle)]
    return perm, sorted(inside)


PERM, DRAFT_IDS = _permutation()


def greedy_continuation(prompt: list[int], n: int) -> list[int]:
    """The tokens greedy decoding of the agreeing Llama target produces after ``prompt``."""
    out, x = [], prompt[-1]
    for _ in range(n):
        x = PERM[x]
        out.append(x)
    return out


@dataclass(frozen=True)
class Written:
    path: Path
    quantized: tuple[str, ...]  # linear names stored quantized


def _embedding() -> tuple[torch.Tensor, torch.Tensor]:
    """(embedding [VOCAB, HIDDEN], its unit-norm body [VOCAB, HIDDEN - 1])."""
    g = torch.Generator().manual_seed(_GEN + 1)
    body = torch.randn(VOCAB, HIDDEN - 1, generator=g)
    body = body / body.norm(dim=1, keepdim=True)
    emb = torch.cat([torch.full((VOCAB, 1), 2.0), body * math.sqrt(HIDDEN - 1)], dim=1)
    return emb * EMBED_SCALE, body


def _config(layers: int, **extra: Any) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": layers,
        "num_attention_heads": HEADS,
        # as many KV heads as heads: the value path carries the whole embedding
        "num_key_value_heads": HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 0,
        "eos_token_id": VOCAB + 10,  # never generated: generation stops at max_tokens
        **extra,
    }


def _linears(weights: dict[str, torch.Tensor]) -> list[str]:
    return [n[: -len(".weight")] for n in weights if n.endswith("_proj.weight")]


def write_llama(path: Path, *, quant: str | None) -> Written:
    """The BF16 target (``quant=None``) or its ModelOpt ``nvfp4``/``fp8`` export (every
    decoder linear quantized, ``lm_head`` excluded)."""
    path.mkdir(parents=True, exist_ok=True)
    emb, body = _embedding()
    g = torch.Generator().manual_seed(_GEN + 2)
    w: dict[str, torch.Tensor] = {"model.embed_tokens.weight": emb}
    for i in range(TARGET_LAYERS):
        p = f"model.layers.{i}"
        for name, shape in (
            ("self_attn.q_proj", (HEADS * HEAD_DIM, HIDDEN)),
            ("self_attn.k_proj", (HEADS * HEAD_DIM, HIDDEN)),
            ("self_attn.v_proj", (HEADS * HEAD_DIM, HIDDEN)),
            ("self_attn.o_proj", (HIDDEN, HEADS * HEAD_DIM)),
            ("mlp.gate_proj", (INTER, HIDDEN)),
            ("mlp.up_proj", (INTER, HIDDEN)),
            ("mlp.down_proj", (HIDDEN, INTER)),
        ):
            w[f"{p}.{name}.weight"] = torch.randn(*shape, generator=g) * 0.02
        w[f"{p}.input_layernorm.weight"] = torch.ones(HIDDEN)
        w[f"{p}.post_attention_layernorm.weight"] = torch.ones(HIDDEN)
    w["model.norm.weight"] = torch.ones(HIDDEN)
    head = torch.zeros(VOCAB, HIDDEN)
    head[torch.tensor(PERM), 1:] = body * 4.0
    w["lm_head.weight"] = head
    tensors, quantized = encode(w, _linears(w), quant, lambda lin: True)
    save(path, tensors, _config(TARGET_LAYERS), quant, ["lm_head"])
    return Written(path, tuple(quantized))


def _draft_weights() -> dict[str, torch.Tensor]:
    emb, body = _embedding()
    m, eye = "midlayer", torch.eye(HIDDEN)
    w: dict[str, torch.Tensor] = {}
    q, k = torch.zeros(HIDDEN, 2 * HIDDEN), torch.zeros(HIDDEN, 2 * HIDDEN)
    q[:, :HIDDEN], k[:, :HIDDEN] = 4.0 * eye, eye  # head h: embedding dims 32h..32h+31
    q[0, 0] = 0.0  # dimension 0 is the same for every token
    w[f"{m}.self_attn.q_proj.weight"], w[f"{m}.self_attn.k_proj.weight"] = q, k
    w[f"{m}.self_attn.v_proj.weight"] = torch.cat([-eye, -2.0 * eye], dim=1)
    w[f"{m}.self_attn.o_proj.weight"] = eye.clone()
    # input n = -e: out ~ 3 e (agreeing.py's MTP MLP)
    for name, t in gated_identity(INTER).items():
        w[f"{m}.mlp.{name}.weight"] = t
    for n in ("input_layernorm", "hidden_norm", "post_attention_layernorm"):
        w[f"{m}.{n}.weight"] = torch.ones(HIDDEN)
    w["norm.weight"] = torch.ones(HIDDEN)
    # fc: 2 x the embedding output over its RMS (the same for every token) -> RMS 2
    fc = torch.zeros(HIDDEN, len(AUX_LAYERS) * HIDDEN)
    fc[:, :HIDDEN] = eye * (2.0 / float(emb[0].pow(2).mean().sqrt()))
    w["fc.weight"] = fc
    inverse = {PERM[y]: y for y in range(VOCAB)}
    head = torch.zeros(DRAFT_VOCAB, HIDDEN)
    for j, target_id in enumerate(DRAFT_IDS):
        head[j, 1:] = body[inverse[target_id]] * 4.0
    w["lm_head.weight"] = head
    return w


def write_eagle3_draft(path: Path, *, quant: str | None, break_mlp: bool = False) -> Written:
    """The EAGLE3 draft (``LlamaForCausalLMEagle3``, the reference export's names): BF16
    (``quant=None``), or its attention ModelOpt ``nvfp4``/``fp8`` with the BF16 MLP, ``fc``
    and ``lm_head`` excluded by checkpoint name (``midlayer.mlp.*``), as
    ``support/eagle3.py``'s ``attn-only`` layout. ``d2t`` maps the draft vocabulary to
    ``DRAFT_IDS``. ``break_mlp`` zeroes ``down_proj`` (a control)."""
    path.mkdir(parents=True, exist_ok=True)
    w = _draft_weights()
    if break_mlp:
        w["midlayer.mlp.down_proj.weight"].zero_()
    linears = _linears(w)
    tensors, quantized = encode(w, linears, quant, lambda lin: ".self_attn." in lin, _ACT_AMAX)
    ids = torch.tensor(DRAFT_IDS, dtype=torch.int64)
    tensors["d2t"] = ids - torch.arange(DRAFT_VOCAB, dtype=torch.int64)
    t2d = torch.zeros(VOCAB, dtype=torch.bool)
    t2d[ids] = True
    tensors["t2d"] = t2d
    exclusions = [lin for lin in linears if lin not in quantized] + ["fc", "lm_head"]
    config = _config(
        1,
        architectures=["LlamaForCausalLMEagle3"],
        draft_vocab_size=DRAFT_VOCAB,
        eagle_aux_hidden_state_layer_ids=AUX_LAYERS,
    )
    save(path, tensors, config, quant, exclusions)
    return Written(path, tuple(quantized))
