"""The shapes a model's config implies for the draft tensors ``graft`` writes.

`graft` compares SOURCE's tensors with TARGET's own tensors of the same in-layer
name, but the tensors it grafts often have no counterpart in TARGET (``eh_proj``,
``shared_head.*``, ``enorm``): those are checked here against TARGET's config
(`check_config_shapes`). Each rule names a tensor suffix and the dimensions the
config fixes (``None``: not fixed by the config); a dimension whose config key is
missing or not a positive integer is not checked. Weights are ``[out, in]``:

======================================================  ==============================
tensor                                                  shape
======================================================  ==============================
``eh_proj``, ``mtp.fc``, MiMo ``input_proj``              [hidden, 2*hidden]
``enorm``, ``hnorm``, layer norms, ``shared_head.norm``   [hidden]
Qwen4Exp ``pre_fc_norm_hidden`` (every stream)          [hidden] or [hc_count*hidden]
``shared_head.head``/``output``, ``embed_tokens``,      [vocab, hidden]
``lm_head``
``self_attn.o_proj``                                    [hidden, *]
``self_attn.q_proj``                                    [heads*head_dim (x1 or x2), hidden]
``self_attn.k_proj``/``v_proj``                         [kv_heads*head_dim, hidden]
``q_a_proj``, ``kv_a_proj_with_mqa``                    [*, hidden]
dense ``mlp.gate_proj``/``up_proj`` / ``down_proj``     [intermediate, hidden] / [hidden, intermediate]
``experts.<e>.gate_proj``/``up_proj`` / ``down_proj``   [moe_intermediate, hidden] / [hidden, moe_intermediate]
``shared_expert(s).gate_proj``/``up_proj`` / ``down_proj``  [*, hidden] / [hidden, *]
router ``mlp.gate``                                     [experts, hidden]
``shared_expert_gate``                                  [1, hidden]
``e_score_correction_bias``                             [experts]
======================================================  ==============================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from vllm_draft_quant.checkpoint.facts import CheckpointFacts
from vllm_draft_quant.errors import CheckpointError
from vllm_draft_quant.repair.shard_io import TensorSource

__all__ = ["check_config_shapes", "expected_shape"]

# one allowed-sizes entry per dimension: None (any) or (allowed sizes, how they are named)
Dim = tuple[frozenset[int], str] | None
_Cfg = Mapping[str, Any]


def _int(cfg: _Cfg, *keys: str) -> int | None:
    for key in keys:
        v = cfg.get(key)
        if isinstance(v, int) and not isinstance(v, bool) and v > 0:
            return v
    return None


def _dim(value: int | None, label: str, *more: tuple[int | None, str]) -> Dim:
    options = [(value, label), *more]
    sizes = frozenset(v for v, _ in options if v is not None)
    if value is None:
        return None
    return sizes, " or ".join(f"{lab}={v}" for v, lab in options if v is not None)


def _head_dim(cfg: _Cfg) -> int | None:
    hd = _int(cfg, "head_dim")
    if hd is None:
        hidden, heads = _int(cfg, "hidden_size"), _int(cfg, "num_attention_heads")
        if hidden and heads and hidden % heads == 0:
            hd = hidden // heads
    return hd


def _mul(*xs: int | None) -> int | None:
    out = 1
    for x in xs:
        if x is None:
            return None
        out *= x
    return out


def _rules(cfg: _Cfg) -> list[tuple[re.Pattern[str], Callable[[], list[Dim]]]]:
    h = _int(cfg, "hidden_size")
    v = _int(cfg, "vocab_size")
    inter = _int(cfg, "intermediate_size")
    moe = _int(cfg, "moe_intermediate_size")
    experts = _int(cfg, "n_routed_experts", "num_experts", "moe_num_experts")
    hd = _head_dim(cfg)
    q = _mul(_int(cfg, "num_attention_heads"), hd)
    kv = _mul(_int(cfg, "num_key_value_heads"), hd)
    hid, hid2 = _dim(h, "hidden_size"), _dim(_mul(h, 2), "2*hidden_size")
    # Qwen4Exp normalizes the target's hyper-connection streams together
    # (qwen4_exp/nvidia/mtp.py:Qwen4ExpMultiTokenPredictor.__init__: pre_fc_norm_hidden)
    hc = _int(cfg, "hc_count")
    hid_hc = _dim(h, "hidden_size", (_mul(hc, h), "hc_count*hidden_size")) if hc else hid
    table: list[tuple[str, Callable[[], list[Dim]]]] = [
        (r"(?:^|\.)(?:eh_proj|mtp\.fc|input_proj)\.weight", lambda: [hid, hid2]),
        (r"(?:^|\.)pre_fc_norm_hidden\.weight", lambda: [hid_hc]),
        (r"(?:^|\.)(?:enorm|hnorm|input_layernorm|post_attention_layernorm|final_layernorm|"
         r"hidden_layernorm|token_layernorm|pre_fc_norm_embedding|norm)"
         r"\.weight", lambda: [hid]),
        (r"(?:^|\.)(?:shared_head\.head|shared_head\.output|embed_tokens|lm_head)\.weight",
         lambda: [_dim(v, "vocab_size"), hid]),
        (r"\.self_attn\.o_proj\.weight", lambda: [hid, None]),
        (r"\.self_attn\.q_proj\.weight",
         lambda: [_dim(q, "num_attention_heads*head_dim", (_mul(q, 2), "2*num_attention_heads"
                                                           "*head_dim (gated)")), hid]),
        (r"\.self_attn\.[kv]_proj\.weight",
         lambda: [_dim(kv, "num_key_value_heads*head_dim"), hid]),
        (r"\.self_attn\.(?:q_a_proj|kv_a_proj_with_mqa)\.weight", lambda: [None, hid]),
        (r"\.experts\.\d+\.(?:gate|up)_proj\.weight",
         lambda: [_dim(moe, "moe_intermediate_size"), hid]),
        (r"\.experts\.\d+\.down_proj\.weight", lambda: [hid, _dim(moe, "moe_intermediate_size")]),
        (r"\.shared_experts?\.(?:gate|up)_proj\.weight", lambda: [None, hid]),
        (r"\.shared_experts?\.down_proj\.weight", lambda: [hid, None]),
        (r"\.mlp\.(?:gate|up)_proj\.weight", lambda: [_dim(inter, "intermediate_size"), hid]),
        (r"\.mlp\.down_proj\.weight", lambda: [hid, _dim(inter, "intermediate_size")]),
        (r"\.mlp\.gate\.weight", lambda: [_dim(experts, "number of experts"), hid]),
        (r"\.shared_expert_gate\.weight", lambda: [_dim(1, "1"), hid]),
        (r"\.e_score_correction_bias", lambda: [_dim(experts, "number of experts")]),
    ]
    return [(re.compile(p + r"\Z"), dims) for p, dims in table]


def expected_shape(cfg: _Cfg, name: str) -> list[Dim] | None:
    """The dimensions ``cfg`` implies for tensor ``name`` (None: no rule for it)."""
    for pat, dims in _rules(cfg):
        if pat.search(name):
            return dims()
    return None


def _show(dims: Sequence[Dim]) -> str:
    return "[" + ", ".join("*" if d is None else d[1] for d in dims) + "]"


def check_config_shapes(ft: CheckpointFacts, tensors: Iterable[TensorSource]) -> None:
    """Refuse a tensor whose shape disagrees with what TARGET's config implies."""
    cfg = ft.text_config
    rules = _rules(cfg)
    for t in tensors:
        dims = next((d() for pat, d in rules if pat.search(t.name)), None)
        if dims is None:
            continue
        shape = tuple(t.shape)
        ok = len(shape) == len(dims) and all(
            d is None or s in d[0] for s, d in zip(shape, dims, strict=True))
        if not ok:
            raise CheckpointError(
                f"{ft.model_dir}: SOURCE tensor {t.name} has shape {list(shape)} but TARGET's "
                f"config.json implies {_show(dims)}; SOURCE must be the unquantized original "
                "of TARGET (same hidden_size, vocab_size, heads and intermediate sizes)")
