"""Tiny families of drafters that have no hand profile (vLLM's mapping is learned).

A family here is one `LearnedSpec` row of `SPECS`: the target's ``config.json`` keys,
where its MTP layers sit in the checkpoint, which decoder layer they are, and the
drafter's extras (input projection, norms). `family` turns a row into the factory's
`Family` (two dense target layers, one MTP layer, ``lm_head`` and ``model.norm``).
Adding a drafter class is adding a row (and its cases in
``tests/integration/test_learned_drafters.py``). The rows:

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
- ``exaone4_5``: ``Exaone4_5_ForConditionalGeneration`` (EXAONE-4.5, multimodal: text
  keys under ``text_config``, a tiny ``vision_config``), drafted by vLLM's
  ``Exaone4_5_MTP`` (``exaone4_5_mtp.py``, a subclass of ``ExaoneMoeMTP``): the same
  ``mtp.*`` names and load path, its layers EXAONE-4 decoder layers (post-norms
  ``post_attention_layernorm`` / ``post_feedforward_layernorm``, q/k norms).
- ``glm_ocr``: ``GlmOcrForConditionalGeneration`` (GLM-OCR, multimodal), drafted by
  vLLM's ``GlmOcrMTP`` (``glm_ocr_mtp.py``): a NextN layer stored as
  ``model.language_model.layers.{N}`` (a GLM-4 decoder layer, the DeepSeek/GLM extras
  ``eh_proj`` (a plain ``torch.nn.Linear``), ``enorm``, ``hnorm``,
  ``shared_head.{head,norm}``); the drafter also routes ``lm_head.weight`` into the
  NextN head, as GLM-4.5's does.
- ``longcat_flash``: ``LongcatFlashForCausalLM`` (LongCat-Flash), drafted by vLLM's
  ``LongCatFlashMTP`` (``longcat_flash_mtp.py``): ``model.mtp.layers.0.*`` (a DeepSeek-V2
  decoder layer with latent attention and a dense MLP under ``transformer_layer.mlp``),
  ``eh_proj`` (a ``ReplicatedLinear`` built with the quant config, prefix ``eh_proj``),
  ``enorm.m``/``hnorm.m``, ``model.mtp.norm``; vLLM renames these through a fixed table
  of checkpoint names (``load_weights``). Only the drafter is built: the target layers
  here are placeholders in the MTP layer's shape, not LongCat's dual-attention blocks.
- ``hy_v3``: ``HYV3ForCausalLM`` (Hunyuan-V3), drafted by vLLM's ``HYV3MTP``
  (``hy_v3_mtp.py``): a NextN layer at ``model.layers.{N}`` (dense here:
  ``first_k_dense_replace`` covers it), a plain ``eh_proj``, ``enorm``/``hnorm``,
  ``final_layernorm``. vLLM skips the layer's own ``shared_head`` tensors and feeds its
  head (a ``ParallelLMHead`` built with the quant config and no prefix) from
  ``lm_head.weight``, so none is stored here.
- ``openpangu``: ``PanguUltraMoEForCausalLM`` (openPangu-Ultra-MoE; its config is remote
  code, ``configuration_openpangu.py`` here), drafted by vLLM's ``OpenPanguMTP``
  (``openpangu_mtp.py``): a DeepSeek-style NextN layer at ``model.layers.{N}`` with
  latent attention (vLLM's MTP ``load_weights`` has no q/k/v mapping, so only MLA layers
  load) and a dense MLP (``first_k_dense_replace`` past it), the NextN extras
  (`nextn_extras`); vLLM builds the decoder block under the layer's own prefix.
- ``bailing_v2_5``: ``BailingMoeV2_5ForCausalLM`` (Ring-2.5, ``bailing_hybrid``),
  drafted by vLLM's ``BailingMoeV25MTPModel`` (``bailing_moe_mtp.py``): a NextN layer at
  ``model.layers.{N}`` with latent attention and a MoE block (`bailing_layer`), a plain
  ``eh_proj``, ``enorm``/``hnorm``/``final_layernorm``; its ``shared_head.head`` is fed
  from ``lm_head.weight`` (none stored). Only the drafter is built (the target's linear
  attention layers are placeholders here).
- ``bailing_v3``: ``BailingMoeV3ForCausalLM``, drafted by vLLM's ``BailingMoeV3MTPModel``
  (``bailing_moe_v3_mtp.py``): the names of ``bailing_v2_5``, except that ``eh_proj`` is
  a ``ReplicatedLinear`` built with the quant config (stored quantized in layout g) and
  the attention output projection is ``self_attn.dense``.
- ``mimo_v2``: ``MiMoV2FlashForCausalLM`` (MiMo-V2-Flash; transformers' ``mimo_v2_flash``
  config), drafted by vLLM's ``MiMoV2MTP`` (``mimo_v2_mtp.py``, a hand profile:
  ``profiles/mimo_v2.py``): ``model.mtp.layers.{k}.*`` in checkpoint and runtime names
  (a decoder layer with ``input_layernorm``/``pre_mlp_layernorm``, a plain ``eh_proj``,
  ``enorm``/``hnorm``/``final_layernorm``); vLLM builds the MTP layer's attention from the
  ``swa_*`` keys and its ``o_proj`` with no quant config. Target layers: full attention
  (``hybrid_layer_pattern`` 0), dense MLPs (``moe_layer_freq`` 0), ``v_head_dim`` equal to
  ``head_dim`` (else vLLM picks a CUDA-only DiffKV attention backend).
- ``qwen4_exp``: ``Qwen4ExpForCausalLM`` (Qwen3.8-Flash-Next, text-only), drafted by
  vLLM's ``Qwen4ExpMTP`` (``qwen4_exp/nvidia/mtp.py``, a hand profile:
  ``profiles/qwen4_exp.py``): ``mtp.layers.{k}`` built as ``mtp.layers.{N + k}``, its
  decoder layer Qwen3-Next's gated attention (q/k norms) and sparse MoE with a shared
  expert, wrapped by two hyper-connections (``attn_hyper_connection``,
  ``mlp_hyper_connection``: norm, low-rank down/up and inject projections, built with no
  quant config) instead of layer norms; ``mtp.fc_embedding``/``mtp.fc_hidden``
  (quantizable), ``mtp.pre_fc_norm_*`` and a final ``mtp.hyper_connection_mixer``; the
  drafter's ``lm_head`` is fed ``lm_head.weight``. No QSA (``indexer_n_heads`` unset):
  QSA attention raises "Qwen4Exp QSA requires FlashAttention" on the CPU
  (``qwen4_exp/nvidia/qsa.py:Qwen4ExpQSAFlashAttentionImpl.__init__``). Target layers:
  the same layer (``indexed_attention``, no linear attention, no PLE), ending in the
  model's own ``hyper_connection_mixer``. Only the drafter is built (its quant config is
  the draft checkpoint's own fresh parse, not the target's).
- ``hy_v4``: ``HYV4ForCausalLM`` (Hunyuan-V4; vLLM's own ``hy_v4`` config), drafted by
  vLLM's ``HYV4MTP`` (``hy_v4/nvidia/mtp.py``): ``model.mtp_layers.{k}.*`` renamed to
  ``model.layers.{N + k}`` (decoder block under ``mtp_block``, built with the layer's own
  prefix): gated latent attention (`hy_v4_layer`: ``linear_gate``, a learnable per-head
  sink) and a dense MLP, a plain ``eh_proj``, ``enorm``/``hnorm``/``final_layernorm``;
  its head (``ParallelLMHead`` with the quant config, prefix ``lm_head``) is fed from
  ``lm_head.weight``; vLLM remaps exclusions written as ``model.mtp_layers.{k}.*`` onto
  the draft prefixes (``_remap_mtp_quant_exclusions``). Layers here are full attention
  (``layer_types``; public checkpoints use DeepSeek sparse attention) with dense MLPs,
  and the target has no hyper-connections (``enable_ihc`` false); only the drafter is
  built.
- ``nemotron_h``: ``NemotronHForCausalLM`` (Nemotron-H; a Mamba hybrid: only the drafter
  is built), drafted by vLLM's ``NemotronHMTP`` (``nemotron_h_mtp.py``): ``mtp.layers.{k}``
  renamed to ``model.layers.{k}``, here one attention step (``mtp_hybrid_override_pattern``
  ``*``: ``mixer.{q,k,v,o}_proj``, ``norm``, a quantizable ``eh_proj``, ``enorm``/
  ``hnorm``, ``final_layernorm``); the MoE step of public checkpoints (``*E``) has
  non-gated experts, which vLLM builds only on CUDA, XPU and ROCm.
- ``glm5_next`` (issue 13i): ``Glm5NextForConditionalGeneration`` (GLM-5.3-Flash; model
  type ``glm5_next``: vLLM gives it ``Glm5NextMTPModel``, ``config/speculative.py``),
  drafted by vLLM's ``Glm5NextMTP`` (``glm5next/common/mtp.py``): a NextN layer stored as
  ``model.language_model.layers.{N}`` (the drafter strips ``model.language_model.`` and
  builds it as ``model.layers.{N}``, its decoder block under ``mtp_block`` with the
  layer's own prefix): NoPE latent attention with the kpool DSA indexer (every
  projection built with no quant config, so BF16 in every layout here, as in exports;
  its sparse attention built with the test-only dense attention backend,
  ``demo/cpu_shims.py`` shim 6) and a DeepSeek MoE block; a plain ``eh_proj``,
  ``enorm``/``hnorm``/``shared_head.norm`` (no head: the drafter defers it to the
  target's). Target layers: the same MLA layer (``layer_types`` all
  ``indexed_attention``, no KDA), no hyper-connections (``mhc`` false); the target is
  still a hybrid (KDA) model class, so only the drafter is built.
- ``inkling``: ``InklingForCausalLM`` (Inkling; vLLM's own ``inkling_model`` config with
  ``mtp_config``), drafted by vLLM's ``InklingMTP`` (``inkling/nvidia/mtp.py``):
  ``model.mtp.layers.{k}.*`` (``input_proj``, a quantizable ``ReplicatedLinear``;
  ``hidden_norm``/``embed_norm``; a full Inkling block under ``transformer_block``,
  `inkling_layer`: fused ``qkvr`` attention with relative-position logits, short
  convolutions, a dense MLP) and ``model.mtp.chain_norm``; the drafter's own loader
  (``_load_inkling_mtp_weights``) drops ``.mtp`` and reads nothing else (embedding and
  head are the target's). Target layers ``model.llm.layers.{i}`` are never read by the
  drafter (embedding and head under this module's usual names): only the drafter is
  built.
- ``interns2_mobius`` (`interns2_mobius`, not a `LearnedSpec` row: the
  ``qwen3_5_moe_vl`` family's tensors under Intern-S2-Mobius's remote-code config),
  drafted by vLLM's ``InternS2MobiusMTP``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from support._families import (
    DENSE_INTER,
    EXPERTS,
    HEAD_DIM,
    HEADS,
    HIDDEN,
    KV_HEADS,
    MOE_INTER,
    VOCAB,
    Family,
    Linear,
    Plain,
    _attn_gqa,
    _experts,
    _mlp,
    _norm,
    _qwen_moe,
    dense_then_moe,
    layer_norms,
    qk_norms,
)
from support._families_more import MoreFamily

__all__ = ["LEARNED_FAMILIES", "SPECS", "LearnedSpec", "family"]

Block = tuple[list[Linear], list[Plain]]
N_TARGET = 2  # target decoder layers of every learned family


def llama_layer(p: str, k: int | None) -> Block:
    """q/k/v/o, gate/up/down, input and post-attention norms (Llama, ERNIE)."""
    return (_attn_gqa(p, k, gated_q=False) + _mlp(f"{p}.mlp", DENSE_INTER, k),
            layer_norms(p, k))


def qk_norm_layer(p: str, k: int | None) -> Block:
    """`llama_layer` with q/k norms (EXAONE-MoE, Qwen3)."""
    lin, pl = llama_layer(p, k)
    return lin, pl + qk_norms(p, k)


def exaone4_layer(p: str, k: int | None) -> Block:
    """EXAONE-4's post-norm decoder layer: q/k norms, ``post_attention_layernorm`` and
    ``post_feedforward_layernorm`` (no input norm)."""
    lin = _attn_gqa(p, k, gated_q=False) + _mlp(f"{p}.mlp", DENSE_INTER, k)
    return lin, [_norm(f"{p}.post_attention_layernorm", HIDDEN, k),
                 _norm(f"{p}.post_feedforward_layernorm", HIDDEN, k), *qk_norms(p, k)]


def glm4_layer(p: str, k: int | None) -> Block:
    """GLM-4's decoder layer: `llama_layer` plus ``post_self_attn_layernorm`` and
    ``post_mlp_layernorm`` (GLM-OCR's text model)."""
    lin, pl = llama_layer(p, k)
    return lin, [*pl, _norm(f"{p}.post_self_attn_layernorm", HIDDEN, k),
                 _norm(f"{p}.post_mlp_layernorm", HIDDEN, k)]


MLA_Q_RANK, MLA_KV_RANK, MLA_NOPE, MLA_ROPE, MLA_V = 64, 64, 32, 32, 32


def mla_mlp_layer(mlp: str) -> Callable[[str, int | None], Block]:
    """DeepSeek-V2's decoder layer with multi-head latent attention (q/kv LoRA
    projections and their norms) and a dense gated MLP under ``{prefix}.{mlp}``."""
    def layer(p: str, k: int | None) -> Block:
        g = "attn" if k is not None else "target"
        a = f"{p}.self_attn"
        lin = [
            Linear(f"{a}.q_a_proj", MLA_Q_RANK, HIDDEN, k, g),  # type: ignore[arg-type]
            Linear(f"{a}.q_b_proj", HEADS * (MLA_NOPE + MLA_ROPE), MLA_Q_RANK, k, g),  # type: ignore[arg-type]
            Linear(f"{a}.kv_a_proj_with_mqa", MLA_KV_RANK + MLA_ROPE, HIDDEN, k, g),  # type: ignore[arg-type]
            Linear(f"{a}.kv_b_proj", HEADS * (MLA_NOPE + MLA_V), MLA_KV_RANK, k, g),  # type: ignore[arg-type]
            Linear(f"{a}.o_proj", HIDDEN, HEADS * MLA_V, k, g),  # type: ignore[arg-type]
            *_mlp(f"{p}.{mlp}", DENSE_INTER, k),
        ]
        return lin, [*layer_norms(p, k), _norm(f"{a}.q_a_layernorm", MLA_Q_RANK, k),
                     _norm(f"{a}.kv_a_layernorm", MLA_KV_RANK, k)]
    return layer


def bailing_layer(p: str, k: int | None) -> Block:
    """Ring-2.5's MTP layer (``bailing_moe_linear.py``): the MLA attention of
    `mla_mlp_layer` and a MoE block (routed ``experts``, ``shared_experts``, a ``gate``)."""
    lin, pl = mla_mlp_layer("mlp")(p, k)
    lin = [x for x in lin if ".mlp." not in x.name]
    lin += _experts(f"{p}.mlp", k) + _mlp(f"{p}.mlp.shared_experts", MOE_INTER, k)
    lin.append(Linear(f"{p}.mlp.gate", EXPERTS, HIDDEN, k, "router", False))  # type: ignore[arg-type]
    return lin, pl


def bailing_v3_layer(p: str, k: int | None) -> Block:
    """`bailing_layer` with Ling-V3's attention output projection ``self_attn.dense``
    (``bailing_moe_v3.py``; its MTP ``load_weights`` maps no ``o_proj``)."""
    lin, pl = bailing_layer(p, k)
    return [replace(x, name=x.name.replace(".self_attn.o_proj", ".self_attn.dense"))
            for x in lin], pl


def mimo_v2_layer(p: str, k: int | None) -> Block:
    """MiMo-V2's decoder layer: `llama_layer`; its MTP layer names the second norm
    ``pre_mlp_layernorm`` (``mimo_v2_mtp.py:MiMoV2MTPLayer``)."""
    lin, pl = llama_layer(p, k)
    if k is None:
        return lin, pl
    return lin, [_norm(f"{p}.input_layernorm", HIDDEN, k),
                 _norm(f"{p}.pre_mlp_layernorm", HIDDEN, k)]


#: Qwen4Exp's hyper-connection streams and low rank (``hc_lowrank + hc_count`` a multiple
#: of 16: vLLM pads the merged down+inject projection to one otherwise)
HC_COUNT, HC_LOWRANK = 2, 14


def _hyper_connection(p: str, k: int | None, *, combine: bool = True) -> Block:
    """A Qwen4Exp ``GatedResidual`` (``qwen4_exp/nvidia/hyperconnection.py``): the norm
    ``hc_norm`` over every stream, the low-rank ``input_mix_weight_down``/``_up`` and
    (``combine``) ``block_inject_weight``, all built with no quant config."""
    hh = HC_COUNT * HIDDEN
    lin = [Linear(f"{p}.input_mix_weight_down", HC_LOWRANK, hh, k, "router", False),  # type: ignore[arg-type]
           Linear(f"{p}.input_mix_weight_up", hh, HC_LOWRANK, k, "router", False)]  # type: ignore[arg-type]
    if combine:
        lin.append(Linear(f"{p}.block_inject_weight", HC_COUNT, hh, k, "router", False))  # type: ignore[arg-type]
    return lin, [_norm(f"{p}.hc_norm", hh, k)]


def qwen4_exp_layer(p: str, k: int | None) -> Block:
    """Qwen4Exp's decoder layer without QSA (``qwen4_exp/nvidia/model.py:
    Qwen4ExpDecoderLayer``, ``indexer_n_heads`` unset): Qwen3-Next's gated attention
    with q/k norms, its sparse MoE with a shared expert, and a hyper-connection before
    each (``attn_hyper_connection``, ``mlp_hyper_connection``) in place of the norms."""
    lin = _attn_gqa(p, k, gated_q=True) + _qwen_moe(p, k)
    pl = qk_norms(p, k)
    for hc in ("attn_hyper_connection", "mlp_hyper_connection"):
        hl, hp = _hyper_connection(f"{p}.{hc}", k)
        lin, pl = lin + hl, pl + hp
    return lin, pl


def qwen4_exp_extras(p: str, k: int) -> Block:
    """Qwen4Exp's MTP globals (``qwen4_exp/nvidia/mtp.py:Qwen4ExpMultiTokenPredictor``):
    ``fc_embedding`` and ``fc_hidden`` (quantizable), their pre-norms (the hidden one over
    every stream) and the final ``hyper_connection_mixer`` (no ``block_inject_weight``)."""
    lin = [Linear(f"mtp.{n}", HIDDEN, HIDDEN, k, "head") for n in ("fc_embedding", "fc_hidden")]
    mixer_lin, mixer_pl = _hyper_connection("mtp.hyper_connection_mixer", k, combine=False)
    return lin + mixer_lin, [_norm("mtp.pre_fc_norm_embedding", HIDDEN, k),
                             _norm("mtp.pre_fc_norm_hidden", HC_COUNT * HIDDEN, k), *mixer_pl]


def hy_v4_layer(p: str, k: int | None) -> Block:
    """HY-V4's decoder layer (``hy_v4/nvidia/attention.py:HYV4MLAAttention``): the latent
    attention and dense MLP of `mla_mlp_layer`, an output gate ``self_attn.linear_gate``
    (``gating_type`` elementwise: heads x v_head_dim) and a per-head attention sink
    ``self_attn.learnable_sink_param`` (BF16 where no sink backend exists, as on CPU)."""
    lin, pl = mla_mlp_layer("mlp")(p, k)
    g = "attn" if k is not None else "target"
    lin.append(Linear(f"{p}.self_attn.linear_gate", HEADS * MLA_V, HIDDEN, k, g))  # type: ignore[arg-type]
    return lin, [*pl, Plain(f"{p}.self_attn.learnable_sink_param", (HEADS,), k)]


# ---- issue 13i: Glm5NextMTP ----
#: GLM-5-Next's DSA indexer: heads, head dim (128: the indexer's forward asserts it),
#: top-k and the key-pool size (``index_topk`` a multiple of ``index_kpool`` > 1)
G5N_INDEX_HEADS, G5N_INDEX_DIM, G5N_TOPK, G5N_KPOOL = 4, 128, 64, 16


def glm5_next_layer(p: str, k: int | None) -> Block:
    """GLM-5-Next's (GLM-5.3-Flash) MLA decoder layer (``glm5next/common/model.py:
    Glm5NextDecoderLayer``): NoPE latent attention (``qk_rope_head_dim`` 0) with the
    kpool DSA indexer, every projection of which vLLM builds with no quant config
    (``quant_config=None``: "MLA projections are BF16 in checkpoint"), so the tiny
    checkpoint keeps them BF16 in every layout, as exports do; the indexer's own
    parameters ``index_kpool_compress_{ape,gate}``; and a DeepSeek MoE block (routed
    experts, one shared expert, a router with ``e_score_correction_bias``)."""
    a, ix = f"{p}.self_attn", f"{p}.self_attn.indexer"
    lin = [Linear(f"{a}.{n}", o, i, k, "router", False) for n, o, i in (
        ("q_a_proj", MLA_Q_RANK, HIDDEN), ("q_b_proj", HEADS * MLA_NOPE, MLA_Q_RANK),
        ("kv_a_proj_with_mqa", MLA_KV_RANK, HIDDEN),
        ("kv_b_proj", HEADS * (MLA_NOPE + MLA_V), MLA_KV_RANK), ("o_proj", HIDDEN, HEADS * MLA_V),
        ("indexer.wq_b", G5N_INDEX_HEADS * G5N_INDEX_DIM, MLA_Q_RANK),
        ("indexer.wk", G5N_INDEX_DIM, HIDDEN), ("indexer.weights_proj", G5N_INDEX_HEADS, HIDDEN))]
    mlp, mlp_plains = dense_then_moe(1, p, k)
    return lin + mlp, [
        *layer_norms(p, k), _norm(f"{a}.q_a_layernorm", MLA_Q_RANK, k),
        _norm(f"{a}.kv_a_layernorm", MLA_KV_RANK, k),
        Plain(f"{ix}.k_norm.weight", (G5N_INDEX_DIM,), k, init="ones"),
        Plain(f"{ix}.k_norm.bias", (G5N_INDEX_DIM,), k, init="zeros_ish"),
        Plain(f"{ix}.index_kpool_compress_ape", (G5N_KPOOL, G5N_INDEX_DIM), k, "F32"),
        Plain(f"{ix}.index_kpool_compress_gate", (G5N_INDEX_DIM, HIDDEN), k),
        *mlp_plains]


# ---- issue 13m: Glm5NextMTP with its MTP attention stored quantized ----
def glm5_next_qattn_layer(p: str, k: int | None) -> Block:
    """`glm5_next_layer` with the MTP layer's MLA projections quantizable (group ``attn``):
    a checkpoint storing them quantized, though vLLM builds them with no quant config."""
    lin, plains = glm5_next_layer(p, k)
    mla = (".q_a_proj", ".q_b_proj", ".kv_a_proj_with_mqa", ".kv_b_proj", ".o_proj")
    return [replace(x, group="attn", quantizable=True)
            if k is not None and x.name.endswith(mla) else x for x in lin], plains


def nemotron_h_layer(p: str, k: int | None) -> Block:
    """Nemotron-H's attention MTP layer (pattern ``*``): ``mixer.{q,k,v,o}_proj`` and
    ``norm``. (Public checkpoints add a MoE layer, ``*E``, whose non-gated experts vLLM
    cannot build on CPU.) Target layers: `llama_layer` placeholders."""
    if k is None:
        return llama_layer(p, k)
    return ([replace(x, name=x.name.replace(".self_attn.", ".mixer."))
             for x in _attn_gqa(p, k, gated_q=False)], [_norm(f"{p}.norm", HIDDEN, k)])


# ---- issue 13j: InklingMTP ----
#: Inkling's relative-position width, its extent (and sliding window), short-conv taps
INK_D_REL, INK_REL_EXTENT, INK_SCONV = 16, 64, 4


def inkling_layer(p: str, k: int | None) -> Block:
    """Inkling's decoder layer (``inkling/nvidia/model.py:InklingDecoderLayer``), under
    ``transformer_block`` in an MTP depth: the attention projections ``attn.wq_du``,
    ``wk_dv``, ``wv_dv``, ``wr_du`` (vLLM fuses them into ``attn.qkvr``) and ``attn.wo_ud``,
    q/k norms, the relative-position logits ``attn.rel_logits_proj.proj``, short
    convolutions on K/V (``attn.{k,v}_sconv``) and on both residual streams
    (``attn_sconv``, ``mlp_sconv``), ``attn_norm``/``mlp_norm``, and a dense MLP with one
    fused interleaved gate/up ``mlp.w13_dn`` and ``mlp.w2_md``."""
    if k is not None:
        p = f"{p}.transformer_block"
    g: Any = "attn" if k is not None else "target"
    m: Any = "mlp" if k is not None else "target"
    a = f"{p}.attn"
    lin = [Linear(f"{a}.wq_du", HEADS * HEAD_DIM, HIDDEN, k, g),
           Linear(f"{a}.wk_dv", KV_HEADS * HEAD_DIM, HIDDEN, k, g),
           Linear(f"{a}.wv_dv", KV_HEADS * HEAD_DIM, HIDDEN, k, g),
           Linear(f"{a}.wr_du", HEADS * INK_D_REL, HIDDEN, k, g),
           Linear(f"{a}.wo_ud", HIDDEN, HEADS * HEAD_DIM, k, g),
           Linear(f"{p}.mlp.w13_dn", 2 * DENSE_INTER, HIDDEN, k, m),
           Linear(f"{p}.mlp.w2_md", HIDDEN, DENSE_INTER, k, m)]
    kv = KV_HEADS * HEAD_DIM
    return lin, [_norm(f"{p}.attn_norm", HIDDEN, k), _norm(f"{p}.mlp_norm", HIDDEN, k),
                 _norm(f"{a}.q_norm", HEAD_DIM, k), _norm(f"{a}.k_norm", HEAD_DIM, k),
                 Plain(f"{a}.rel_logits_proj.proj", (INK_D_REL, INK_REL_EXTENT), k),
                 Plain(f"{a}.k_sconv.weight", (kv, 1, INK_SCONV), k),
                 Plain(f"{a}.v_sconv.weight", (kv, 1, INK_SCONV), k),
                 Plain(f"{p}.attn_sconv.weight", (HIDDEN, 1, INK_SCONV), k),
                 Plain(f"{p}.mlp_sconv.weight", (HIDDEN, 1, INK_SCONV), k)]


def fc_extras(proj: str, norms: tuple[str, ...], *, group: str = "head",
              quantizable: bool = True) -> Callable[[str, int], Block]:
    """An MTP layer's input projection ``proj`` [hidden, 2 * hidden] and its norms
    (``{k}`` in a name: the MTP layer's index, ``{p}``: its prefix)."""
    def extras(p: str, k: int) -> Block:
        lin = Linear(proj.format(k=k, p=p), HIDDEN, 2 * HIDDEN, k, group,  # type: ignore[arg-type]
                     quantizable)
        return [lin], [_norm(n.format(k=k, p=p), HIDDEN, k) for n in norms]
    return extras


def nextn_extras(p: str, k: int) -> Block:
    """DeepSeek/GLM NextN extras: a plain ``eh_proj``, ``enorm``/``hnorm`` and the
    ``shared_head`` (``head``, quantizable, and ``norm``)."""
    lin, pl = fc_extras("{p}.eh_proj", ("{p}.enorm", "{p}.hnorm", "{p}.shared_head.norm"),
                        group="eh_proj", quantizable=False)(p, k)
    return [*lin, Linear(f"{p}.shared_head.head", VOCAB, HIDDEN, k, "head")], pl


def text_config(**extra: Any) -> dict[str, Any]:
    """The text-model keys every row shares (the tiny sizes of ``_families``)."""
    return {
        "hidden_size": HIDDEN,
        "intermediate_size": DENSE_INTER,
        "num_hidden_layers": N_TARGET,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        **extra,
    }


CONFIGURATION_PANGU = '''\
"""openPangu-Ultra-MoE configuration (remote code, as its repositories ship one)."""

from transformers import PretrainedConfig


class PanguUltraMoEConfig(PretrainedConfig):
    model_type = "pangu_ultra_moe"
'''


#: the config keys of `mla_mlp_layer`'s latent attention
MLA_CONFIG: dict[str, int] = {"q_lora_rank": MLA_Q_RANK, "kv_lora_rank": MLA_KV_RANK,
                              "qk_nope_head_dim": MLA_NOPE, "qk_rope_head_dim": MLA_ROPE,
                              "v_head_dim": MLA_V}
#: Ring-2.5's and Ling-V3's text keys (`bailing_layer`: latent attention, MoE)
BAILING_TEXT = text_config(**MLA_CONFIG, num_experts=EXPERTS, num_experts_per_tok=2,
                           num_shared_experts=1, moe_intermediate_size=MOE_INTER,
                           use_bias=False)


#: a NextN layer's input norms and output norm (HY-V3, Bailing, Nemotron-H)
EH_NORMS = ("{p}.enorm", "{p}.hnorm", "{p}.final_layernorm")
#: their plain ``eh_proj`` (a ``torch.nn.Linear``) with `EH_NORMS`
PLAIN_EH = fc_extras("{p}.eh_proj", EH_NORMS, group="eh_proj", quantizable=False)


@dataclass(frozen=True)
class LearnedSpec:
    """One tiny target with one MTP layer, for a drafter class whose mapping is learned."""

    name: str  # the factory family name
    architecture: str  # the target's ``architectures[0]``
    config: Mapping[str, Any]  # config.json (without ``num_nextn_predict_layers``)
    mtp: str  # checkpoint prefix of the MTP layer (``{k}``: its index, ``{n}``: N + k)
    layer: Callable[[str, int | None], Block]  # a decoder layer (target and MTP alike)
    extras: Callable[[str, int], Block]  # the MTP layer's own modules (projection, norms)
    root_glob: str  # one wildcard over every MTP tensor (layout b)
    head_glob: str | None = None  # the wildcard of the ``head`` group, if any
    mlp_glob: str | None = None  # the wildcard of the ``mlp`` group (default ``{mtp}.mlp*``)
    target_root: str = "model"  # target layers are ``{target_root}.layers.{i}``
    text_key: str | None = None  # multimodal: the text keys nest under this key
    files: Mapping[str, str] = field(default_factory=dict)  # extra files (remote code)
    #: what ends the target model after its layers (default: ``{target_root}.norm``)
    target_tail: Callable[[str], Block] | None = None


def family(spec: LearnedSpec, num_mtp: int) -> Family:
    """The factory `Family` of ``spec`` (one MTP layer: the drafters here map only ``0``)."""
    if num_mtp != 1:
        raise ValueError(f"{spec.name}: the tiny checkpoint has one MTP layer (got {num_mtp})")
    linears: list[Linear] = []
    plains: list[Plain] = [Plain(f"{spec.target_root}.embed_tokens.weight", (VOCAB, HIDDEN),
                                 None)]
    for i in range(N_TARGET):
        lin, pl = spec.layer(f"{spec.target_root}.layers.{i}", None)
        linears += lin
        plains += pl
    b = spec.mtp.format(k=0, n=N_TARGET)
    for lin, pl in (spec.layer(b, 0), spec.extras(b, 0)):
        linears += lin
        plains += pl
    linears.append(Linear("lm_head", VOCAB, HIDDEN, None, "router", False))
    if spec.target_tail is None:
        plains.append(_norm(f"{spec.target_root}.norm", HIDDEN, None))
    else:
        lin, pl = spec.target_tail(spec.target_root)
        linears += lin
        plains += pl
    globs = {(0, "attn"): f"{b}.self_attn*", (0, "mlp"): spec.mlp_glob or f"{b}.mlp*"}
    if spec.head_glob:
        globs[(0, "head")] = spec.head_glob
    config = dict(spec.config)
    config["num_nextn_predict_layers"] = num_mtp
    if spec.text_key:
        config[spec.text_key] = {**config[spec.text_key], "num_nextn_predict_layers": num_mtp}
    if spec.files:  # remote code beside the weights (loaded with ``trust_remote_code``)
        return MoreFamily.of(spec.name, spec.architecture, num_mtp, config,
                             (linears, plains, [b], globs), spec.root_glob,
                             extra_files=dict(spec.files))
    return Family.of(spec.name, spec.architecture, num_mtp, config,
                     (linears, plains, [b], globs), spec.root_glob)


SPECS: tuple[LearnedSpec, ...] = (
    LearnedSpec(
        "ernie4_5_moe", "Ernie4_5_MoeForCausalLM",
        {"architectures": ["Ernie4_5_MoeForCausalLM"], "model_type": "ernie4_5_moe",
         **text_config(use_bias=False, moe_intermediate_size=DENSE_INTER, moe_num_experts=4,
                       moe_num_shared_experts=0, moe_k=2, moe_layer_start_index=N_TARGET)},
        mtp="model.mtp_block.{k}", layer=llama_layer,
        extras=fc_extras("model.mtp_linear_proj.{k}",
                         ("model.mtp_emb_norm.{k}", "model.mtp_hidden_norm.{k}"),
                         group="eh_proj", quantizable=False),
        root_glob="model.mtp*"),
    LearnedSpec(
        "exaone_moe", "ExaoneMoEForCausalLM",
        {"architectures": ["ExaoneMoEForCausalLM"], "model_type": "exaone_moe",
         **text_config(moe_intermediate_size=DENSE_INTER, sliding_window=128,
                       layer_types=["full_attention"] * N_TARGET,
                       first_k_dense_replace=N_TARGET, num_experts=4, num_experts_per_tok=2,
                       num_shared_experts=1)},
        mtp="mtp.layers.{k}", layer=qk_norm_layer,
        extras=fc_extras("mtp.fc", ("mtp.norm", "mtp.pre_fc_norm_hidden",
                                    "mtp.pre_fc_norm_embedding")),
        root_glob="mtp*", head_glob="mtp.fc*"),
    LearnedSpec(
        "exaone4_5", "Exaone4_5_ForConditionalGeneration",
        {"architectures": ["Exaone4_5_ForConditionalGeneration"], "model_type": "exaone4_5",
         "text_config": {"model_type": "exaone4", **text_config(
             sliding_window=128, layer_types=["full_attention"] * N_TARGET)},
         "vision_config": {"model_type": "exaone4_5_vision", "depth": 1, "hidden_size": 64,
                           "intermediate_size": 128, "num_heads": 2, "num_key_value_heads": 2,
                           "out_hidden_size": HIDDEN, "fullatt_block_indexes": [0]},
         "vocab_size": VOCAB, "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        mtp="mtp.layers.{k}", layer=exaone4_layer,
        extras=fc_extras("mtp.fc", ("mtp.norm", "mtp.pre_fc_norm_hidden",
                                    "mtp.pre_fc_norm_embedding")),
        root_glob="mtp*", head_glob="mtp.fc*", target_root="model.language_model"),
    LearnedSpec(
        "glm_ocr", "GlmOcrForConditionalGeneration",
        {"architectures": ["GlmOcrForConditionalGeneration"], "model_type": "glm_ocr",
         "text_config": {"model_type": "glm_ocr_text", **text_config(
             attention_bias=False, partial_rotary_factor=0.5)},
         "vision_config": {"model_type": "glm_ocr_vision", "depth": 1, "hidden_size": 64,
                           "intermediate_size": 128, "num_heads": 2, "out_hidden_size": HIDDEN},
         "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        mtp="model.language_model.layers.{n}", layer=glm4_layer, extras=nextn_extras,
        root_glob="model.language_model.layers.2*",
        head_glob="model.language_model.layers.2.shared_head*",
        target_root="model.language_model", text_key="text_config"),
    LearnedSpec(
        "longcat_flash", "LongcatFlashForCausalLM",
        {"architectures": ["LongcatFlashForCausalLM"], "model_type": "longcat_flash",
         **text_config(num_layers=N_TARGET // 2, ffn_hidden_size=DENSE_INTER,
                       q_lora_rank=MLA_Q_RANK, kv_lora_rank=MLA_KV_RANK,
                       qk_nope_head_dim=MLA_NOPE, qk_rope_head_dim=MLA_ROPE,
                       v_head_dim=MLA_V, head_dim=MLA_ROPE, n_routed_experts=4,
                       zero_expert_num=2, moe_topk=2, expert_ffn_hidden_size=DENSE_INTER,
                       mla_scale_q_lora=False, mla_scale_kv_lora=False)},
        mtp="model.mtp.layers.{k}", layer=mla_mlp_layer("transformer_layer.mlp"),
        extras=fc_extras("{p}.eh_proj", ("{p}.enorm.m", "{p}.hnorm.m", "model.mtp.norm")),
        root_glob="model.mtp*", head_glob="model.mtp.layers.0.eh_proj*",
        mlp_glob="model.mtp.layers.0.transformer_layer.mlp*"),
    LearnedSpec(
        "hy_v3", "HYV3ForCausalLM",
        {"architectures": ["HYV3ForCausalLM"], "model_type": "hy_v3",
         **text_config(num_experts=1, num_experts_per_tok=1, num_shared_experts=0,
                       moe_intermediate_size=DENSE_INTER, first_k_dense_replace=N_TARGET + 1,
                       qk_norm=False)},
        mtp="model.layers.{n}", layer=llama_layer,
        extras=PLAIN_EH,
        root_glob="model.layers.2*"),
    LearnedSpec(
        "openpangu", "PanguUltraMoEForCausalLM",
        {"architectures": ["PanguUltraMoEForCausalLM"], "model_type": "pangu_ultra_moe",
         "auto_map": {"AutoConfig": "configuration_openpangu.PanguUltraMoEConfig"},
         **text_config(n_routed_experts=EXPERTS, first_k_dense_replace=N_TARGET + 1,
                       **MLA_CONFIG)},
        mtp="model.layers.{n}", layer=mla_mlp_layer("mlp"), extras=nextn_extras,
        root_glob="model.layers.2*", head_glob="model.layers.2.shared_head*",
        files={"configuration_openpangu.py": CONFIGURATION_PANGU}),
    LearnedSpec(
        "bailing_v2_5", "BailingMoeV2_5ForCausalLM",
        {"architectures": ["BailingMoeV2_5ForCausalLM"], "model_type": "bailing_hybrid",
         **BAILING_TEXT},
        mtp="model.layers.{n}", layer=bailing_layer,
        extras=PLAIN_EH,
        root_glob="model.layers.2*"),
    LearnedSpec(
        "bailing_v3", "BailingMoeV3ForCausalLM",
        {"architectures": ["BailingMoeV3ForCausalLM"], "model_type": "bailing_hybrid",
         **BAILING_TEXT, "moe_shared_expert_intermediate_size": MOE_INTER},
        mtp="model.layers.{n}", layer=bailing_v3_layer,
        extras=fc_extras("{p}.eh_proj", EH_NORMS),
        root_glob="model.layers.2*", head_glob="model.layers.2.eh_proj*"),
    LearnedSpec(
        "nemotron_h", "NemotronHForCausalLM",
        {"architectures": ["NemotronHForCausalLM"], "model_type": "nemotron_h",
         **text_config(hybrid_override_pattern="*E", mtp_hybrid_override_pattern="*",
                       n_routed_experts=EXPERTS, n_shared_experts=1, num_experts_per_tok=2,
                       moe_intermediate_size=MOE_INTER,
                       moe_shared_expert_intermediate_size=MOE_INTER, n_group=1,
                       topk_group=1, norm_topk_prob=True, routed_scaling_factor=1.0,
                       mlp_hidden_act="relu2", layer_norm_epsilon=1e-5,
                       attention_bias=False, mlp_bias=False)},
        mtp="mtp.layers.{k}", layer=nemotron_h_layer,
        extras=fc_extras("{p}.eh_proj", EH_NORMS),
        root_glob="mtp*", head_glob="mtp.layers.0.eh_proj*", target_root="backbone"),
    LearnedSpec(
        "mimo_v2", "MiMoV2FlashForCausalLM",
        {"architectures": ["MiMoV2FlashForCausalLM"], "model_type": "mimo_v2_flash",
         **text_config(v_head_dim=HEAD_DIM, layernorm_epsilon=1e-5, attention_bias=False,
                       swa_num_attention_heads=HEADS, swa_num_key_value_heads=KV_HEADS,
                       swa_head_dim=HEAD_DIM, swa_v_head_dim=HEAD_DIM,
                       hybrid_layer_pattern=[0] * N_TARGET, moe_layer_freq=[0] * N_TARGET,
                       layer_types=["full_attention"] * N_TARGET,
                       mlp_layer_types=["dense"] * N_TARGET,
                       n_routed_experts=EXPERTS, num_experts_per_tok=2,
                       moe_intermediate_size=MOE_INTER, attention_value_scale=None,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0})},
        mtp="model.mtp.layers.{k}", layer=mimo_v2_layer, extras=PLAIN_EH,
        root_glob="model.mtp*"),
    LearnedSpec(
        "qwen4_exp", "Qwen4ExpForCausalLM",
        {"architectures": ["Qwen4ExpForCausalLM"], "model_type": "qwen4_exp_text",
         **text_config(layer_types=["indexed_attention"] * N_TARGET,
                       num_experts=EXPERTS, num_experts_per_tok=2,
                       moe_intermediate_size=MOE_INTER,
                       shared_expert_intermediate_size=MOE_INTER, norm_topk_prob=True,
                       hc_count=HC_COUNT, hc_lowrank=HC_LOWRANK, rms_norm_eps=1e-6,
                       rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                        "partial_rotary_factor": 0.25})},
        mtp="mtp.layers.{k}", layer=qwen4_exp_layer, extras=qwen4_exp_extras,
        root_glob="mtp*", head_glob="mtp.fc*",
        # the target ends in its own final mixer, not a norm (Qwen4ExpModel)
        target_tail=lambda root: _hyper_connection(f"{root}.hyper_connection_mixer", None,
                                                   combine=False)),
    # --- issue 13f: MTP drafters of the newer per-platform layout (vllm/models/<family>/)
    LearnedSpec(
        "hy_v4", "HYV4ForCausalLM",
        {"architectures": ["HYV4ForCausalLM"], "model_type": "hy_v4",
         **text_config(**MLA_CONFIG, num_key_value_heads=HEADS, n_routed_experts=EXPERTS,
                       n_shared_experts=1, num_experts_per_tok=2,
                       moe_intermediate_size=MOE_INTER, mlp_layer_types=["dense"] * N_TARGET,
                       layer_types=["full_attention"] * N_TARGET, index_topk=16,
                       index_head_dim=32, index_n_heads=2, enable_ihc=False, hc_mult=2,
                       pad_token_id=0, bos_token_id=1, eos_token_id=2)},
        mtp="model.mtp_layers.{k}", layer=hy_v4_layer, extras=PLAIN_EH,
        root_glob="model.mtp_layers*"),
    # ---- issue 13i: Glm5NextMTP ----
    LearnedSpec(
        "glm5_next", "Glm5NextForConditionalGeneration",
        {"architectures": ["Glm5NextForConditionalGeneration"], "model_type": "glm5_next",
         "text_config": {"model_type": "glm5_next_text", **text_config(
             **{**MLA_CONFIG, "qk_rope_head_dim": 0}, head_dim=0, num_key_value_heads=HEADS,
             n_routed_experts=EXPERTS, n_shared_experts=1, num_experts_per_tok=2,
             moe_intermediate_size=MOE_INTER, n_group=1, topk_group=1,
             routed_scaling_factor=2.5, norm_topk_prob=True, topk_method="noaux_tc",
             scoring_func="sigmoid", mlp_layer_types=["sparse"] * N_TARGET,
             layer_types=["indexed_attention"] * N_TARGET,
             indexer_types=["full"] * N_TARGET, index_topk=G5N_TOPK,
             index_head_dim=G5N_INDEX_DIM, index_n_heads=G5N_INDEX_HEADS,
             index_kpool=G5N_KPOOL, mla_use_nope=True, indexer_rope_interleave=False,
             mhc=False, pad_token_id=0)},
         "vision_config": {"model_type": "glm5_next_vision", "depth": 1, "hidden_size": 64,
                           "intermediate_size": 128, "num_heads": 2, "out_hidden_size": HIDDEN,
                           "projection_intermediate_size": 128},
         "tie_word_embeddings": False, "torch_dtype": "bfloat16"},
        mtp="model.language_model.layers.{n}", layer=glm5_next_layer,
        extras=fc_extras("{p}.eh_proj", ("{p}.enorm", "{p}.hnorm", "{p}.shared_head.norm"),
                         group="eh_proj", quantizable=False),
        root_glob="model.language_model.layers.2*", target_root="model.language_model",
        text_key="text_config"),
    # ---- issue 13j: InklingMTP ----
    LearnedSpec(
        "inkling", "InklingForCausalLM",
        {"architectures": ["InklingForCausalLM"], "model_type": "inkling_model",
         **text_config(d_rel=INK_D_REL, rel_extent=INK_REL_EXTENT,
                       sliding_window_size=INK_REL_EXTENT, use_sconv=True,
                       sconv_kernel_size=INK_SCONV, dense_mlp_idx=N_TARGET,
                       rms_norm_eps=1e-6),
         "mtp_config": {"num_nextn_predict_layers": 1, "chain_hidden_post_norm": True,
                        "local_layer_ids": []}},
        mtp="model.mtp.layers.{k}", layer=inkling_layer,
        extras=fc_extras("{p}.input_proj", ("{p}.hidden_norm", "{p}.embed_norm",
                                            "model.mtp.chain_norm")),
        root_glob="model.mtp*", head_glob="model.mtp.layers.0.input_proj*",
        mlp_glob="model.mtp.layers.0.transformer_block.mlp*", target_root="model.llm"),
)


# ---- issue 13m: Glm5NextMTP with its MTP attention stored quantized ----
SPECS = (*SPECS, replace(next(s for s in SPECS if s.name == "glm5_next"),
                         name="glm5_next_qattn", layer=glm5_next_qattn_layer))


def _bind(spec: LearnedSpec) -> Callable[[int], Family]:
    return lambda num_mtp: family(spec, num_mtp)


LEARNED_FAMILIES: dict[str, Callable[[int], Family]] = {s.name: _bind(s) for s in SPECS}


# ---- issue 13j: InternS2MobiusMTP ----
#: Intern-S2-Mobius's configuration as remote code (vLLM and transformers know no
#: ``interns2_mobius`` config; a checkpoint folder carries its own): Qwen3.5-MoE's
#: multimodal config with its own text config, whose MTP layer has its own expert count
#: (``mtp_num_experts``, ``mtp_num_experts_per_tok``) and whose target layers share
#: ``num_blocks`` routed MoE banks
CONFIGURATION_MOBIUS = '''\
"""Intern-S2-Mobius configuration (remote code, as its repositories ship one)."""

from transformers.configuration_utils import SubConfigSpec
from transformers.models.qwen3_5_moe.configuration_qwen3_5_moe import (
    Qwen3_5MoeConfig,
    Qwen3_5MoeTextConfig,
)


class InternS2MobiusTextConfig(Qwen3_5MoeTextConfig):
    model_type = "interns2_mobius_text"


class InternS2MobiusConfig(Qwen3_5MoeConfig):
    model_type = "interns2_mobius"
    sub_configs_defaults = {
        **Qwen3_5MoeConfig.sub_configs_defaults,
        "text_config": SubConfigSpec(config_class=InternS2MobiusTextConfig),
    }
'''


def interns2_mobius(num_mtp: int) -> Family:
    """``InternS2MobiusForConditionalGeneration`` (Intern-S2-Mobius; remote-code config
    ``configuration_interns2_mobius.py``), drafted by vLLM's ``InternS2MobiusMTP``
    (``interns2_mobius.py``, a ``Qwen3_5MoeMTP`` built on the draft config in which
    ``config/speculative.py:SpeculativeConfig.hf_config_override`` makes the text config
    ``qwen3_5_moe_text`` with ``num_experts = mtp_num_experts``). Its MTP tensors are
    Qwen3.5-MoE's (``mtp.layers.{k}``, ``mtp.fc``, norms: the ``qwen3_5_moe_vl`` family's
    names, 4 experts = ``mtp_num_experts``; the target's own ``num_experts`` is 8, so a
    drafter built with the target's count would not match). The target layers are
    Qwen3.5 placeholders, not Mobius's shared MoE banks (``meta_mlp``): only the drafter
    is built."""
    from support._families_more import qwen3_5_moe_vl

    base = qwen3_5_moe_vl(num_mtp)
    config = {**base.config, "architectures": ["InternS2MobiusForConditionalGeneration"],
              "model_type": "interns2_mobius",
              "auto_map": {"AutoConfig": "configuration_interns2_mobius.InternS2MobiusConfig"},
              "text_config": {**base.config["text_config"],
                              "model_type": "interns2_mobius_text", "num_experts": 2 * EXPERTS,
                              "mtp_num_experts": EXPERTS, "mtp_num_experts_per_tok": 2,
                              "num_blocks": 1, "layer_scale": False}}
    return MoreFamily.of("interns2_mobius", "InternS2MobiusForConditionalGeneration", num_mtp,
                         config, (list(base.linears), list(base.plains),
                                  list(base.mtp_layer_prefixes), dict(base.group_globs)),
                         base.mtp_root_glob,
                         extra_files={"configuration_interns2_mobius.py": CONFIGURATION_MOBIUS})


LEARNED_FAMILIES["interns2_mobius"] = interns2_mobius
