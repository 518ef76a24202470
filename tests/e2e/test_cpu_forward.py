"""The forward stand-ins (``vllm_draft_quant/demo/cpu_forward.py``) compute what the kernels do.

Paged attention against PyTorch's ``scaled_dot_product_attention`` on contiguous K/V
(causal, sliding window, grouped-query, several requests with prefill and decode
queries, a shuffled block table); the KV-cache write against direct indexing; the
bookkeeping ops against the Triton kernels' documented semantics (``v1/spec_decode/
utils.py``, ``v1/sample/rejection_sampler.py``, ``v1/worker/block_table.py``), written
out here by hand. torch only: no vLLM import, no op is installed on ``torch.ops._C``.
"""

from __future__ import annotations

import math

import pytest
import torch

from vllm_draft_quant.demo import cpu_forward as F

BLOCK = 32


def _paged(
    keys: list[torch.Tensor], values: list[torch.Tensor], kv_heads: int, head: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Write each request's K/V through ``cpu_attn_reshape_and_cache`` into a shuffled
    paged cache, as ``cpu_attn.py`` views it; return (key_cache, value_cache, block_table,
    the whole cache)."""
    per_req = [-(-k.shape[0] // BLOCK) for k in keys]
    n_blocks = sum(per_req) + 2
    order = torch.randperm(n_blocks, generator=torch.Generator().manual_seed(0))
    table = torch.zeros(len(keys), max(per_req), dtype=torch.int32)
    cache = torch.zeros(n_blocks, kv_heads, 2 * BLOCK, head, dtype=torch.float32)
    key_cache, value_cache = cache.chunk(2, dim=2)
    used = 0
    for r, k in enumerate(keys):
        table[r, : per_req[r]] = order[used : used + per_req[r]].int()
        used += per_req[r]
        pos = torch.arange(k.shape[0])
        slots = table[r].long()[pos // BLOCK] * BLOCK + pos % BLOCK
        F.cpu_attn_reshape_and_cache(k, values[r], key_cache, value_cache, slots, "vec")
    return key_cache, value_cache, table, cache


@pytest.mark.parametrize("window", [-1, 5])
@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (4, 2), (8, 1)])
def test_paged_attention_matches_sdpa(window: int, heads: int, kv_heads: int) -> None:
    g = torch.Generator().manual_seed(heads * 10 + kv_heads)
    head = 32
    seq_lens, q_lens = [40, 7, 70], [40, 1, 3]  # a prefill, a decode, a verify step
    keys = [torch.randn(s, kv_heads, head, generator=g) for s in seq_lens]
    values = [torch.randn(s, kv_heads, head, generator=g) for s in seq_lens]
    key_cache, value_cache, table, _ = _paged(keys, values, kv_heads, head)
    queries = [torch.randn(q, heads, head, generator=g) for q in q_lens]
    query = torch.cat(queries)
    output = torch.full_like(query, float("nan"))
    qsl = torch.tensor([0, *torch.tensor(q_lens).cumsum(0).tolist()], dtype=torch.int32)
    scale = head**-0.5
    F.cpu_attention_with_kv_cache(
        query,
        key_cache,
        value_cache,
        output,
        qsl,
        torch.tensor(seq_lens, dtype=torch.int32),
        scale,
        True,
        None,
        window,
        table,
        0.0,
        F.get_scheduler_metadata(),
        None,
    )
    for r, (s, q) in enumerate(zip(seq_lens, q_lens, strict=True)):
        qp = torch.arange(s - q, s).unsqueeze(1)
        kp = torch.arange(s).unsqueeze(0)
        mask = kp <= qp
        if window > 0:
            mask &= (qp - kp) < window
        k = keys[r].repeat_interleave(heads // kv_heads, dim=1).transpose(0, 1)
        v = values[r].repeat_interleave(heads // kv_heads, dim=1).transpose(0, 1)
        want = torch.nn.functional.scaled_dot_product_attention(
            queries[r].transpose(0, 1), k, v, attn_mask=mask, scale=scale
        ).transpose(0, 1)
        got = output[int(qsl[r]) : int(qsl[r + 1])]
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_kv_cache_write_lands_in_its_slot_and_skips_padding() -> None:
    kv_heads, head = 2, 32
    cache = torch.zeros(3, kv_heads, 2 * BLOCK, head)
    key_cache, value_cache = cache.chunk(2, dim=2)
    k, v = torch.randn(3, kv_heads, head), torch.randn(3, kv_heads, head)
    F.cpu_attn_reshape_and_cache(k, v, key_cache, value_cache, torch.tensor([33, -1, 5]), "vec")
    assert torch.equal(cache[1, :, 1], k[0]) and torch.equal(cache[1, :, BLOCK + 1], v[0])
    assert torch.equal(cache[0, :, 5], k[2]) and torch.equal(cache[0, :, BLOCK + 5], v[2])
    assert int((cache != 0).any(-1).sum()) == 2 * 2 * kv_heads  # nothing else written


def test_unsupported_attention_features_raise() -> None:
    q = torch.zeros(1, 2, 32)
    kc = torch.zeros(1, 2, BLOCK, 32)
    args = (q, kc, kc, q.clone(), torch.tensor([0, 1]), torch.tensor([1]), 1.0, True)
    with pytest.raises(NotImplementedError, match="alibi"):
        F.cpu_attention_with_kv_cache(
            *args, torch.ones(2), -1, torch.zeros(1, 1, dtype=torch.int32), 0.0, None, None
        )
    with pytest.raises(NotImplementedError, match="fp8"):
        F.cpu_attn_reshape_and_cache(q, q, kc, kc, torch.tensor([0]), "vec", kv_cache_dtype="fp8")


def test_slot_mapping_and_padding() -> None:
    table = torch.tensor([[4, 2], [7, 0]], dtype=torch.int32)
    qsl = torch.tensor([0, 3, 4], dtype=torch.int32)
    positions = torch.tensor([30, 31, 32, 5])
    slots = torch.full((6,), 99, dtype=torch.int64)
    F.compute_slot_mapping_kernel_impl(qsl, positions, table, slots, BLOCK)
    assert slots.tolist() == [4 * 32 + 30, 4 * 32 + 31, 2 * 32 + 0, 7 * 32 + 5, -1, -1]


def test_greedy_argmax() -> None:
    logits = torch.tensor([[0.1, 3.0, -1.0], [5.0, 0.0, 4.0]])
    assert F.greedy_argmax(logits).tolist() == [1, 0]


def test_rejection_greedy_sample() -> None:
    # request 0: 2 drafts, both right -> both + bonus; request 1: 2 drafts, first wrong;
    # request 2: not greedy -> untouched
    out = torch.full((3, 3), -1, dtype=torch.int64)
    F.rejection_greedy_sample_kernel_impl(
        out,
        torch.tensor([2, 4, 6]),
        torch.tensor([5, 6, 9, 9, 1, 1]),
        torch.tensor([5, 6, 8, 9, 2, 2]),
        torch.tensor([[7], [7], [7]]),
        torch.tensor([True, True, False]),
        2,
    )
    assert out.tolist() == [[5, 6, 7], [8, -1, -1], [-1, -1, -1]]


def test_expand() -> None:
    out = torch.zeros(5, dtype=torch.int64)
    F.expand_kernel_impl(out, torch.tensor([3, 0, 4]), torch.tensor([2, 3, 5]), 0, 9)
    assert out.tolist() == [3, 3, 9, 4, 4]


def test_eagle_prepare_inputs_padded() -> None:
    # two requests with 2 drafts each: 1 accepted (valid 2) and all accepted (valid 3)
    idx, rej = torch.zeros(2, dtype=torch.int32), torch.zeros(2, dtype=torch.int64)
    F.eagle_prepare_inputs_padded_kernel_impl(
        torch.tensor([2, 4]), torch.tensor([2, 3]), torch.tensor([0, 3, 6]), idx, rej, 2
    )
    assert rej.tolist() == [1, 0] and idx.tolist() == [1, 5]


def test_eagle_prepare_next_token_padded() -> None:
    sampled = torch.tensor([[4, 5, -1], [-1, -1, -1], [1, 2, 3]])
    nxt, valid = torch.zeros(3, dtype=torch.int64), torch.zeros(3, dtype=torch.int64)
    F.eagle_prepare_next_token_padded_kernel_impl(
        sampled, torch.tensor([False, False, True]), torch.tensor([7, 8, 9]), nxt, valid, 100, 3, 3
    )
    assert nxt.tolist() == [5, 8, 9] and valid.tolist() == [2, 0, 0]


def test_eagle_step_slot_mapping() -> None:
    positions = torch.tensor([31, 99])
    table = torch.tensor([[3, 6, 0, 0], [1, 2, 5, 8]], dtype=torch.int32)
    seq_lens = torch.tensor([32, 100], dtype=torch.int32)
    clamped = torch.zeros(2, dtype=torch.int64)
    slots = torch.zeros(3, dtype=torch.int64)
    F.eagle_step_slot_mapping_metadata_kernel_impl(
        positions, table, seq_lens, clamped, slots, BLOCK, 100, -1
    )
    assert clamped.tolist() == [32, 0]
    assert slots.tolist() == [6 * 32 + 0, -1, -1]
    assert seq_lens.tolist() == [33, 1]


def test_copy_and_expand_eagle_inputs_shifted() -> None:
    # one request, 4 target tokens at positions 10..13, none rejected, 1 padding slot
    # (k=1 MTP): drafting input = tokens shifted by one + the bonus token
    n = 4
    ids, pos = torch.zeros(n, dtype=torch.int64), torch.zeros(n, dtype=torch.int64)
    rejected, masked = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    new_idx, hidden_map = torch.zeros(1, dtype=torch.int32), torch.zeros(n, dtype=torch.int32)
    F.copy_and_expand_eagle_inputs_kernel_impl(
        torch.tensor([1, 2, 3, 4]),
        torch.tensor([10, 11, 12, 13]),
        torch.tensor([5]),
        ids,
        pos,
        rejected,
        masked,
        new_idx,
        hidden_map,
        torch.tensor([0, 4]),
        torch.tensor([3]),
        0,
        -7,
        n,
        1,
        True,
    )
    assert ids.tolist() == [2, 3, 4, 5]
    assert pos.tolist() == [10, 11, 12, 13]
    assert not rejected.any() and not masked.any()
    assert new_idx.tolist() == [3] and hidden_map.tolist() == [0, 1, 2, 3]


def test_static_scaled_fp8_quant() -> None:
    x = torch.tensor([[0.5, -900.0, 3.0], [1.0, 2.0, -4.0]])
    out = torch.empty(2, 3, dtype=torch.float8_e4m3fn)
    F.static_scaled_fp8_quant(out, x, torch.tensor([2.0]))
    want = (x / 2.0).clamp(-448, 448).to(torch.float8_e4m3fn)
    assert torch.equal(out.view(torch.uint8), want.view(torch.uint8))
    F.static_scaled_fp8_quant(out, x, torch.tensor([[1.0], [0.5]]))
    want = (x / torch.tensor([[1.0], [0.5]])).clamp(-448, 448).to(torch.float8_e4m3fn)
    assert torch.equal(out.view(torch.uint8), want.view(torch.uint8))


def test_silu_and_mul_quant() -> None:
    x = torch.tensor([[1.0, -2.0, 3.0, 0.5], [-1.0, 4.0, 100.0, 9.0]], dtype=torch.bfloat16)
    out = torch.empty(2, 2, dtype=torch.float8_e4m3fn)
    F.silu_and_mul_quant(out, x, torch.tensor([0.5]))
    y = torch.nn.functional.silu(x[:, :2].float()) * x[:, 2:].float()
    want = (y / 0.5).clamp(-448, 448).to(torch.float8_e4m3fn)
    assert torch.equal(out.view(torch.uint8), want.view(torch.uint8))


def _moe_reference(
    x: torch.Tensor,
    w13: torch.Tensor,
    w2: torch.Tensor,
    b13: torch.Tensor | None,
    b2: torch.Tensor | None,
    weights: torch.Tensor,
    ids: torch.Tensor,
    skip_weighted: bool,
) -> torch.Tensor:
    """One token and one routing slot at a time: the gated SiLU MLP of the chosen expert
    (``w13`` = [gate | up]), its hidden activation rounded to the input dtype as the
    kernel stores it, the slots summed with their router weights."""
    out = torch.zeros(x.shape[0], w2.shape[1])
    inter = w13.shape[1] // 2
    for t in range(x.shape[0]):
        for s in range(ids.shape[1]):
            e = int(ids[t, s])
            gate_up = w13[e].float() @ x[t].float() + (0 if b13 is None else b13[e].float())
            h = torch.nn.functional.silu(gate_up[:inter]) * gate_up[inter:]
            y = w2[e].float() @ h.to(x.dtype).float() + (0 if b2 is None else b2[e].float())
            out[t] += y if skip_weighted else float(weights[t, s]) * y
    return out.to(x.dtype)


@pytest.mark.parametrize("skip_weighted", [False, True])
@pytest.mark.parametrize("bias", [False, True])
def test_fused_moe_matches_per_token_experts(skip_weighted: bool, bias: bool) -> None:
    g = torch.Generator().manual_seed(11 + bias + 2 * skip_weighted)
    experts, hidden, inter, tokens, top_k = 6, 64, 48, 7, 2
    x = torch.randn(tokens, hidden, generator=g).to(torch.bfloat16)
    w13 = (torch.randn(experts, 2 * inter, hidden, generator=g) / 8).to(torch.bfloat16)
    w2 = (torch.randn(experts, hidden, inter, generator=g) / 8).to(torch.bfloat16)
    b13 = torch.randn(experts, 2 * inter, generator=g).to(torch.bfloat16) if bias else None
    b2 = torch.randn(experts, hidden, generator=g).to(torch.bfloat16) if bias else None
    scores = torch.randn(tokens, experts, generator=g).softmax(-1)
    weights, ids = scores.topk(top_k, dim=-1)
    ids = ids.to(torch.int32)
    packed13, packed2 = torch.empty_like(w13), torch.empty_like(w2)
    F.prepack_moe_weight(w13, packed13, "vec")
    F.prepack_moe_weight(w2, packed2, "vec")
    out = torch.full((tokens, hidden), float("nan"), dtype=torch.bfloat16)
    F.cpu_fused_moe(out, x, packed13, packed2, b13, b2, weights, ids, skip_weighted, "silu", "vec")
    want = _moe_reference(x, w13, w2, b13, b2, weights, ids, skip_weighted)
    torch.testing.assert_close(out, want, atol=2e-2, rtol=2e-2)
    # the intermediate size zero-padded to the kernel's alignment changes nothing
    pad = 64 - inter
    w13p = torch.cat(
        [w13[:, :inter], torch.zeros(experts, pad, hidden, dtype=w13.dtype),
         w13[:, inter:], torch.zeros(experts, pad, hidden, dtype=w13.dtype)], dim=1,
    )  # fmt: skip
    w2p = torch.cat([w2, torch.zeros(experts, hidden, pad, dtype=w2.dtype)], dim=2)
    b13p = None
    if b13 is not None:
        z = torch.zeros(experts, pad, dtype=b13.dtype)
        b13p = torch.cat([b13[:, :inter], z, b13[:, inter:], z], dim=1)
    padded = torch.empty_like(out)
    F.cpu_fused_moe(padded, x, w13p, w2p, b13p, b2, weights, ids, skip_weighted, "silu", "vec")
    assert torch.equal(padded, out)


def test_fused_moe_refuses_unknown_activations() -> None:
    x = torch.zeros(1, 32)
    w13, w2 = torch.zeros(2, 64, 32), torch.zeros(2, 32, 32)
    ids, weights = torch.zeros(1, 1, dtype=torch.int32), torch.ones(1, 1)
    with pytest.raises(NotImplementedError, match="swigluoai"):
        F.cpu_fused_moe(x.clone(), x, w13, w2, None, None, weights, ids, False, "swigluoai", "vec")


def _nvfp4_experts(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """ModelOpt NVFP4 encoding of ``[E, out, in]`` float expert weights (``agreeing.py``'s
    writer, one ``weight_scale_2`` per expert): (packed, block scales, global scales)."""
    from agreeing import nvfp4_encode

    enc = [nvfp4_encode(w[e], float(w[e].abs().max())) for e in range(w.shape[0])]
    return (torch.stack([t["weight"] for t in enc]),
            torch.stack([t["weight_scale"] for t in enc]),
            torch.stack([t["weight_scale_2"] for t in enc]))  # fmt: skip


@pytest.mark.parametrize("weighted", [True, False])
def test_nvfp4_emulation_moe_matches_per_token_experts(weighted: bool) -> None:
    """F20 against ``_moe_reference`` on the weights ``agreeing.nvfp4_decode`` decodes (an
    independent decoder), with the activations' quantize-dequantize steps applied where
    vLLM's experts apply them (here a rounding to multiples of 1/8, so a step skipped or
    applied twice shows)."""
    from agreeing import nvfp4_decode

    g = torch.Generator().manual_seed(5 + weighted)
    experts, hidden, inter, tokens, top_k = 4, 64, 32, 9, 2
    x = torch.randn(tokens, hidden, generator=g).to(torch.bfloat16)
    w13 = torch.randn(experts, 2 * inter, hidden, generator=g) / 4
    w2 = torch.randn(experts, hidden, inter, generator=g) / 4
    q13, s13, g13 = _nvfp4_experts(w13)
    q2, s2, g2 = _nvfp4_experts(w2)

    def qdq(a: torch.Tensor) -> torch.Tensor:
        return ((a.float() * 8).round() / 8).to(a.dtype)

    scores = torch.randn(tokens, experts, generator=g).softmax(-1)
    weights, ids = scores.topk(top_k, dim=-1)
    out = torch.full((tokens, hidden), float("nan"), dtype=torch.bfloat16)
    F.nvfp4_emulation_moe(out, x, q13, s13, g13, q2, s2, g2, weights, ids.to(torch.int32),
                          "silu", weighted, qdq, qdq)  # fmt: skip

    def decoded(q: torch.Tensor, s: torch.Tensor, gs: torch.Tensor) -> torch.Tensor:
        return torch.stack([nvfp4_decode({"weight": q[e], "weight_scale": s[e],
                                          "weight_scale_2": gs[e]}) for e in range(len(q))])  # fmt: skip

    d13, d2 = decoded(q13, s13, g13).to(torch.bfloat16), decoded(q2, s2, g2).to(torch.bfloat16)
    # the reference's SiLU output is rounded to bf16; the experts then quantize-dequantize it
    want = torch.zeros(tokens, hidden)
    for t in range(tokens):
        for slot in range(top_k):
            e = int(ids[t, slot])
            gate_up = (d13[e].float() @ qdq(x[t]).float()).to(torch.bfloat16).float()
            h = torch.nn.functional.silu(gate_up[:inter]) * gate_up[inter:]
            y = d2[e].float() @ qdq(h.to(torch.bfloat16)).float()
            want[t] += float(weights[t, slot]) * y if weighted else y
    torch.testing.assert_close(out, want.to(torch.bfloat16), atol=3e-2, rtol=2e-2)
    # and the decoded weights are the float ones within NVFP4's precision
    assert (d13.float() - w13).abs().max() <= w13.abs().max() / 6 + 1e-6


def test_nvfp4_dequantize_reads_low_nibble_first_and_every_scale() -> None:
    packed = torch.tensor([[0x71, 0xF9] * 8], dtype=torch.uint8)  # [1, 16]: 32 values
    block = torch.tensor([[2.0, 0.5]]).to(torch.float8_e4m3fn)
    got = F.nvfp4_dequantize(packed, block, torch.tensor(3.0))
    # 0x71: low 1 -> 0.5, high 7 -> 6.0; 0xF9: low 9 -> -0.5, high F -> -6.0
    row = torch.tensor([0.5, 6.0, -0.5, -6.0] * 8)
    want = row * torch.tensor([2.0] * 16 + [0.5] * 16) * 3.0
    assert torch.equal(got, want[None])


@pytest.mark.parametrize("renormalize", [True, False])
@pytest.mark.parametrize("scaling", [1.0, 2.5])
def test_sigmoid_bias_routing_matches_per_token_selection(
    renormalize: bool, scaling: float
) -> None:
    """F21: per token, the experts with the largest ``sigmoid(logit) + bias`` (the bias
    chooses, it does not weigh), weighted by their unbiased sigmoid scores, renormalised,
    times the scaling factor (``fused_topk_bias_router.py:fused_topk_bias``'s PyTorch
    tail), written out one token at a time."""
    g = torch.Generator().manual_seed(20 + renormalize)
    tokens, experts, top_k = 9, 8, 3
    logits = torch.randn(tokens, experts, generator=g)
    bias = torch.randn(experts, generator=g)  # large enough to change the choice
    weights, ids = F.sigmoid_bias_topk(logits, top_k, renormalize, bias, scaling)
    assert weights.dtype == torch.float32 and ids.dtype == torch.int32
    assert weights.is_contiguous() and ids.is_contiguous()
    changed = 0
    for t in range(tokens):
        score = [1 / (1 + math.exp(-float(v))) for v in logits[t]]
        chosen = sorted(range(experts), key=lambda e: -(score[e] + float(bias[e])))[:top_k]
        changed += set(chosen) != set(torch.tensor(score).topk(top_k).indices.tolist())
        w = [score[e] for e in chosen]
        total = sum(w) if renormalize else 1.0
        assert ids[t].tolist() == chosen
        torch.testing.assert_close(weights[t], torch.tensor([x / total * scaling for x in w]))
    assert changed, "the bias never changed a choice: the test would not see it ignored"


def test_mla_decode_matches_sdpa_over_the_latent_cache() -> None:
    """MLA decode: one query per request against its latent rows (keys: the whole row, values:
    its first ``rank`` entries), as PyTorch's SDPA computes it on contiguous rows."""
    g = torch.Generator().manual_seed(5)
    heads, rank, rope, block = 4, 64, 16, 16
    seq_lens = [5, 33, 16]
    latents = [torch.randn(s, rank + rope, generator=g) for s in seq_lens]
    per_req = [-(-s // block) for s in seq_lens]
    order = torch.randperm(sum(per_req) + 1, generator=g)
    cache = torch.zeros(sum(per_req) + 1, block, rank + rope)
    table = torch.zeros(len(seq_lens), max(per_req), dtype=torch.int32)
    used = 0
    for r, lat in enumerate(latents):
        table[r, : per_req[r]] = order[used : used + per_req[r]].int()
        used += per_req[r]
        pos = torch.arange(lat.shape[0])
        cache.view(-1, rank + rope)[table[r].long()[pos // block] * block + pos % block] = lat
    query = torch.randn(len(seq_lens), heads, rank + rope, generator=g)
    out = torch.full((len(seq_lens), heads, rank), float("nan"))
    scale = (rank + rope) ** -0.5
    F.mla_decode_kvcache(out, query, cache, scale, table, torch.tensor(seq_lens))
    for r, lat in enumerate(latents):
        want = torch.nn.functional.scaled_dot_product_attention(
            query[r].unsqueeze(1), lat.expand(heads, -1, -1), lat[:, :rank].expand(heads, -1, -1),
            scale=scale,
        ).squeeze(1)  # fmt: skip
        torch.testing.assert_close(out[r], want, atol=1e-5, rtol=1e-5)


# ------------------------------------------------- Gated-DeltaNet (F15-F19), Qwen3-Next / 3.5
def _naive_gdn(q, k, v, g, beta, state=None, l2norm=True):  # type: ignore[no-untyped-def]
    """The gated delta rule written out per head and token, with the state as [K, V] (the
    transpose of the stand-ins' pool layout): ``S = exp(g) S``; ``u = beta (v - S^T k)``;
    ``S += k u^T``; ``o = S^T q``. ``q``/``k`` [T, H, K], ``v`` [T, Hv, V], ``g``/``beta``
    [T, Hv]; returns (o [T, Hv, V], state [Hv, K, V])."""
    t_len, h, dk = q.shape
    hv, dv = v.shape[1:]
    s = torch.zeros(hv, dk, dv) if state is None else state.clone()
    out = torch.zeros(t_len, hv, dv)
    for t in range(t_len):
        for j in range(hv):
            qi, ki = q[t, j // (hv // h)].float(), k[t, j // (hv // h)].float()
            if l2norm:
                qi, ki = (
                    qi / (qi.square().sum() + 1e-6).sqrt(),
                    ki / (ki.square().sum() + 1e-6).sqrt(),
                )
            s[j] = s[j] * torch.exp(g[t, j])
            u = beta[t, j] * (v[t, j].float() - s[j].T @ ki)
            s[j] = s[j] + torch.outer(ki, u)
            out[t, j] = s[j].T @ (qi * dk**-0.5)
    return out, s


def _gdn_inputs(t_len: int, seed: int, h: int = 2, hv: int = 4, d: int = 32):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(t_len, h, d, generator=g), torch.randn(t_len, h, d, generator=g)
    v = torch.randn(t_len, hv, d, generator=g)
    a, b = torch.randn(t_len, hv, generator=g), torch.randn(t_len, hv, generator=g)
    return q, k, v, a, b


def _gating_params(hv: int = 4):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(11)
    return torch.randn(hv, generator=g), torch.rand(hv, generator=g)  # A_log, dt_bias


def test_gdn_gating() -> None:
    a_log, dt_bias = _gating_params()
    a = torch.tensor([[-3.0, 0.0, 1.0, 25.0]])  # 25 + dt_bias: above softplus' threshold
    b = torch.tensor([[-1.0, 0.0, 2.0, 5.0]]).bfloat16()
    g, beta = F.fused_gdn_gating_cpu(a_log, a, b, dt_bias)
    x = a[0] + dt_bias
    want = -a_log.exp() * torch.where(x > 20, x, torch.log1p(x.exp()))
    assert g.shape == (1, 1, 4) and g.dtype == torch.float32
    torch.testing.assert_close(g[0, 0], want)
    assert beta.dtype == torch.bfloat16
    torch.testing.assert_close(beta[0, 0].float(), torch.sigmoid(b[0].float()), atol=4e-3, rtol=0)


def test_conv1d_update_equals_the_convolution_over_the_sequence() -> None:
    """Token by token through ``causal_conv1d_update_cpu_vec`` (the state a transposed view of
    an SD-layout pool, as ``gdn_attention.py`` passes it; row 1 a padding row) equals the
    depthwise causal convolution of the whole zero-padded sequence, with SiLU."""
    g = torch.Generator().manual_seed(3)
    dim, width, t_len = 8, 4, 6
    x, w, bias = (
        torch.randn(t_len, dim, generator=g),
        torch.randn(dim, width, generator=g),
        torch.randn(dim, generator=g),
    )
    pool = torch.zeros(3, width - 1, dim)  # (slots, state_len, dim)
    states = pool.transpose(1, 2)
    got = []
    for t in range(t_len):
        xt = torch.stack([x[t], torch.ones(dim)])  # row 1: padding (slot 0)
        out = F.causal_conv1d_update_cpu_vec(
            xt, states, w, bias, "silu", torch.tensor([2, 0]), None, 0
        )
        got.append(out[0])
        assert torch.equal(out[1], torch.zeros(dim))
    full = torch.cat([torch.zeros(dim, width - 1), x.T], dim=1)
    want = torch.nn.functional.silu(
        torch.nn.functional.conv1d(full[None], w[:, None], bias, groups=dim)[0]
    ).T
    torch.testing.assert_close(torch.stack(got), want, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(states[2], x[-(width - 1) :].T)
    assert torch.equal(pool[0], torch.zeros(width - 1, dim))


def test_chunk_prefill_then_decode_equals_the_naive_recurrence() -> None:
    """Two sequences prefilled by F17 (one from a non-zero initial state, grouped key heads),
    then each decoded by F18 with raw gates: outputs and states equal the naive loop."""
    a_log, dt_bias = _gating_params()
    lens, dec = [5, 3], 2
    seqs = [_gdn_inputs(n + dec, 20 + i) for i, n in enumerate(lens)]
    pool = torch.zeros(4, 4, 32, 32)  # [slots, Hv, V, K]
    init = torch.randn(4, 32, 32, generator=torch.Generator().manual_seed(9)) * 0.1
    pool[3] = init.transpose(-1, -2)
    slots = torch.tensor([3, 1], dtype=torch.int32)
    cat = [torch.cat([s[i][: lens[j]] for j, s in enumerate(seqs)]) for i in range(5)]
    q, k, v, a, b = (t.bfloat16() for t in cat)
    g, beta = F.fused_gdn_gating_cpu(a_log, a, b, dt_bias)
    cu = torch.tensor([0, 5, 8], dtype=torch.int32)
    out, _ = F.chunk_gated_delta_rule_cpu(
        q[None], k[None], v[None], g, beta, pool, True, cu, False, True, slots
    )
    for j, s in enumerate(seqs):
        sq, sk, sv, sa, sb = (t.bfloat16() for t in s)
        g_all, b_all = F._gating(a_log, sa, sb, dt_bias)
        want, state = _naive_gdn(
            sq, sk, sv, g_all, b_all.bfloat16().float(), init if j == 0 else None
        )
        torch.testing.assert_close(
            out[0, int(cu[j]) : int(cu[j + 1])].float(), want[: lens[j]], atol=2e-2, rtol=2e-2
        )
        for t in range(lens[j], lens[j] + dec):
            o = F.fused_sigmoid_gating_delta_rule_update_cpu(
                a_log, dt_bias, sq[t][None, None], sk[t][None, None], sv[t][None, None],
                sa[t][None], sb[t][None], pool, slots[j : j + 1], torch.tensor([0, 1]), True,
            )  # fmt: skip
            assert o.shape == (1, 1, 4, 32)
            torch.testing.assert_close(o[0, 0].float(), want[t], atol=2e-2, rtol=2e-2)
        # (prefill's beta is BF16, as F16 returns it; decode's FP32: the reference uses BF16)
        torch.testing.assert_close(
            pool[int(slots[j])], state.transpose(-1, -2), atol=5e-3, rtol=1e-2
        )


def test_spec_update_rolls_back_to_the_last_accepted_token() -> None:
    """F19: a verification step of 3 tokens stores the state after each in its own slot; the
    next step (2 accepted) resumes from the state after the 2nd and equals the naive loop
    over the accepted prefix and the new tokens."""
    a_log, dt_bias = _gating_params()
    q, k, v, a, b = (t.bfloat16() for t in _gdn_inputs(6, 31))
    g_all, b_all = F._gating(a_log, a, b, dt_bias)
    pool = torch.zeros(8, 4, 32, 32)
    idx = torch.tensor([[5, 6, 7]], dtype=torch.int32)
    cu = torch.tensor([0, 3], dtype=torch.int32)
    first = F.fused_sigmoid_gating_delta_rule_update_spec_cpu(
        a_log, dt_bias, q[:3], k[:3], v[:3], a[:3], b[:3], pool, idx, torch.tensor([1], dtype=torch.int32), cu, True
    )  # fmt: skip
    want, _ = _naive_gdn(q[:3], k[:3], v[:3], g_all[:3], b_all[:3])
    torch.testing.assert_close(first.float(), want, atol=2e-2, rtol=2e-2)
    for t, slot in enumerate((5, 6, 7)):
        _, st = _naive_gdn(q[: t + 1], k[: t + 1], v[: t + 1], g_all[: t + 1], b_all[: t + 1])
        torch.testing.assert_close(pool[slot], st.transpose(-1, -2), atol=1e-3, rtol=1e-3)
    nxt = F.fused_sigmoid_gating_delta_rule_update_spec_cpu(
        a_log, dt_bias, q[3:], k[3:], v[3:], a[3:], b[3:], pool, idx, torch.tensor([2], dtype=torch.int32), cu, True
    )  # fmt: skip
    keep = [0, 1, 3, 4, 5]  # tokens 0, 1 accepted; token 2 rejected
    want, _ = _naive_gdn(q[keep], k[keep], v[keep], g_all[keep], b_all[keep])
    torch.testing.assert_close(nxt.float(), want[2:], atol=2e-2, rtol=2e-2)


def test_gdn_decode_refuses_several_tokens_per_row() -> None:
    a_log, dt_bias = _gating_params()
    q = torch.zeros(2, 1, 2, 32)
    with pytest.raises(NotImplementedError):
        F.fused_sigmoid_gating_delta_rule_update_cpu(
            a_log, dt_bias, q, q, torch.zeros(2, 1, 4, 32), torch.zeros(1, 4), torch.zeros(1, 4),
            torch.zeros(2, 4, 32, 32), torch.tensor([1]), torch.tensor([0, 2]), True,
        )  # fmt: skip
