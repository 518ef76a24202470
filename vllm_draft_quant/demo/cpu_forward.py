"""Pure-PyTorch stand-ins for the ``torch.ops._C`` kernels a CPU forward pass needs.

The second half of the CPU stand-ins ledger (the first half, for *building* drafters,
is ``cpu_shims.py``). Test-only: imported by the end-to-end tier (``tests/e2e``), its
engine worker and its test-only ``vllm.general_plugins`` entry point, never by the
plugin (``vllm_draft_quant.adapter``) nor by the demo's worker.

The PyPI wheel of vLLM is built for CUDA: the C++ CPU kernels that vLLM's CPU
platform calls (``csrc/cpu``) are not in it, so ``LLM(...)`` on the CPU platform
stops at the first ``torch.ops._C.<op>`` it touches. Each stand-in below computes
what that kernel computes, in plain PyTorch, slowly (Python loops over requests;
the e2e checkpoints are tiny). ``install()`` sets an op on the ``torch.ops._C``
namespace **only where the op is missing**: on a CPU build of vLLM nothing is
replaced. Stand-ins never change which model, quantization method or weights vLLM
uses, so what a test observes about drafter loading and acceptance is stock vLLM's
(and, with the plugin on, the plugin's).

Each engine must also be built with ``compilation_config={"custom_ops": ["none"]}``
so that norms, activations and rotary embeddings take their native PyTorch paths
(their CPU ``_C`` kernels are missing too) -- see ``ENGINE_ARGS``.

Ledger (``F`` = forward; F20 stands in for a Triton kernel launched from a method; F15-F19 are the Gated-DeltaNet linear attention of
Qwen3-Next / Qwen3.5; F21 is the MoE routing of Step-3.5, a Python method, not an op; F10 runs at load time but only matters for a forward pass; ``tests/integration/test_cpu_forward_upstream.py`` has one
``*_still_needed`` test per entry, ``tests/e2e/test_cpu_forward.py`` checks each
numerically against PyTorch or the Triton kernel's documented semantics)
--------------------------------------------------------------------------------
F1. ``init_cpu_memory_env``: no-op.
    For: ``v1/worker/cpu_worker.py:CPUWorker.__init__`` (binds the process' memory
    to a NUMA node). Nothing to bind for a test.
F2. ``greedy_argmax``: ``logits.argmax(-1)``.
    For: ``v1/sample/sampler.py:Sampler.greedy_sample`` on the CPU platform.
F3. ``compute_slot_mapping_kernel_impl``: token -> KV slot from the block table;
    slots after the last scheduled token get -1 (``PAD_ID``).
    For: ``v1/worker/block_table.py:ComputeSlotMappingKernel.kernel`` (Triton),
    routed to the C++ op by ``utils/cpu_triton_utils.py``.
F4. ``get_scheduler_metadata``: an empty tensor (F6 needs no work plan).
    For: ``_custom_ops.py:cpu_attn_get_scheduler_metadata``.
F5. ``cpu_attn_reshape_and_cache``: writes each token's key/value into its slot of
    the paged cache (``[blocks, kv_heads, block_size, head]`` views that
    ``v1/attention/backends/cpu_attn.py`` cuts from the cache). BF16/FP16/FP32
    caches only (an FP8 KV cache raises).
    For: ``_custom_ops.py:cpu_attn_reshape_and_cache``.
F6. ``cpu_attention_with_kv_cache``: paged attention: per request, the queries are
    the last ``q_len`` of ``seq_len`` positions; keys/values gathered through the
    block table; causal and/or sliding-window mask (a key is visible when
    ``0 <= q_pos - k_pos < window``), grouped-query heads, ``scale``; computed in
    FP32. ALiBi, soft-cap, attention sinks, dynamic causal masks and FP8 caches
    raise ``NotImplementedError`` (no e2e checkpoint uses them).
    For: ``_custom_ops.py:cpu_attention_with_kv_cache``.
F7. ``rejection_greedy_sample_kernel_impl``: greedy verification: per request the
    draft tokens are compared with the target's argmax, the first mismatch writes
    the target's token and stops, all-accepted appends the bonus token.
    For: ``v1/sample/rejection_sampler.py:rejection_greedy_sample_kernel``.
    (The random-sampling kernels stay missing: the e2e tier decodes greedily.)
F8. ``expand_kernel_impl``: repeats each request's value over its draft tokens
    (with ``replace_from -> replace_to``).
    For: ``v1/sample/rejection_sampler.py:expand_kernel``.
F9. ``eagle_prepare_inputs_padded_kernel_impl``,
    ``eagle_prepare_next_token_padded_kernel_impl``,
    ``eagle_step_slot_mapping_metadata_kernel_impl``,
    ``copy_and_expand_eagle_inputs_kernel_impl``: the EAGLE/MTP proposer's input
    bookkeeping.
    For: the Triton kernels of the same names in ``v1/spec_decode/utils.py``.
F10. ``static_scaled_fp8_quant``: ``out = clamp(input / scale)`` cast to FP8 (a
    per-tensor scale, or one per row).
    For: ``_custom_ops.py:scaled_fp8_quant`` with a static scale. On a CPU it is
    reached after loading an FP8 per-tensor checkpoint whose fused shards (q/k/v,
    gate/up) carry their own weight scales, as ModelOpt writes them:
    ``w8a8_utils.py:requantize_with_max_scale`` requantizes every shard to the
    largest scale (``modelopt.py:KFp8StaticTensor.process``). Without it that
    post-load step raises, and a tolerated failure there (``cpu_shims.py`` shim 3)
    also skips the input-scale reduction after it, so the target's first forward
    pass fails (``quant_utils.py``: ``s % t_dim_size == 0``, FINDINGS.md).
F11. ``silu_and_mul_quant``: ``out = FP8(clamp(silu(x[..., :d]) * x[..., d:] / scale))``
    (``d`` half the last dimension; computed in FP32, then F10's quantization).
    For: ``model_executor/layers/fusion/fused_act_quant.py:_silu_and_mul_fp8_static``,
    the SiLU-and-multiply fused with the static FP8 input quantization of the
    ``down_proj`` it feeds, which ``llama.py:LlamaMLP.forward`` calls
    (``maybe_fused_act_quant``) when that projection is FP8 per-tensor (the e2e
    tier's FP8 Llama target of the EAGLE3 case).
F12. ``prepack_moe_weight``: copies the ``[experts, out, in]`` weight unchanged into
    ``output`` (same shape: ``_custom_ops.py:cpu_prepack_moe_weight`` allocates
    ``empty_like(weight)``).
    For: the C++ kernel that repacks BF16 expert weights into the blocked layout its
    grouped GEMM reads, called by ``experts/cpu_moe.py:CPUUnquantizedExperts.
    process_weights_after_loading`` (after ``_pad_moe_intermediate``) for every
    unquantized MoE layer on the CPU platform. The packed layout is private to the
    kernel pair F12/F13 (nothing else reads ``w13_weight``/``w2_weight`` after it), so
    the stand-ins keep the plain layout and are installed together or not at all
    (``install`` refuses a build that has exactly one of them).
F13. ``cpu_fused_moe``: the routed experts of one MoE layer, given the router's
    ``topk_ids``/``topk_weights``: per selected expert ``e`` of token ``t``,
    ``y = act(x_t @ w13[e].T + b13[e])`` rounded to the input dtype, then
    ``y @ w2[e].T + b2[e]``; the ``top_k`` results summed with their weights (or
    unweighted when ``skip_weighted``: the weight was applied to the input), in FP32,
    written to ``out`` in the input dtype. ``act``: ``silu`` (``silu(gate) * up``,
    ``w13`` = ``[gate | up]``), ``gelu``, ``gelu_tanh``; ``swigluoai`` raises
    ``NotImplementedError`` (no e2e checkpoint uses it).
    For: ``_custom_ops.py:cpu_fused_moe``, called by ``experts/cpu_moe.py:
    CPUUnquantizedExperts.apply`` (the routing itself, ``router/cpu_router.py``, is
    plain PyTorch). ``tests/e2e/test_cpu_forward.py`` checks F12 + F13 against a
    per-token, per-slot loop written out there (weighted and ``skip_weighted``, with
    biases, and with the intermediate size zero-padded as ``_pad_moe_intermediate``
    pads it).
    Quantized experts: NVFP4 ones run on F20. ModelOpt FP8 per-tensor experts stay out
    of reach on this CPU: ``oracle/fp8.py:select_fp8_moe_backend`` finds no backend
    (``experts/cpu_moe.py:CPUExpertsFp8`` takes 128x128 blocks only and needs AMX
    tiles, the Triton experts need a GPU) and returns ``NONE``, so post-load processing
    raises ``ValueError: Unsupported FP8 MoE backend: NONE``
    (``oracle/fp8.py:convert_to_fp8_moe_kernel_format``) before any forward pass; a
    stand-in would have to change which experts class vLLM picks. The e2e checkpoints
    keep the target's routed experts BF16 (excluded by name).
F14. ``mla_decode_kvcache``: MLA decode attention over the latent cache: per request
    ``b`` and head ``h``, the single query ``q[b, h]`` (``kv_lora_rank + rope`` wide)
    against the ``seq_lens[b]`` cached latent rows ``c`` (gathered through the block
    table from the ``[blocks, block_size, kv_lora_rank + rope]`` cache), scores
    ``scale * q . c``, softmax, and the weighted sum of the rows' first ``kv_lora_rank``
    values, written to ``out[b, h]`` (computed in FP32).
    For: ``_custom_ops.py:mla_decode_kvcache_cpu``, called by
    ``v1/attention/backends/mla/cpu_mla.py:CPUMLAImpl.forward_mqa`` (the decode half of
    vLLM's CPU MLA backend; its prefill half and its KV-cache write are plain PyTorch).
F15. ``causal_conv1d_update_cpu_vec``: one decode step of the Gated-DeltaNet depthwise
    causal convolution per request: ``x`` ([batch, dim] or [batch, dim, L]) is appended
    to the request's conv state (``conv_state[conv_state_indices[b]]``, [dim, state_len],
    any strides), the last ``L`` outputs of the depthwise ``conv1d`` (``weight`` [dim,
    width], ``bias``) are returned (SiLU when ``activation`` is ``silu``/``swish``) and the
    state keeps the last ``state_len`` columns; a row whose index is ``pad_slot_id`` is
    skipped (output zero). Computed in FP32. A varlen ``query_start_loc`` raises.
    For: ``_custom_ops.py:causal_conv1d_update_cpu_vec``, called by
    ``model_executor/layers/mamba/ops/cpu/causal_conv1d.py:causal_conv1d_update_cpu`` from
    ``ops/cpu/gdn_attention.py`` (Qwen3-Next / Qwen3.5 linear attention) on CPUs without
    AVX-512-BF16/AMX (this machine). Those with it call the packed-weight kernels
    ``causal_conv1d_fwd_cpu``/``causal_conv1d_update_cpu``/``causal_conv1d_weight_pack``
    instead, which are not stood in for (the prefill convolution here is vLLM's own
    PyTorch ``causal_conv1d_fn_cpu``).
F16. ``fused_gdn_gating_cpu``: ``g = -exp(A_log) * softplus(a + dt_bias)`` (FP32) and
    ``beta = sigmoid(b)`` (``b``'s dtype), each ``[1, tokens, heads]``.
    For: ``_custom_ops.py:fused_gdn_gating_cpu`` (the prefill gating of
    ``ops/cpu/gdn_attention.py``).
F17-F19. The gated delta rule, per value head ``h`` (key head ``h // (Hv // H)``), with
    the recurrent state ``S`` [V, K] in FP32, ``q``/``k`` L2-normalised
    (``x / sqrt(sum x^2 + eps)``, when ``use_qk_l2norm_in_kernel``) and ``q`` scaled by
    ``K ** -0.5``: ``S *= exp(g)``; ``v' = beta * (v - S k)``; ``S += v' k^T``;
    ``o = S q`` (the recurrence of vLLM's FLA kernels,
    ``third_party/flash_linear_attention/ops/fused_recurrent.py``), token by token.
    The state pool is ``[slots, Hv, V, K]`` FP32 (vLLM allocates ``(v_dim, k_dim)`` per
    head; the CPU path views it with the last two swapped, equal sizes). The three share
    that layout: installed together or not at all (``PAIRED``).
    F17. ``chunk_gated_delta_rule_cpu``: prefill. ``query``/``key`` [1, T, H, K],
    ``value`` [1, T, Hv, V], ``g``/``beta`` [1, T, Hv] (F16's), per sequence of
    ``cu_seqlens`` from ``initial_state[initial_state_indices[i]]`` (the caller zeroes
    fresh slots), the final state written back in place; returns ``(o [1, T, Hv, V],
    initial_state)``. (The real kernel works in chunks of 64; the recurrence is the same.)
    For: ``_custom_ops.py:chunk_gated_delta_rule_cpu``.
    F18. ``fused_sigmoid_gating_delta_rule_update_cpu``: decode. ``q``/``k``
    [L = 1, batch, H, K], ``v`` [1, batch, Hv, V], ``a``/``b`` [batch, Hv]: F16's gating
    (``softplus_beta``/``softplus_threshold``) fused with one recurrence step from and
    back to slot ``initial_state_indices[b]``; returns [batch, 1, Hv, V]. ``L > 1``
    raises (``a``/``b`` hold one row per sequence).
    For: ``_custom_ops.py:fused_sigmoid_gating_delta_rule_update_cpu``.
    F19. ``fused_sigmoid_gating_delta_rule_update_spec_cpu``: verification of draft
    tokens. ``q``/``k`` [T, H, K], ``v`` [T, Hv, V], ``a``/``b`` [T, Hv]; sequence ``i``
    (tokens ``cu_seqlens[i]:cu_seqlens[i+1]``) resumes from slot
    ``spec_state_indices[i, num_accepted_tokens[i] - 1]`` and stores the state after its
    ``t``-th token in slot ``spec_state_indices[i, t]`` (so the next step can roll back
    to the last accepted token; the ``IS_SPEC_DECODING`` branch of the FLA kernel);
    returns [T, Hv, V].
    For: ``_custom_ops.py:fused_sigmoid_gating_delta_rule_update_spec_cpu``, called by
    ``ops/cpu/gdn_attention.py:_spec_forward`` when a speculative config widens the conv
    state.
    ``tests/e2e/test_cpu_forward.py`` checks F15 against ``F.conv1d`` over the whole
    sequence, F16 against its formula, and F17-F19 against a naive per-token loop written
    out there (prefill then decode continues it; rollback to an accepted draft).
    Which of them the e2e tier's generation reaches (counted on the Qwen3-Next reference,
    k = 1 and 2): F16 and F17 once per prefill, F19 at every decode step; F15 and F18
    (decode steps without draft tokens) not at all: every decode step there carries
    drafts. They stand in for the non-speculative decode of the same file and are checked
    only by the unit tests above.
F20. ``Nvfp4QuantizationEmulationTritonExperts.apply`` (a method, not a ``_C`` op): the
    routed experts of an NVFP4 MoE layer, ``nvfp4_emulation_moe``: the input NVFP4
    quantize-dequantized by vLLM's own ``moe_kernel_quantize_input`` (plain PyTorch on a
    CPU), per selected expert the ``w13`` weights dequantized to the input dtype
    (``nvfp4_dequantize``: E2M1 codes, low nibble first, times the E4M3 block scale of
    16 inputs times the expert's global scale ``g1_alphas[e]``), FP32 accumulation,
    rounded; the gated activation; quantize-dequantized with ``a2_gscale``; ``w2`` the
    same way, times the router weight unless it was applied to the input; the ``top_k``
    results summed.
    For: ``experts/nvfp4_emulation_moe.py:fused_moe_nvfp4_emulation_kernel`` (Triton,
    launched twice by that ``apply`` with ``moe_align_block_size``'s routing, then
    ``moe_sum``). vLLM's CPU platform reaches it through ``cpu_shims.py`` shim 2 (the
    EMULATION backend, the only NVFP4 MoE backend it can construct); on this machine
    vLLM finds no active Triton driver (``triton_utils/importing.py``: ``HAS_TRITON``
    False, ``tl`` a placeholder), so ``apply`` stops at its first line that touches
    Triton (``AttributeError: module 'triton.language' has no attribute 'bfloat16'``).
    Installed only when ``HAS_TRITON`` is False (the method is replaced on the class,
    the original kept as ``__wrapped__``); an expert map (expert parallelism) raises.
    ``tests/e2e/test_cpu_forward.py`` checks it against a per-token, per-slot loop over
    weights decoded by the e2e writer's own NVFP4 decoder; the e2e cases whose NextN
    experts are NVFP4 (``glm-nvfp4-mtpq``, ``deepseek-nvfp4-mtpq``) run it.
F21. ``cpu_router_sigmoid_bias_topk`` (not a ``_C`` op: a method of vLLM's CPU router):
    sigmoid-scored top-k routing with a score-correction bias and no expert groups
    (Step-3.5's ``FusedMoEBlock``: ``moe_router_activation`` sigmoid, ``router_bias``,
    ``norm_expert_weight``): ``scores = sigmoid(logits)`` (FP32), the ``top_k`` experts of
    ``scores + bias``, their weights the *unbiased* scores, renormalised to sum 1 when
    ``renormalize``, times ``routed_scaling_factor``; weights FP32, ids int32.
    For: the CUDA kernel ``_moe_C.topk_sigmoid`` that ``router/fused_topk_bias_router.py:
    fused_topk_bias`` calls on a GPU (the formula is that function's own PyTorch tail).
    On the CPU platform ``router/router_factory.py`` gives every MoE layer a ``CPURouter``,
    whose ``_compute_routing`` knows grouped top-k (GLM, DeepSeek), softmax, custom
    functions and sqrtsoftplus, and asserts ``scoring_func == "softmax"`` for the rest: no
    Step-3.5 MoE layer runs on vLLM's CPU platform. How: ``CPURouter._compute_routing`` is
    wrapped; exactly that case (not grouped, sigmoid, a bias, no custom function) is
    computed here, every other call goes to the original. Installed only when the
    original still refuses that case (``install`` asks it on a 1x4 example).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "BUILD_SHIMS",
    "ENGINE_ARGS",
    "PAIRED",
    "ROUTER_STAND_IN",
    "STAND_INS",
    "install",
    "installed",
    "missing",
    "register",
    "sigmoid_bias_topk",
]

# engine arguments every e2e engine needs on top of the stand-ins
ENGINE_ARGS: dict[str, Any] = {
    "compilation_config": {"custom_ops": ["none"]},
    "enforce_eager": True,
}

PAD_ID = -1
_INSTALLED: list[str] = []
# F20 stands in for a Triton kernel launched from a method, not for a ``torch.ops._C`` op
NVFP4_EXPERTS = "Nvfp4QuantizationEmulationTritonExperts.apply"


# ---------------------------------------------------------------------------- F1, F2
def init_cpu_memory_env(nodes: list[int]) -> None:
    del nodes


def greedy_argmax(logits: Any) -> Any:
    return logits.argmax(dim=-1).view(-1)


# ---------------------------------------------------------------------------- F3
def compute_slot_mapping_kernel_impl(
    query_start_loc: Any, positions: Any, block_table: Any, slot_mapping: Any, block_size: int
) -> None:
    num_reqs = query_start_loc.shape[0] - 1
    num_tokens = int(query_start_loc[-1])
    for r in range(num_reqs):
        start, end = int(query_start_loc[r]), int(query_start_loc[r + 1])
        if end <= start:
            continue
        pos = positions[start:end].long()
        blocks = block_table[r].long()[pos // block_size]
        slot_mapping[start:end] = (blocks * block_size + pos % block_size).to(slot_mapping.dtype)
    slot_mapping[num_tokens:] = PAD_ID


# ---------------------------------------------------------------------------- F4-F6
def get_scheduler_metadata(*args: Any) -> Any:
    import torch

    del args
    return torch.empty(0, dtype=torch.int32)


def _check_cache_dtype(kv_cache_dtype: str) -> None:
    if kv_cache_dtype not in ("auto", "bfloat16", "float16", "float32"):
        raise NotImplementedError(f"cpu_forward: KV cache dtype {kv_cache_dtype!r}")


def cpu_attn_reshape_and_cache(
    key: Any,
    value: Any,
    key_cache: Any,
    value_cache: Any,
    slot_mapping: Any,
    isa: str,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
    kv_cache_dtype: str = "auto",
) -> None:
    del isa, k_scale, v_scale
    _check_cache_dtype(kv_cache_dtype)
    block_size = key_cache.shape[2]
    n = min(key.shape[0], slot_mapping.shape[0])
    slots = slot_mapping[:n].long()
    valid = (slots >= 0).nonzero().flatten()
    if valid.numel() == 0:
        return
    s = slots[valid]
    blocks, offsets = s // block_size, s % block_size
    # key_cache[b, :, o, :] = key[i]  (advanced indexing on dims 0 and 2)
    key_cache[blocks, :, offsets, :] = key[valid].to(key_cache.dtype)
    value_cache[blocks, :, offsets, :] = value[valid].to(value_cache.dtype)


def _gather(cache: Any, block_row: Any, seq_len: int) -> Any:
    """[seq_len, kv_heads, head] of one request from the paged cache."""
    block_size = cache.shape[2]
    import torch

    pos = torch.arange(seq_len)
    blocks = block_row.long()[pos // block_size]
    return cache[blocks, :, pos % block_size, :]


def cpu_attention_with_kv_cache(
    query: Any,
    key_cache: Any,
    value_cache: Any,
    output: Any,
    query_start_loc: Any,
    seq_lens: Any,
    scale: float,
    causal: bool,
    alibi_slopes: Any,
    sliding_window: int,
    block_table: Any,
    softcap: float,
    scheduler_metadata: Any,
    s_aux: Any,
    dynamic_causal: Any = None,
    k_scale: float = 1.0,
    v_scale: float = 1.0,
    kv_cache_dtype: str = "auto",
) -> None:
    import torch

    del scheduler_metadata, k_scale, v_scale
    _check_cache_dtype(kv_cache_dtype)
    unsupported = {
        "alibi_slopes": alibi_slopes is not None,
        "softcap": bool(softcap),
        "s_aux (attention sinks)": s_aux is not None,
        "dynamic_causal": dynamic_causal is not None,
    }
    if any(unsupported.values()):
        names = [k for k, v in unsupported.items() if v]
        raise NotImplementedError(f"cpu_forward paged attention: {names} not supported")
    num_heads, kv_heads = query.shape[1], key_cache.shape[1]
    group = num_heads // kv_heads
    out = output.view(query.shape[0], num_heads, -1)
    for r in range(query_start_loc.shape[0] - 1):
        start, end = int(query_start_loc[r]), int(query_start_loc[r + 1])
        if end <= start:
            continue
        seq_len, q_len = int(seq_lens[r]), end - start
        k = _gather(key_cache, block_table[r], seq_len).float()
        v = _gather(value_cache, block_table[r], seq_len).float()
        k = k.repeat_interleave(group, dim=1)  # [S, H, D]
        v = v.repeat_interleave(group, dim=1)
        q = query[start:end].float()  # [Q, H, D]
        scores = torch.einsum("qhd,khd->hqk", q, k) * scale
        q_pos = torch.arange(seq_len - q_len, seq_len).unsqueeze(1)
        k_pos = torch.arange(seq_len).unsqueeze(0)
        visible = torch.ones(q_len, seq_len, dtype=torch.bool)
        if causal:
            visible &= k_pos <= q_pos
        if sliding_window is not None and sliding_window > 0:
            visible &= (q_pos - k_pos) < sliding_window
        scores = scores.masked_fill(~visible, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        out[start:end] = torch.einsum("hqk,khd->qhd", probs, v).to(out.dtype)


# ---------------------------------------------------------------------------- F7, F8
def rejection_greedy_sample_kernel_impl(
    output_token_ids: Any,
    cu_num_draft_tokens: Any,
    draft_token_ids: Any,
    target_argmax: Any,
    bonus_token_ids: Any,
    is_greedy: Any,
    max_spec_len: int,
) -> None:
    del max_spec_len
    start = 0
    for r in range(cu_num_draft_tokens.shape[0]):
        end = int(cu_num_draft_tokens[r])
        if is_greedy is None or bool(is_greedy[r]):
            rejected = False
            for pos in range(end - start):
                target = int(target_argmax[start + pos])
                output_token_ids[r, pos] = target
                if int(draft_token_ids[start + pos]) != target:
                    rejected = True
                    break
            if not rejected:
                output_token_ids[r, end - start] = int(bonus_token_ids[r].reshape(-1)[0])
        start = end


def expand_kernel_impl(
    output: Any, input_val: Any, cu_num_tokens: Any, replace_from: int, replace_to: int
) -> None:
    start = 0
    for r in range(input_val.shape[0]):
        end = int(cu_num_tokens[r])
        value = input_val[r]
        if value == replace_from:
            value = replace_to
        output[start:end] = value
        start = end


# ---------------------------------------------------------------------------- F9
def eagle_prepare_inputs_padded_kernel_impl(
    cu_num_draft_tokens: Any,
    valid_sampled_tokens_count: Any,
    query_start_loc: Any,
    token_indices_to_sample: Any,
    num_rejected_tokens: Any,
    num_reqs: int,
) -> None:
    prev = 0
    for r in range(num_reqs):
        cu = int(cu_num_draft_tokens[r])
        num_draft = cu - prev
        prev = cu
        rejected = num_draft + 1 - int(valid_sampled_tokens_count[r]) if num_draft > 0 else 0
        token_indices_to_sample[r] = int(query_start_loc[r + 1]) - 1 - rejected
        num_rejected_tokens[r] = rejected


def eagle_prepare_next_token_padded_kernel_impl(
    sampled_token_ids: Any,
    discard_request_mask: Any,
    backup_next_token_ids: Any,
    next_token_ids: Any,
    valid_sampled_tokens_count: Any,
    vocab_size: int,
    num_sampled_tokens_per_req: int,
    num_reqs: int,
) -> None:
    for r in range(num_reqs):
        if bool(discard_request_mask[r]):
            next_token_ids[r] = backup_next_token_ids[r]
            valid_sampled_tokens_count[r] = 0
            continue
        row = [int(t) for t in sampled_token_ids[r, :num_sampled_tokens_per_req]]
        valid = [t for t in row if t != -1 and t < vocab_size]
        next_token_ids[r] = valid[-1] if valid else backup_next_token_ids[r]
        valid_sampled_tokens_count[r] = len(valid)


def eagle_step_slot_mapping_metadata_kernel_impl(
    positions: Any,
    block_table: Any,
    seq_lens: Any,
    out_clamped_positions: Any,
    out_slot_mapping: Any,
    block_size: int,
    max_model_len: int,
    pad_id: int,
) -> None:
    batch = positions.shape[0]
    n_blocks = block_table.shape[1]
    for r in range(batch):
        new_pos = int(positions[r]) + 1
        exceeds = new_pos >= max_model_len
        clamped = 0 if exceeds else new_pos
        block_id = int(block_table[r, min(clamped // block_size, n_blocks - 1)])
        out_clamped_positions[r] = clamped
        out_slot_mapping[r] = pad_id if exceeds else block_id * block_size + clamped % block_size
        seq_lens[r] = min(1 if exceeds else int(seq_lens[r]) + 1, max_model_len)
    out_slot_mapping[batch:] = pad_id


def copy_and_expand_eagle_inputs_kernel_impl(
    target_token_ids: Any,
    target_positions: Any,
    next_token_ids: Any,
    out_input_ids: Any,
    out_positions: Any,
    out_is_rejected_token_mask: Any,
    out_is_masked_token_mask: Any,
    out_new_token_indices: Any,
    out_hidden_state_mapping: Any,
    query_start_loc: Any,
    query_end_loc: Any,
    padding_token_id: int,
    parallel_drafting_token_id: int,
    total_input_tokens: int,
    num_padding_slots_per_request: int,
    shift_input_ids: bool,
) -> None:
    pad = num_padding_slots_per_request
    for r in range(query_end_loc.shape[0]):
        qs, nqs, qe = int(query_start_loc[r]), int(query_start_loc[r + 1]), int(query_end_loc[r])
        if shift_input_ids:
            num_valid, offset, out_start = qe - qs, 1, qs + r * (pad - 1)
        else:
            num_valid, offset, out_start = qe - qs + 1, 0, qs + r * pad
        num_rejected = nqs - qe - 1
        start_pos = int(target_positions[qs])
        bonus = int(next_token_ids[r])
        for j in range(num_valid + pad + num_rejected):
            out = out_start + j
            if j < num_valid:
                token = int(target_token_ids[min(qs + offset + j, total_input_tokens - 1)])
            elif j == num_valid:
                token = bonus
            elif j < num_valid + pad:
                token = parallel_drafting_token_id
            else:
                token = padding_token_id
            rejected = j >= num_valid + pad
            out_input_ids[out] = token
            out_positions[out] = 0 if rejected else start_pos + j
            out_is_rejected_token_mask[out] = rejected
            out_is_masked_token_mask[out] = num_valid < j < num_valid + pad
            if num_valid <= j < num_valid + pad:
                out_new_token_indices[r * pad + j - num_valid] = out
            if shift_input_ids and j < nqs - qs:
                out_hidden_state_mapping[qs + j] = out


# ---------------------------------------------------------------------------- F10
def static_scaled_fp8_quant(output: Any, input: Any, scale: Any, group_shape: Any = None) -> None:
    import torch

    del group_shape
    s = scale.float()
    if s.numel() != 1 and tuple(s.shape) != (input.shape[0], 1):
        raise NotImplementedError(f"cpu_forward: FP8 quant with scale shape {tuple(s.shape)}")
    limit = torch.finfo(output.dtype).max
    output.copy_(
        (input.float() / s.reshape(-1, 1) if s.numel() != 1 else input.float() / s)
        .clamp(-limit, limit)
        .to(output.dtype)
    )


# ---------------------------------------------------------------------------- F11
def silu_and_mul_quant(result: Any, input: Any, scale: Any) -> None:
    import torch

    d = input.shape[-1] // 2
    x = input.float()
    static_scaled_fp8_quant(result, torch.nn.functional.silu(x[..., :d]) * x[..., d:], scale)


# ---------------------------------------------------------------------------- F12, F13
def prepack_moe_weight(weight: Any, output: Any, isa: str) -> None:
    del isa
    output.copy_(weight)


def _moe_act(act: str, gate_up: Any) -> Any:
    import torch

    d = gate_up.shape[-1] // 2
    gate, up = gate_up[..., :d], gate_up[..., d:]
    if act == "silu":
        return torch.nn.functional.silu(gate) * up
    if act in ("gelu", "gelu_tanh"):
        approximate = "tanh" if act == "gelu_tanh" else "none"
        return torch.nn.functional.gelu(gate, approximate=approximate) * up
    raise NotImplementedError(f"cpu_forward: MoE activation {act!r}")


def cpu_fused_moe(
    out: Any,
    input: Any,
    w13: Any,
    w2: Any,
    w13_bias: Any,
    w2_bias: Any,
    topk_weights: Any,
    topk_ids: Any,
    skip_weighted: bool,
    act: str,
    isa: str,
) -> None:
    import torch

    del isa
    x = input.reshape(-1, input.shape[-1])
    ids = topk_ids.reshape(x.shape[0], -1).long()
    weights = topk_weights.reshape(ids.shape).float()
    acc = torch.zeros(x.shape[0], w2.shape[1], dtype=torch.float32)
    for e in ids.unique().tolist():
        tokens, slot = (ids == e).nonzero(as_tuple=True)
        h = torch.nn.functional.linear(
            x[tokens].float(), w13[e].float(), None if w13_bias is None else w13_bias[e].float()
        )
        h = _moe_act(act, h).to(x.dtype).float()
        y = torch.nn.functional.linear(
            h, w2[e].float(), None if w2_bias is None else w2_bias[e].float()
        )
        if not skip_weighted:
            y = y * weights[tokens, slot].unsqueeze(-1)
        acc.index_add_(0, tokens, y)
    out.copy_(acc.reshape(out.shape).to(out.dtype))


# ---------------------------------------------------------------------------- F14
def mla_decode_kvcache(
    out: Any, query: Any, kv_cache: Any, scale: float, block_tables: Any, seq_lens: Any
) -> None:
    import torch

    rank = out.shape[-1]
    block_size = kv_cache.shape[-2]
    flat = kv_cache.reshape(-1, kv_cache.shape[-1])
    for b in range(query.shape[0]):
        pos = torch.arange(int(seq_lens[b]))
        slots = block_tables[b].long()[pos // block_size] * block_size + pos % block_size
        latent = flat[slots].float()  # [S, rank + rope]
        probs = torch.softmax(query[b].float() @ latent.T * scale, dim=-1)  # [H, S]
        out[b] = (probs @ latent[:, :rank]).to(out.dtype)


# ---------------------------------------------------------------------------- F15
def causal_conv1d_update_cpu_vec(
    x: Any,
    conv_state: Any,
    weight: Any,
    bias: Any,
    activation: Any,
    conv_state_indices: Any,
    query_start_loc: Any,
    pad_slot_id: int,
) -> Any:
    import torch

    if query_start_loc is not None:
        raise NotImplementedError("cpu_forward: varlen causal_conv1d_update")
    xs = x.unsqueeze(-1) if x.dim() == 2 else x  # [batch, dim, L]
    dim, length, state_len = xs.shape[1], xs.shape[2], conv_state.shape[-1]
    w = weight.reshape(dim, 1, -1).float()
    b = None if bias is None else bias.float()
    out = torch.zeros(xs.shape, dtype=x.dtype)
    for r in range(xs.shape[0]):
        slot = r if conv_state_indices is None else int(conv_state_indices[r])
        if slot == pad_slot_id:
            continue
        state = conv_state[slot]  # [dim, state_len] view
        full = torch.cat([state.float(), xs[r].float()], dim=-1)
        y = torch.nn.functional.conv1d(full[None], w, b, groups=dim)[0, :, -length:]
        if activation in ("silu", "swish", True):
            y = torch.nn.functional.silu(y)
        out[r] = y.to(out.dtype)
        state.copy_(full[:, -state_len:].to(state.dtype))
    return out.squeeze(-1) if x.dim() == 2 else out


# ---------------------------------------------------------------------------- F16-F19
def _gating(
    A_log: Any, a: Any, b: Any, dt_bias: Any, beta: float = 1.0, threshold: float = 20.0
) -> tuple[Any, Any]:
    import torch

    sp = torch.nn.functional.softplus(a.float() + dt_bias.float(), beta=beta, threshold=threshold)
    return -A_log.float().exp() * sp, torch.sigmoid(b.float())


def fused_gdn_gating_cpu(A_log: Any, a: Any, b: Any, dt_bias: Any) -> tuple[Any, Any]:
    g, beta = _gating(A_log, a, b, dt_bias)
    return g.unsqueeze(0), beta.to(b.dtype).unsqueeze(0)


def _qk(x: Any, hv: int, l2norm: bool, eps: float) -> Any:
    """[..., H, K] -> FP32 [..., Hv, K], L2-normalised if asked (key heads shared by
    ``Hv // H`` value heads)."""
    import torch

    x = x.float()
    if l2norm:
        x = x * torch.rsqrt((x * x).sum(-1, keepdim=True) + eps)
    return x.repeat_interleave(hv // x.shape[-2], dim=-2)


def _delta_rule(state: Any, q: Any, k: Any, v: Any, g: Any, beta: Any) -> tuple[Any, Any]:
    """One token for every value head: ``state`` [Hv, V, K], ``q``/``k`` [Hv, K] (``q``
    already scaled), ``v`` [Hv, V], ``g``/``beta`` [Hv]; returns (new state, o [Hv, V])."""
    import torch

    state = state * g.exp()[:, None, None]
    delta = (v - torch.einsum("hvk,hk->hv", state, k)) * beta[:, None]
    state = state + delta[:, :, None] * k[:, None, :]
    return state, torch.einsum("hvk,hk->hv", state, q)


def chunk_gated_delta_rule_cpu(
    query: Any,
    key: Any,
    value: Any,
    g: Any,
    beta: Any,
    initial_state: Any,
    output_final_state: bool,
    cu_seqlens: Any,
    head_first: bool,
    use_qk_l2norm_in_kernel: bool,
    initial_state_indices: Any,
    eps: float = 1e-5,
) -> tuple[Any, Any]:
    import torch

    if head_first:
        raise NotImplementedError("cpu_forward: head-first chunk_gated_delta_rule")
    hv, dk = value.shape[2], query.shape[-1]
    q = _qk(query[0], hv, use_qk_l2norm_in_kernel, eps) * dk**-0.5
    k = _qk(key[0], hv, use_qk_l2norm_in_kernel, eps)
    v, gs, bs = value[0].float(), g[0].float(), beta[0].float()
    out = torch.zeros(value.shape, dtype=value.dtype)
    for i in range(cu_seqlens.shape[0] - 1):
        start, end = int(cu_seqlens[i]), int(cu_seqlens[i + 1])
        slot = int(initial_state_indices[i])
        state = initial_state[slot].float()
        for t in range(start, end):
            state, o = _delta_rule(state, q[t], k[t], v[t], gs[t], bs[t])
            out[0, t] = o.to(out.dtype)
        if output_final_state:
            initial_state[slot] = state.to(initial_state.dtype)
    return out, initial_state


def fused_sigmoid_gating_delta_rule_update_cpu(
    A_log: Any,
    dt_bias: Any,
    q: Any,
    k: Any,
    v: Any,
    a: Any,
    b: Any,
    initial_state_source: Any,
    initial_state_indices: Any,
    cu_seqlens: Any,
    use_qk_l2norm_in_kernel: bool,
    softplus_beta: float = 1.0,
    softplus_threshold: float = 20.0,
) -> Any:
    import torch

    del cu_seqlens
    if q.shape[0] != 1:
        raise NotImplementedError("cpu_forward: GDN decode with more than one token per row")
    hv, dk = v.shape[2], q.shape[-1]
    g, beta = _gating(A_log, a, b, dt_bias, softplus_beta, softplus_threshold)
    qs = _qk(q[0], hv, use_qk_l2norm_in_kernel, 1e-6) * dk**-0.5
    ks = _qk(k[0], hv, use_qk_l2norm_in_kernel, 1e-6)
    out = torch.zeros(v.shape[1], 1, hv, v.shape[-1], dtype=v.dtype)
    for r in range(v.shape[1]):
        slot = int(initial_state_indices[r])
        state, o = _delta_rule(
            initial_state_source[slot].float(), qs[r], ks[r], v[0, r].float(), g[r], beta[r]
        )
        initial_state_source[slot] = state.to(initial_state_source.dtype)
        out[r, 0] = o.to(out.dtype)
    return out


def fused_sigmoid_gating_delta_rule_update_spec_cpu(
    A_log: Any,
    dt_bias: Any,
    q: Any,
    k: Any,
    v: Any,
    a: Any,
    b: Any,
    initial_state_source: Any,
    spec_state_indices: Any,
    num_accepted_tokens: Any,
    cu_seqlens: Any,
    use_qk_l2norm_in_kernel: bool,
    softplus_beta: float = 1.0,
    softplus_threshold: float = 20.0,
) -> Any:
    import torch

    hv, dk = v.shape[1], q.shape[-1]
    g, beta = _gating(A_log, a, b, dt_bias, softplus_beta, softplus_threshold)
    qs = _qk(q, hv, use_qk_l2norm_in_kernel, 1e-6) * dk**-0.5
    ks = _qk(k, hv, use_qk_l2norm_in_kernel, 1e-6)
    out = torch.zeros(v.shape, dtype=v.dtype)
    for i in range(cu_seqlens.shape[0] - 1):
        start, end = int(cu_seqlens[i]), int(cu_seqlens[i + 1])
        if end <= start:
            continue
        slots = spec_state_indices[i]
        state = initial_state_source[int(slots[int(num_accepted_tokens[i]) - 1])].float()
        for t in range(start, end):
            state, o = _delta_rule(state, qs[t], ks[t], v[t].float(), g[t], beta[t])
            out[t] = o.to(out.dtype)
            initial_state_source[int(slots[t - start])] = state.to(initial_state_source.dtype)
    return out


# ---------------------------------------------------------------------------- F20
_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def nvfp4_dequantize(packed: Any, block_scale: Any, global_scale: Any) -> Any:
    """FP32 ``[..., N, K]`` of NVFP4 weights: ``packed`` uint8 ``[..., N, K // 2]`` (two E2M1
    codes per byte, low nibble first), ``block_scale`` E4M3 ``[..., N, K // 16]`` (linear
    layout), ``global_scale`` one per leading index (``[E]``) or a scalar: each value is
    ``e2m1(code) * block_scale * global_scale``, the formula of
    ``fused_moe_nvfp4_emulation_kernel``."""
    import torch

    codes = (
        torch.stack([packed & 0xF, packed >> 4], dim=-1)
        .reshape(*packed.shape[:-1], packed.shape[-1] * 2)
        .long()
    )
    table = torch.tensor(_E2M1, dtype=torch.float32)
    values = table[codes & 7] * torch.where(codes & 8 > 0, -1.0, 1.0)
    scale = block_scale.view(torch.float8_e4m3fn).float().repeat_interleave(16, dim=-1)
    g = global_scale.float().reshape(-1, *([1] * (packed.dim() - 1)))
    return values * scale * (g if packed.dim() > 2 else g.reshape(()))


def nvfp4_emulation_moe(
    output: Any,
    hidden_states: Any,
    w1: Any,
    w1_scale: Any,
    w1_global: Any,
    w2: Any,
    w2_scale: Any,
    w2_global: Any,
    topk_weights: Any,
    topk_ids: Any,
    activation: str,
    weighted: bool,
    quant_dequant_1: Callable[[Any], Any],
    quant_dequant_2: Callable[[Any], Any],
) -> None:
    """The routed experts of one NVFP4 MoE layer as ``Nvfp4QuantizationEmulationTritonExperts.
    apply`` computes them: the input NVFP4 quantize-dequantized (``quant_dequant_1``), per
    selected expert ``e`` of token ``t`` ``h = x_t @ dq(w1[e]).T`` (weights dequantized to
    the input dtype, FP32 accumulation, rounded to the input dtype), ``act(h)``
    (``_moe_act``), quantize-dequantized (``quant_dequant_2``), ``y = a @ dq(w2[e]).T`` times
    the token's router weight when ``weighted``, rounded; the ``top_k`` results summed into
    ``output``."""
    import torch

    dtype = hidden_states.dtype
    x = quant_dequant_1(hidden_states).float()
    ids = topk_ids.reshape(x.shape[0], -1).long()
    weights = topk_weights.reshape(ids.shape).float()
    acc = torch.zeros(x.shape[0], w2.shape[1], dtype=torch.float32)
    for e in ids.unique().tolist():
        tokens, slot = (ids == e).nonzero(as_tuple=True)
        w13 = nvfp4_dequantize(w1[e], w1_scale[e], w1_global[e]).to(dtype).float()
        h = (x[tokens] @ w13.T).to(dtype).float()
        a = quant_dequant_2(_moe_act(activation, h).to(dtype)).float()
        y = a @ nvfp4_dequantize(w2[e], w2_scale[e], w2_global[e]).to(dtype).float().T
        if weighted:
            y = y * weights[tokens, slot].unsqueeze(-1)
        acc.index_add_(0, tokens, y.to(dtype).float())
    output.copy_(acc.reshape(output.shape).to(output.dtype))


def _nvfp4_emulation_experts_apply(
    self: Any,
    output: Any,
    hidden_states: Any,
    w1: Any,
    w2: Any,
    topk_weights: Any,
    topk_ids: Any,
    activation: Any,
    global_num_experts: int,
    expert_map: Any,
    a1q_scale: Any,
    a2_scale: Any,
    workspace13: Any,
    workspace2: Any,
    expert_tokens_meta: Any,
    apply_router_weight_on_input: bool,
) -> None:
    """F20: ``Nvfp4QuantizationEmulationTritonExperts.apply`` with its two Triton GEMMs
    (and the routing bookkeeping around them) computed by ``nvfp4_emulation_moe``; the
    activation quantize-dequantize is vLLM's own (``moe_kernel_quantize_input``, plain
    PyTorch on a CPU)."""
    from vllm.model_executor.layers.fused_moe.utils import moe_kernel_quantize_input

    del global_num_experts, a1q_scale, a2_scale, workspace13, workspace2, expert_tokens_meta
    if expert_map is not None:
        raise NotImplementedError("cpu_forward: NVFP4 emulation experts with an expert map")
    qc = self.quant_config

    def qdq(scale: Any) -> Callable[[Any], Any]:
        def run(a: Any) -> Any:
            return moe_kernel_quantize_input(
                A=a, A_scale=scale, quant_dtype="nvfp4", per_act_token_quant=False,
                quantization_emulation=True,
            )[0]  # fmt: skip

        return run

    act = getattr(activation, "value", str(activation)).removesuffix("_and_mul")
    nvfp4_emulation_moe(
        output, hidden_states, w1, self.w1_scale_val, qc.g1_alphas, w2, self.w2_scale_val,
        qc.g2_alphas, topk_weights, topk_ids, act, not apply_router_weight_on_input,
        qdq(qc.a1_gscale), qdq(qc.a2_gscale),
    )  # fmt: skip


def _triton_can_launch() -> bool:
    from vllm.triton_utils import HAS_TRITON

    return bool(HAS_TRITON)


def _install_nvfp4_emulation_experts() -> bool:
    """F20's install: only when vLLM found no Triton driver (its ``tl`` is a placeholder)."""
    from vllm.model_executor.layers.fused_moe.experts import nvfp4_emulation_moe as m

    cls = m.Nvfp4QuantizationEmulationTritonExperts
    if _triton_can_launch() or getattr(cls.apply, "__wrapped__", None) is not None:
        return False
    _nvfp4_emulation_experts_apply.__wrapped__ = cls.apply  # type: ignore[attr-defined]
    cls.apply = _nvfp4_emulation_experts_apply  # type: ignore[method-assign]
    return True


STAND_INS: dict[str, Callable[..., Any]] = {
    "init_cpu_memory_env": init_cpu_memory_env,
    "greedy_argmax": greedy_argmax,
    "compute_slot_mapping_kernel_impl": compute_slot_mapping_kernel_impl,
    "get_scheduler_metadata": get_scheduler_metadata,
    "cpu_attn_reshape_and_cache": cpu_attn_reshape_and_cache,
    "cpu_attention_with_kv_cache": cpu_attention_with_kv_cache,
    "rejection_greedy_sample_kernel_impl": rejection_greedy_sample_kernel_impl,
    "expand_kernel_impl": expand_kernel_impl,
    "eagle_prepare_inputs_padded_kernel_impl": eagle_prepare_inputs_padded_kernel_impl,
    "eagle_prepare_next_token_padded_kernel_impl": eagle_prepare_next_token_padded_kernel_impl,
    "eagle_step_slot_mapping_metadata_kernel_impl": eagle_step_slot_mapping_metadata_kernel_impl,
    "copy_and_expand_eagle_inputs_kernel_impl": copy_and_expand_eagle_inputs_kernel_impl,
    "static_scaled_fp8_quant": static_scaled_fp8_quant,
    "silu_and_mul_quant": silu_and_mul_quant,
    "prepack_moe_weight": prepack_moe_weight,
    "cpu_fused_moe": cpu_fused_moe,
    "mla_decode_kvcache": mla_decode_kvcache,
    "causal_conv1d_update_cpu_vec": causal_conv1d_update_cpu_vec,
    "fused_gdn_gating_cpu": fused_gdn_gating_cpu,
    "chunk_gated_delta_rule_cpu": chunk_gated_delta_rule_cpu,
    "fused_sigmoid_gating_delta_rule_update_cpu": fused_sigmoid_gating_delta_rule_update_cpu,
    "fused_sigmoid_gating_delta_rule_update_spec_cpu": (
        fused_sigmoid_gating_delta_rule_update_spec_cpu
    ),
}
# stand-ins that share a private layout (MoE weights; GDN recurrent state): installed
# together or not at all
PAIRED = (
    ("prepack_moe_weight", "cpu_fused_moe"),
    (
        "chunk_gated_delta_rule_cpu",
        "fused_sigmoid_gating_delta_rule_update_cpu",
        "fused_sigmoid_gating_delta_rule_update_spec_cpu",
    ),
)


# ---------------------------------------------------------------------------- F21
ROUTER_STAND_IN = "cpu_router_sigmoid_bias_topk"


def sigmoid_bias_topk(
    router_logits: Any, top_k: int, renormalize: bool, bias: Any, scaling: float
) -> tuple[Any, Any]:
    """F21: sigmoid top-k routing with a score-correction bias, no expert groups."""
    import torch

    scores = router_logits.float().sigmoid()
    ids = torch.topk(scores + bias.float().unsqueeze(0), k=top_k, dim=-1)[1]
    weights = scores.gather(1, ids)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    weights = weights.to(torch.float32)
    if scaling != 1.0:
        weights = weights * scaling
    return weights.contiguous(), ids.to(torch.int32).contiguous()


def _router_refuses_sigmoid_bias(compute: Callable[..., Any]) -> bool:
    """Does ``compute`` (``CPURouter._compute_routing``) refuse ungrouped sigmoid routing
    with a bias? Asked on a 1 x 4 example with a stand-in ``self``."""
    import types

    import torch

    probe = types.SimpleNamespace(
        use_grouped_topk=False, scoring_func="sigmoid", custom_routing_function=None,
        e_score_correction_bias=torch.zeros(4), top_k=2, renormalize=True,
        routed_scaling_factor=1.0, topk_group=None, num_expert_group=None,
        _hash_indices_table=None,
    )  # fmt: skip
    try:
        compute(probe, torch.zeros(1, 8), torch.zeros(1, 4), None)
    except AssertionError:
        return True
    return False


def _install_router_stand_in() -> bool:
    from vllm.model_executor.layers.fused_moe.router.cpu_router import CPURouter

    original = CPURouter._compute_routing
    if getattr(original, "__wrapped__", None) is not None:
        return True
    if not _router_refuses_sigmoid_bias(original):
        return False

    def _compute_routing(
        self: Any, hidden_states: Any, router_logits: Any, indices_type: Any, **kw: Any
    ) -> Any:
        if (
            not self.use_grouped_topk
            and self.scoring_func == "sigmoid"
            and self.custom_routing_function is None
            and self.e_score_correction_bias is not None
        ):
            return sigmoid_bias_topk(
                router_logits, self.top_k, self.renormalize, self.e_score_correction_bias,
                self.routed_scaling_factor,
            )  # fmt: skip
        return original(self, hidden_states, router_logits, indices_type, **kw)

    _compute_routing.__wrapped__ = original  # type: ignore[attr-defined]
    CPURouter._compute_routing = _compute_routing  # type: ignore[method-assign]
    return True


def missing() -> list[str]:
    """The ledger's ops this vLLM build does not have (what ``install`` would set)."""
    import torch

    return [
        name for name in STAND_INS if name not in _INSTALLED and not hasattr(torch.ops._C, name)
    ]


# construction shims of ``cpu_shims.py`` that a quantized target's forward needs too
BUILD_SHIMS = ("nvfp4-linear-cpu", "nvfp4-moe-emulation")


def install(build_shims: tuple[str, ...] = BUILD_SHIMS) -> list[str]:
    """Set every missing ledger op on ``torch.ops._C``, F20 where Triton cannot launch, F21
    where vLLM's CPU router refuses Step-3.5's routing, and apply ``build_shims`` of
    ``cpu_shims.py``; return what was set (idempotent). Also the test-only
    ``vllm.general_plugins`` entry point of ``tests/e2e`` (``register``)."""
    import torch

    from vllm_draft_quant.demo import cpu_shims

    for shim in build_shims:
        if not cpu_shims._APPLIED.get(shim):
            cpu_shims.SHIMS[shim]()
            cpu_shims._APPLIED[shim] = True
    namespace = torch.ops._C
    gaps = missing()
    for pair in PAIRED:
        if 0 < sum(n in gaps for n in pair) < len(pair):
            raise RuntimeError(
                f"cpu_forward: torch.ops._C has only part of {pair}: their stand-ins share "
                "a private layout (weights, recurrent state) and cannot be mixed with the "
                "real kernels"
            )
    for name in gaps:
        setattr(namespace, name, STAND_INS[name])
        _INSTALLED.append(name)
    if _install_nvfp4_emulation_experts():
        _INSTALLED.append(NVFP4_EXPERTS)
    if ROUTER_STAND_IN not in _INSTALLED and _install_router_stand_in():
        _INSTALLED.append(ROUTER_STAND_IN)
    return list(_INSTALLED)


def installed() -> list[str]:
    return list(_INSTALLED)


def register() -> None:
    """Entry point of the e2e tier's test-only ``vllm.general_plugins`` plugin."""
    install()
