"""Tiny families of drafters that have no hand profile (vLLM's mapping is learned).

- ``ernie4_5_moe``: ``Ernie4_5_MoeForCausalLM`` (ERNIE-4.5 MoE), drafted by vLLM's
  ``ErnieMTPModel`` (``ernie_mtp.py``). Its one MTP layer is stored flat, as the public
  checkpoints do: ``model.mtp_block.0.*`` (a Llama decoder layer: q/k/v/o, gate/up/down,
  two norms), ``model.mtp_linear_proj.0`` (a ``torch.nn.Linear``),
  ``model.mtp_emb_norm.0`` and ``model.mtp_hidden_norm.0``; vLLM renames them to
  ``model.layers.{N}.*`` (``ErnieMTP.hf_to_vllm_mapper``), so exclusions written in
  checkpoint names never match the runtime prefixes (FINDINGS "Drafters outside the
  first seven"). The drafter builds its own ``lm_head`` (prefix ``lm_head``) and loads
  the checkpoint's ``lm_head.weight`` into it. Target layers are dense
  (``moe_layer_start_index`` past the last layer).
- ``exaone_moe``: ``ExaoneMoEForCausalLM`` (K-EXAONE), drafted by vLLM's ``ExaoneMoeMTP``
  (``exaone_moe_mtp.py``): ``mtp.layers.{k}`` (attention with q/k norms and a dense gated
  MLP: vLLM builds MTP layers dense, ``is_mtp``), ``mtp.fc`` (a ``ColumnParallelLinear``
  built with the target's quant config, so it can be stored quantized),
  ``mtp.norm``, ``mtp.pre_fc_norm_{hidden,embedding}``; the drafter renames ``mtp.`` to
  ``model.`` and builds its own ``lm_head``. Target layers are dense
  (``first_k_dense_replace`` covers them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from support._families import (
    DENSE_INTER,
    HEAD_DIM,
    HEADS,
    HIDDEN,
    KV_HEADS,
    VOCAB,
    Family,
    Linear,
    Plain,
    _attn_gqa,
    _mlp,
    _norm,
    layer_norms,
    qk_norms,
)

__all__ = ["LEARNED_FAMILIES"]


def ernie4_5_moe(num_mtp: int) -> Family:
    if num_mtp != 1:
        raise ValueError("ERNIE-4.5 ships one MTP layer (vLLM's ErnieMTP maps only `.0.`)")
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    for i in range(n):
        p = f"model.layers.{i}"
        linears += _attn_gqa(p, None, gated_q=False) + _mlp(f"{p}.mlp", DENSE_INTER, None)
        plains += layer_norms(p, None)
    b = "model.mtp_block.0"
    linears += _attn_gqa(b, 0, gated_q=False) + _mlp(f"{b}.mlp", DENSE_INTER, 0)
    linears.append(Linear("model.mtp_linear_proj.0", HIDDEN, 2 * HIDDEN, 0, "eh_proj", False))
    plains += layer_norms(b, 0)
    plains += [_norm("model.mtp_emb_norm.0", HIDDEN, 0), _norm("model.mtp_hidden_norm.0", HIDDEN, 0)]
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["Ernie4_5_MoeForCausalLM"],
        "model_type": "ernie4_5_moe",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "use_bias": False,
        "moe_intermediate_size": DENSE_INTER,
        "moe_num_experts": 4,
        "moe_num_shared_experts": 0,
        "moe_k": 2,
        "moe_layer_start_index": n,
        "num_nextn_predict_layers": num_mtp,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    globs = {(0, "attn"): f"{b}.self_attn*", (0, "mlp"): f"{b}.mlp*"}
    return Family.of("ernie4_5_moe", "Ernie4_5_MoeForCausalLM", num_mtp, config,
                     (linears, plains, [b], globs), "model.mtp*")


def exaone_moe(num_mtp: int) -> Family:
    n = 2
    linears: list[Linear] = []
    plains: list[Plain] = [Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None)]
    layers = [(f"model.layers.{i}", None) for i in range(n)]
    layers += [(f"mtp.layers.{k}", k) for k in range(num_mtp)]
    globs: dict[tuple[int, str], str] = {}
    for p, k in layers:
        linears += _attn_gqa(p, k, gated_q=False) + _mlp(f"{p}.mlp", DENSE_INTER, k)
        plains += layer_norms(p, k) + qk_norms(p, k)
        if k is not None:
            globs[(k, "attn")] = f"{p}.self_attn*"
            globs[(k, "mlp")] = f"{p}.mlp*"
            globs[(k, "head")] = "mtp.fc*"
    linears.append(Linear("mtp.fc", HIDDEN, 2 * HIDDEN, 0, "head"))
    plains += [_norm(f"mtp.{x}", HIDDEN, 0)
               for x in ("norm", "pre_fc_norm_hidden", "pre_fc_norm_embedding")]
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    plains.append(_norm("model.norm", HIDDEN, None))
    config: dict[str, Any] = {
        "architectures": ["ExaoneMoEForCausalLM"],
        "model_type": "exaone_moe",
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "moe_intermediate_size": DENSE_INTER,
        "num_hidden_layers": n,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "sliding_window": 128,
        "layer_types": ["full_attention"] * n,
        "first_k_dense_replace": n,
        "num_experts": 4,
        "num_experts_per_tok": 2,
        "num_shared_experts": 1,
        "num_nextn_predict_layers": num_mtp,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    return Family.of("exaone_moe", "ExaoneMoEForCausalLM", num_mtp, config,
                     (linears, plains, [f"mtp.layers.{k}" for k in range(num_mtp)], globs),
                     "mtp*")


LEARNED_FAMILIES: dict[str, Callable[[int], Family]] = {
    "ernie4_5_moe": ernie4_5_moe,
    "exaone_moe": exaone_moe,
}
