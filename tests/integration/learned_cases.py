"""Drafter classes without a hand profile that the tests build on CPU, as data.

One `LearnedClass` row per vLLM drafter class: the tiny checkpoint family that makes
vLLM resolve it (a row of ``tests/support/_families_learned.py``), the linear layers
vLLM builds for it (runtime prefixes: the learned plan must name exactly these), how it
is built, and stock vLLM 0.33.0's outcome (``VLLM_DRAFT_QUANT=off``) on each case,
measured with these builds (``matrix.Expected``: ok / loud with the error / silent with
the modules loaded in the wrong precision).

A class either gets the full matrix (ModelOpt NVFP4 and FP8 x layouts a, b, c, g of
``support.factory.LAYOUTS``), or, when it shares its representative's base class and
checkpoint names (``like``), one build case plus a test that its learned mapping equals
the representative's. ``vllm_draft_quant/adapter/coverage.py:VERIFIED_LEARNED`` names the
same classes (``test_learned_drafters.py`` checks that the two agree).

Adding a class: a `LearnedSpec` row for its checkpoint, a row here with its stock
outcomes (build the cases with ``VLLM_DRAFT_QUANT=off`` first), its entry in
``VERIFIED_LEARNED``, then regenerate README's coverage table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from matrix import Expected

__all__ = ["CASES", "CLASSES", "FULL", "ONE", "STOCK", "LearnedClass", "by_family"]

Case = tuple[str, str, str]  # (family, scheme, layout)
FULL: tuple[tuple[str, str], ...] = tuple((s, lay) for s in ("nvfp4", "fp8")
                                          for lay in ("a", "b", "c", "g"))
#: the one case of a class grouped with its representative: the grafted BF16 MTP in an
#: NVFP4 export (the most reported failure)
ONE: tuple[tuple[str, str], ...] = (("nvfp4", "a"),)


@dataclass(frozen=True)
class LearnedClass:
    family: str  # the factory family whose target vLLM drafts with this class
    drafter_class: str  # vLLM's class (the coverage table's row)
    architecture: str  # the draft architecture vLLM resolves
    linear: frozenset[str]  # runtime prefixes of the linear layers vLLM builds
    stock: Mapping[tuple[str, str], Expected]  # (scheme, layout) -> stock outcome
    mode: str = "target+draft"  # the build service's mode ("draft": drafter alone)
    like: str | None = None  # the representative's family: same mapping, one case
    #: (scheme, layout) -> how the load fails with the plugin too (a limit the plugin
    #: does not lift; the coverage table says so): the tests hold it to this failure
    limits: Mapping[tuple[str, str], Expected] = field(default_factory=dict)
    limit_note: str = ""  # the coverage table's words for ``limits``
    #: extra EngineArgs of its builds (remote-code configs, a hybrid target's Mamba state)
    engine_args: Mapping[str, Any] | None = None
    #: a separate EAGLE-1 draft (``support.eagle3.write_eagle_pair`` family, method
    #: ``eagle``) beside a target quantized in the case's scheme; layouts are then the
    #: draft folder's own declaration (``support.eagle3.EagleLayout``); None: ``family``
    #: is a factory family whose MTP layers sit in the target's folder
    draft: str | None = None
    #: the class has a hand profile: the plugin plans with it (the tests hold that plan
    #: equal to the learned one); ``adapter/coverage.py:PROFILED_BUILT`` lists these
    profile: bool = False
    #: (attention heads, KV heads) of a drafter whose ``load_weights`` reorders the rows
    #: of q/k weights and of their non-scalar scales for vLLM's rotary layout
    #: (``llama4.py:Llama4ForCausalLM.permute_qk_weight_for_rotary``): its values are
    #: compared with the checkpoint's reordered the same way (`rotary_rows`)
    qk_rotary: tuple[int, int] | None = None
    #: per-case environment of its builds (``harness.PER_CASE_ENV``): DSpark and XPress
    #: drafters need vLLM's V2 model runner (``VLLM_USE_V2_MODEL_RUNNER=1``)
    env: Mapping[str, str] | None = None
    #: quantizable layers (runtime prefixes) the checkpoint keeps BF16 in every layout
    kept_bf16: frozenset[str] = frozenset()

    @property
    def cases(self) -> list[Case]:
        return [(self.family, s, lay) for s, lay in (ONE if self.like else FULL)]


L = "model.layers.2"
X = "mtp.layers.0"
_EXAONE_LINEAR = frozenset({f"{X}.self_attn.qkv_proj", f"{X}.self_attn.o_proj",
                            f"{X}.mlp.gate_up_proj", f"{X}.mlp.down_proj", "mtp.fc"})
_OK = Expected("ok")
E = "model.layers.2"  # an EAGLE-1 draft's layer, numbered after the 2 target layers
M = "model.eagle_layers.2"  # EagleMiniCPM's
P = "model.mtp.layers.0"  # MiMo-V2's MTP layer (checkpoint and runtime names)
Q = "mtp.layers.2"  # Qwen4Exp's MTP layer at runtime (checkpoint mtp.layers.0)
#: Qwen4Exp's hyper-connections' merged down+inject projections: vLLM builds them with no
#: quant config (nvidia/hyperconnection.py:GatedResidual); the tiny checkpoint, like
#: exports, keeps them BF16 in every layout
_QWEN4_HC = frozenset(f"{Q}.{hc}_hyper_connection.input_mix_weight_down_block_inject"
                      for hc in ("attn", "mlp"))
_QWEN4_LINEAR = frozenset({f"{Q}.self_attn.qkv_proj", f"{Q}.self_attn.o_proj",
                           f"{Q}.mlp.shared_expert.gate_up_proj",
                           f"{Q}.mlp.shared_expert.down_proj", "mtp.fc_embedding",
                           "mtp.fc_hidden", *_QWEN4_HC})
#: stock EagleLlama: the draft's own config (get_draft_quant_config), exclusions matched
#: against the runtime names model.layers.2.* / model.fc that checkpoint names never equal
_EAGLE_FP8_WRONG = ((f"{E}.self_attn.qkv_proj", "layers.0.self_attn.q_proj"),
                    (f"{E}.self_attn.o_proj", "layers.0.self_attn.o_proj"),
                    (f"{E}.mlp.gate_up_proj", "layers.0.mlp.gate_proj"),
                    (f"{E}.mlp.down_proj", "layers.0.mlp.down_proj"))


_GATE_UP = "layers.0.mlp.gate_up_proj]"


def _eagle_hf_stock(nvfp4_a: str) -> dict[tuple[str, str], Expected]:
    """Stock outcomes of an EAGLE-1 draft in HF names under ``model.`` built on its own
    config (EagleMistral, EagleCohere): exclusions match ``model.fc`` (b, c) but never
    ``model.layers.{N}``; NVFP4 a fails on ``nvfp4_a`` (the first unexcluded BF16 load)."""
    wrong = tuple((rt, f"model.{ck}") for rt, ck in _EAGLE_FP8_WRONG)
    return {
        ("nvfp4", "a"): Expected("loud", "AssertionError", nvfp4_a),
        **{("nvfp4", lay): Expected("loud", "AssertionError", _GATE_UP) for lay in "bc"},
        ("fp8", "a"): Expected("silent", wrong=(*wrong, ("model.fc", "model.fc"))),
        **{("fp8", lay): Expected("silent", wrong=wrong) for lay in "bc"},
        **{(sc, "g"): _OK for sc in ("nvfp4", "fp8")},
    }


#: stock EagleLlama4 under FP8 (layouts a, b, c): every draft layer FP8 with BF16 data
_LLAMA4_FP8_WRONG = tuple((rt.replace(".mlp.", ".feed_forward."),
                           f"model.{ck.replace('.mlp.', '.feed_forward.')}")
                          for rt, ck in _EAGLE_FP8_WRONG)
#: vLLM implements DSpark and XPress only in its V2 model runner
#: (config/vllm.py:VllmConfig._get_v1_model_runner_unsupported_features)
_V2 = {"VLLM_USE_V2_MODEL_RUNNER": "1"}


def _dflash_stock(*extra: tuple[str, str]) -> dict[tuple[str, str], Expected]:
    """Stock outcomes of a DFlash-layout draft (layers.0.*, fc) on its own quant config,
    measured: vLLM renames the draft's exclusions to runtime names
    (qwen3_dflash.py:DFlashQwen3Model.__init__, map_draft_quant_config), so a wildcard
    (b) loads right; with nothing excluded (a) the NVFP4 fc dies and every FP8 module
    holds cast BF16 data (``extra``: the drafter's other such modules); exact names (c)
    miss the fused qkv_proj and gate_up_proj."""
    fused = ((f"{E}.self_attn.qkv_proj", "layers.0.self_attn.q_proj"),
             (f"{E}.mlp.gate_up_proj", "layers.0.mlp.gate_proj"))
    return {
        ("nvfp4", "a"): Expected("loud", "AssertionError", "[while loading fc.weight]"),
        ("nvfp4", "c"): Expected("loud", "AssertionError",
                                 "[while loading layers.0.mlp.gate_up_proj]"),
        ("fp8", "a"): Expected("silent", wrong=(
            *fused, (f"{E}.self_attn.o_proj", "layers.0.self_attn.o_proj"),
            (f"{E}.mlp.down_proj", "layers.0.mlp.down_proj"), ("model.fc", "fc"), *extra)),
        ("fp8", "c"): Expected("silent", wrong=fused),
        **{(sc, lay): _OK for sc in ("nvfp4", "fp8") for lay in "bg"},
    }


def _dspark_stock() -> dict[tuple[str, str], Expected]:
    """DSpark's stock outcomes, measured: DFlash's, plus its Markov head (a quantized
    ParallelLMHead unless excluded): a wildcard over the layers and fc (b) leaves it
    NVFP4 (its BF16 weight fails) or FP8 holding BF16 data."""
    markov = ("model.markov_head.markov_w2", "markov_head.markov_w2")
    return {**_dflash_stock(markov),
            ("nvfp4", "b"): Expected("loud", "RuntimeError",
                                     "[while loading markov_head.markov_w2.weight]"),
            ("fp8", "b"): Expected("silent", wrong=(markov,))}


_EAGLE_LINEAR = frozenset({f"{E}.self_attn.qkv_proj", f"{E}.self_attn.o_proj",
                           f"{E}.mlp.gate_up_proj", f"{E}.mlp.down_proj", "model.fc"})
#: HY-V3's head: built under the prefix "" (FP8 parameters) and fed lm_head's BF16 data
_HY_HEAD = ("", "lm_head")
_HY_HEAD_NVFP4 = Expected("loud", "RuntimeError", "[while loading lm_head.weight]")
_LONGCAT_SCALES = Expected("loud", "KeyError", "model.mtp.layers.0.eh_proj.input_scale")
#: the plugin on the same checkpoint: one DraftLoadError naming the module (issue 13m)
_LONGCAT_PLUGIN = Expected("loud", "DraftLoadError", "model.mtp.layers.0.eh_proj ")

#: Bailing's NextN head, fed from the BF16 lm_head.weight
_BAILING_HEAD = (f"{L}.shared_head.head", "lm_head")
_BAILING_HEAD_NVFP4 = Expected("loud", "RuntimeError", f"[while loading {L}.shared_head.head.weight]")
_BAILING_LINEAR = frozenset({
    f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_b_proj", f"{L}.self_attn.kv_b_proj",
    f"{L}.self_attn.o_proj", f"{L}.mlp.shared_experts.gate_up_proj",
    f"{L}.mlp.shared_experts.down_proj"})
#: a hybrid (linear-attention) target: vLLM sets a Mamba block size, which on CPU (no
#: prefix caching) must equal max_model_len (config/vllm.py:validate_mamba_block_size)
_HYBRID = {"mamba_block_size": 256}
_NEMOTRON_MOE = (
    "built with an attention-only MTP step (`mtp_hybrid_override_pattern` `*`); the MoE "
    "step of public checkpoints (`*E`) does not build on CPU: its non-gated experts raise "
    "NotImplementedError: is_act_and_mul=False is supported only for CUDA, XPU and ROCm "
    "(fused_moe/config.py)")


#: HY-V4's draft linears (hy_v4/nvidia/attention.py:HYV4MLAAttention, gated MLA; a dense MLP)
_HYV4_LINEAR = frozenset({f"{L}.self_attn.{m}" for m in (
    "fused_qkv_a_proj", "q_b_proj", "kv_b_proj", "o_proj", "linear_gate")}
    | {f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"})
_HYV4_NOTE = (
    "built with full-attention (dense MLA) layers and a dense MTP MLP: public checkpoints' "
    "DeepSeek sparse attention and MoE MTP layer are not in the tiny checkpoint")
#: stock HY-V4 under FP8 with nothing remapped: every draft linear an FP8 layer of BF16 data
_HYV4_FP8_WRONG = tuple(
    (m, m.replace(L, "model.mtp_layers.0").replace("fused_qkv_a_proj", "q_a_proj")
     .replace("gate_up_proj", "gate_proj")) for m in sorted(_HYV4_LINEAR))


# ---- issue 13i: Glm5NextMTP ----
#: GLM-5-Next's MTP attention: latent attention and the DSA indexer's projections, all
#: built with no quant config (glm5next/common/model.py:Glm5NextDecoderLayer.__init__,
#: "MLA projections are BF16 in checkpoint"); the indexer's wq_b, a ReplicatedLinear so
#: built, is a fixed (router-like) layer to the learner, not a planned linear
_G5N_ATTN = frozenset(f"{L}.self_attn.{m}" for m in (
    "fused_qkv_a_proj", "q_b_proj", "kv_b_proj", "o_proj", "indexer.wk_weights_proj"))
_G5N_SHARED = frozenset({f"{L}.mlp.shared_experts.gate_up_proj",
                         f"{L}.mlp.shared_experts.down_proj"})
#: stock GLM-5-Next under FP8 with no exclusion matching model.layers.2: its MoE block
#: (routed and shared experts) FP8 parameters holding BF16 data
_G5N_CK = "model.language_model.layers.2"
_G5N_FP8_WRONG = ((f"{L}.mlp.experts", f"{_G5N_CK}.mlp.experts.0.gate_proj"),
                  (f"{L}.mlp.shared_experts.gate_up_proj", f"{_G5N_CK}.mlp.shared_experts.gate_proj"),
                  (f"{L}.mlp.shared_experts.down_proj", f"{_G5N_CK}.mlp.shared_experts.down_proj"))


# ---- issue 13i: MuseSparkDSparkForCausalLM ----
_MUSE_LINEAR = frozenset({f"{E}.self_attn.qkv_proj", f"{E}.self_attn.o_proj",
                          f"{E}.feed_forward.gate_up_proj", f"{E}.feed_forward.down_proj",
                          "model.fc"})
#: stock Muse DSpark under FP8 with no exclusion matching its runtime names: every draft
#: layer, fc and the Markov head FP8 parameters holding BF16 data
_MUSE_FP8_WRONG = ((f"{E}.self_attn.qkv_proj", "layers.0.self_attn.q_proj"),
                   (f"{E}.self_attn.o_proj", "layers.0.self_attn.o_proj"),
                   (f"{E}.feed_forward.gate_up_proj", "layers.0.feed_forward.gate_proj"),
                   (f"{E}.feed_forward.down_proj", "layers.0.feed_forward.down_proj"),
                   ("model.fc", "fc"), ("model.markov_head.markov_w2", "markov_head.markov_w2"))
# ---- issue 13h: Gemma4MTP, Gemma4DSparkForCausalLM ----
G = "draft_model.layers.0"  # the Gemma4 assistant's layer at runtime (Gemma4MTP.model)
_GEMMA4_MTP_LINEAR = frozenset({f"{G}.self_attn.q_proj", f"{G}.self_attn.o_proj",
                                f"{G}.mlp.gate_up_proj", f"{G}.mlp.down_proj",
                                "draft_model.pre_projection", "draft_model.post_projection"})
D = "model.layers.0"  # the Gemma4 DSpark draft's layer at runtime
_GEMMA4_DSPARK_LINEAR = frozenset({f"{D}.self_attn.q_proj", f"{D}.self_attn.k_proj",
                                   f"{D}.self_attn.o_proj", f"{D}.mlp.gate_up_proj",
                                   f"{D}.mlp.down_proj", "model.fc"})


_GEMMA4_DSPARK_NOTE = (
    "built alone (its quant config is the target's, which the engine config gives): b"
    "eside a text-only Gemma4ForCausalLM target, whose layers have the draft's runtime nam"
    'es model.layers.N, vLLM stops with ValueError: Duplicate layer name: model.layers.0.s'
    'elf_attn.attn (attention/attention.py:Attention.__init__, measured, plugin on or off)'
    "; a multimodal Gemma4 target's layers sit under language_model.")


def _gemma4_wrong(runtime: str, ckpt: str, proj: tuple[tuple[str, str], ...] = ()
                  ) -> tuple[tuple[str, str], ...]:
    """(runtime, checkpoint) of every quantizable linear of a Gemma4 draft layer (at
    ``runtime`` / ``ckpt``; K where it has one) and of ``proj``: all FP8 holding BF16."""
    mods = (("self_attn.q_proj", "self_attn.q_proj"), ("self_attn.o_proj", "self_attn.o_proj"),
            ("mlp.gate_up_proj", "mlp.gate_proj"), ("mlp.down_proj", "mlp.down_proj"))
    if runtime == D:
        mods += (("self_attn.k_proj", "self_attn.k_proj"),)
    return (*((f"{runtime}.{r}", f"{ckpt}.{c}") for r, c in mods), *proj)


def _gemma4_mtp_stock() -> dict[tuple[str, str], Expected]:
    """Gemma4MTP's stock outcomes, measured: the draft's own quant config, its layers
    built under ``draft_model.`` (``gemma4_mtp.py:Gemma4MTP.__init__``), so a wildcard in
    checkpoint names (b) matches nothing; exact names (c) reach every module but the
    fused ``gate_up_proj``; NVFP4 dies on it in a, b and c."""
    proj = tuple((f"draft_model.{n}", n) for n in ("pre_projection", "post_projection"))
    every = Expected("silent", wrong=_gemma4_wrong(G, "model.layers.0", proj))
    return {
        **{("nvfp4", lay): Expected("loud", "AssertionError",
                                    "[while loading model.layers.0.mlp.gate_up_proj]")
           for lay in "abc"},
        ("fp8", "a"): every, ("fp8", "b"): every,
        ("fp8", "c"): Expected("silent", wrong=(
            (f"{G}.mlp.gate_up_proj", "model.layers.0.mlp.gate_proj"),)),
        **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
    }


def _gemma4_dspark_stock() -> dict[tuple[str, str], Expected]:
    """Gemma4 DSpark's stock outcomes, measured: vLLM builds the draft with the *target's*
    quant config (``gemma4_dspark.py:Gemma4DSparkModel.__init__``, the current config's
    ``quant_config``), so the draft folder's exclusions play no part: every BF16 layout
    dies on ``fc`` under NVFP4 and holds BF16 data in FP8 parameters under FP8."""
    every = Expected("silent", wrong=_gemma4_wrong(D, "layers.0", (("model.fc", "fc"),)))
    return {
        **{("nvfp4", lay): Expected("loud", "AssertionError", "[while loading model.fc.weight]")
           for lay in "abc"},
        **{("fp8", lay): every for lay in "abc"},
        **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
    }
# ---- issue 13j: InklingMTP ----
#: Inkling's MTP depth 0 at runtime (checkpoint model.mtp.layers.0; the loader drops ".mtp")
K = "model.layers.0"
#: its linears: the fused wq_du/wk_dv/wv_dv/wr_du projection (qkvr), wo_ud, the dense MLP's
#: fused interleaved gate/up (w13_dn: one ColumnParallelLinear) and w2_md, the depth's
#: input_proj (a quantizable ReplicatedLinear)
_INKLING_LINEAR = frozenset({f"{K}.input_proj"} | {
    f"{K}.transformer_block.{m}" for m in (
        "attn.qkvr", "attn.wo_ud", "mlp.gate_up_proj", "mlp.down_proj")})


# ---- issue 13j: InternS2MobiusMTP ----
#: Intern-S2-Mobius's drafter: Qwen3.5-MoE's MTP layer (mtp.layers.0, with routed experts
#: counted by mtp_num_experts) and its quantizable mtp.fc, in checkpoint and runtime names
_MOBIUS_LINEAR = frozenset({"mtp.fc", *(f"{X}.{m}" for m in (
    "self_attn.qkv_proj", "self_attn.o_proj", "mlp.shared_expert.gate_up_proj",
    "mlp.shared_expert.down_proj"))})
#: stock, measured: as Qwen3_5MoeMTP's (matrix_more.py): under FP8 with nothing excluded
#: every draft layer is an FP8 layer holding BF16 data
_MOBIUS_FP8_WRONG = (("mtp.fc", "mtp.fc"),
                     (f"{X}.self_attn.qkv_proj", f"{X}.self_attn.k_proj"),
                     (f"{X}.self_attn.o_proj", f"{X}.self_attn.o_proj"),
                     (f"{X}.mlp.shared_expert.gate_up_proj", f"{X}.mlp.shared_expert.gate_proj"),
                     (f"{X}.mlp.shared_expert.down_proj", f"{X}.mlp.shared_expert.down_proj"),
                     (f"{X}.mlp.experts", f"{X}.mlp.experts.0.down_proj"))


def _bailing(family: str, cls: str, linear: frozenset[str],
             fp8_a: tuple[str, str]) -> LearnedClass:
    """A Bailing drafter's row: its head, fed from the BF16 lm_head.weight, fails under
    NVFP4 unless a wildcard excludes the layer and holds BF16 data under FP8; with
    nothing excluded (FP8 a) the attention, the experts and ``fp8_a`` are FP8 too."""
    return LearnedClass(
        family, cls, cls, linear,
        {
            **{("nvfp4", lay): _BAILING_HEAD_NVFP4 for lay in "acg"},
            ("fp8", "a"): Expected("silent", wrong=(
                (f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_a_proj"), fp8_a,
                (f"{L}.mlp.experts", f"{L}.mlp.experts.0.gate_proj"), _BAILING_HEAD)),
            **{(s, "b"): _OK for s in ("nvfp4", "fp8")},
            **{("fp8", lay): Expected("silent", wrong=(_BAILING_HEAD,)) for lay in "cg"},
        },
        mode="draft", engine_args=_HYBRID)

# ---- issue 13k: DFlashLaguna, LiLiCorr ----
#: stock DFlash-Laguna under FP8 with nothing excluded that matches: every layer FP8
_LAGUNA_FP8_WRONG = (*((f"model.layers.0.{m}", f"layers.0.{m}") for m in (
    "self_attn.qkv_proj", "self_attn.g_proj", "self_attn.o_proj", "mlp.gate_proj",
    "mlp.up_proj", "mlp.down_proj")), ("model.fc", "fc"))
#: stock LiLiCorr under FP8 with nothing excluded: the correlator's quantizable layers
_LILICORR_FP8_WRONG = tuple((f"model.lilicorr.{m}", f"lilicorr.{m}") for m in (
    "pass_hidden_proj", "context_proj", "feature_mlp.up_proj", "feature_mlp.down_proj",
    "layers.0.attn.out_proj", "layers.0.mlp.up_proj", "layers.0.mlp.down_proj",
    "anchor_out_head"))

CLASSES: tuple[LearnedClass, ...] = (
    LearnedClass(
        "ernie4_5_moe", "ErnieMTP", "ErnieMTPModel",
        frozenset({f"{L}.self_attn.qkv_proj", f"{L}.self_attn.o_proj",
                   f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"}),
        {
            # parameter.py load_merged_column_weight: BF16 data into the packed NVFP4
            # parameter (exclusions in checkpoint names never match model.layers.N)
            **{("nvfp4", lay): Expected("loud", "AssertionError",
                                        f"{L}.mtp_block.mlp.gate_up_proj") for lay in "abc"},
            ("nvfp4", "g"): _OK,
            # FP8 parameters holding cast BF16 data: silently wrong
            **{("fp8", lay): Expected(
                "silent", wrong=((f"{L}.self_attn.qkv_proj", "model.mtp_block.0.self_attn.q_proj"),
                                 (f"{L}.mlp.gate_up_proj", "model.mtp_block.0.mlp.gate_proj")))
               for lay in "abc"},
            ("fp8", "g"): _OK,
        }),
    # ExaoneMoE's tiny target does not load on CPU (its lm_head, stock and with the
    # plugin alike): its drafter is built alone, as vLLM builds it after the target
    LearnedClass(
        "exaone_moe", "ExaoneMoeMTP", "ExaoneMoeMTP", _EXAONE_LINEAR,
        {
            # a: nothing excluded; c: exact checkpoint names exclude q/k/v and gate/up but
            # not the fused modules (no packed-module mapping): NVFP4 dies, FP8 is wrong
            ("nvfp4", "a"): Expected("loud", "AssertionError", "fc.weight"),
            ("nvfp4", "c"): Expected("loud", "AssertionError", "layers.0.mlp.gate_up_proj"),
            **{("nvfp4", lay): _OK for lay in "bg"},
            ("fp8", "a"): Expected(
                "silent", wrong=((f"{X}.self_attn.qkv_proj", f"{X}.self_attn.q_proj"),
                                 ("mtp.fc", "mtp.fc"))),
            ("fp8", "c"): Expected(
                "silent", wrong=((f"{X}.self_attn.qkv_proj", f"{X}.self_attn.q_proj"),
                                 (f"{X}.mlp.gate_up_proj", f"{X}.mlp.gate_proj"))),
            **{("fp8", lay): _OK for lay in "bg"},
        },
        mode="draft"),
    # a subclass of ExaoneMoeMTP (exaone4_5_mtp.py): same names and load path; built alone
    # too (its target is multimodal)
    LearnedClass(
        "exaone4_5", "Exaone4_5_MTP", "Exaone4_5_MTP", _EXAONE_LINEAR,
        {("nvfp4", "a"): Expected("loud", "AssertionError", "fc.weight")},
        mode="draft", like="exaone_moe"),
    # GLM-OCR: a GLM-4 NextN layer under model.language_model.layers.N; the drafter
    # routes lm_head.weight into the NextN head too (read first: the head's own tensor
    # wins); exclusions in checkpoint names never match its runtime names model.layers.N
    LearnedClass(
        "glm_ocr", "GlmOcrMTP", "GlmOcrMTPModel",
        frozenset({f"{L}.self_attn.qkv_proj", f"{L}.self_attn.o_proj",
                   f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"}),
        {
            # the BF16 lm_head.weight into the NVFP4 head's packed parameter, every layout
            **{("nvfp4", lay): Expected("loud", "RuntimeError",
                                        f"[while loading {L}.shared_head.head.weight]")
               for lay in "abcg"},
            **{("fp8", lay): Expected("silent", wrong=(
                (f"{L}.self_attn.qkv_proj", "model.language_model.layers.2.self_attn.q_proj"),
                (f"{L}.mlp.gate_up_proj", "model.language_model.layers.2.mlp.gate_proj"),
                (f"{L}.head", "model.language_model.layers.2.shared_head.head")))
               for lay in "abc"},
            ("fp8", "g"): _OK,
        },
        mode="draft"),
    # LongCat-Flash: a DeepSeek-V2 MLA layer; eh_proj is a quantizable ReplicatedLinear
    # built with the bare prefix "eh_proj", which no exclusion written in checkpoint
    # names matches; vLLM renames through a fixed table of checkpoint names
    LearnedClass(
        "longcat_flash", "LongCatFlashMTP", "LongCatFlashMTPModel",
        frozenset({"eh_proj", f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_b_proj",
                   f"{L}.self_attn.kv_b_proj", f"{L}.self_attn.o_proj",
                   f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"}),
        {
            **{("nvfp4", lay): Expected("loud", "AssertionError",
                                        f"[while loading {L}.eh_proj.weight]")
               for lay in "abc"},
            **{("fp8", lay): Expected("silent", wrong=(
                ("eh_proj", "model.mtp.layers.0.eh_proj"),
                (f"{L}.self_attn.fused_qkv_a_proj", "model.mtp.layers.0.self_attn.q_a_proj"),
                (f"{L}.mlp.gate_up_proj", "model.mtp.layers.0.transformer_layer.mlp.gate_proj")))
               for lay in "abc"},
            **{(s, "g"): _LONGCAT_SCALES for s in ("nvfp4", "fp8")},
        },
        mode="draft",
        limits={(s, "g"): _LONGCAT_PLUGIN for s in ("nvfp4", "fp8")},
        limit_note=("a quantized MTP layer does not load, plugin on or off: vLLM's fixed "
                    "rename table (longcat_flash_mtp.py:LongCatFlashMTP.load_weights) has no "
                    "entry for ModelOpt's scale tensors (stock: KeyError on "
                    "model.mtp.layers.0.eh_proj.input_scale; plugin: one DraftLoadError "
                    "naming the module)")),
    # HY-V3: the NextN head is a ParallelLMHead built with the quant config and no prefix
    # (hy_v3_mtp.py:HYV3SharedHead), fed from lm_head.weight: no exclusion can name it,
    # and the plugin cannot either (a limit, plugin on or off); everything else it plans
    LearnedClass(
        "hy_v3", "HYV3MTP", "HYV3MTPModel",
        frozenset({f"{L}.self_attn.qkv_proj", f"{L}.self_attn.o_proj",
                   f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"}),
        {
            **{("nvfp4", lay): _HY_HEAD_NVFP4 for lay in "abcg"},
            ("fp8", "a"): Expected("silent", wrong=(
                (f"{L}.self_attn.qkv_proj", f"{L}.self_attn.q_proj"),
                (f"{L}.mlp.gate_up_proj", f"{L}.mlp.gate_proj"), _HY_HEAD)),
            ("fp8", "b"): Expected("silent", wrong=(_HY_HEAD,)),
            ("fp8", "c"): Expected("silent", wrong=(
                (f"{L}.self_attn.qkv_proj", f"{L}.self_attn.q_proj"),
                (f"{L}.mlp.gate_up_proj", f"{L}.mlp.gate_proj"), _HY_HEAD)),
            ("fp8", "g"): Expected("silent", wrong=(_HY_HEAD,)),
        },
        mode="draft",
        limits={**{("nvfp4", lay): _HY_HEAD_NVFP4 for lay in "abcg"},
                **{("fp8", lay): Expected("silent", wrong=(_HY_HEAD,)) for lay in "abcg"}},
        limit_note=("its NextN head is built with the quant config and an empty prefix "
                    "(hy_v3_mtp.py:HYV3SharedHead) and fed from lm_head.weight: neither an "
                    "exclusion nor the plan can name it, so under NVFP4 it fails on "
                    "lm_head.weight and under FP8 it holds BF16 data, plugin on or off; the "
                    "other draft modules load in their stored precision")),
    # openPangu-Ultra-MoE: a DeepSeek-style NextN layer whose decoder block vLLM builds
    # under the layer's own prefix (openpangu_mtp.py); no packed-module mapping, so exact
    # checkpoint-name exclusions miss the fused q_a/kv_a and gate/up modules
    LearnedClass(
        "openpangu", "OpenPanguMTP", "OpenPanguMTPModel",
        frozenset({f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_b_proj",
                   f"{L}.self_attn.kv_b_proj", f"{L}.self_attn.o_proj",
                   f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"}),
        {
            **{("nvfp4", lay): Expected("loud", "AssertionError",
                                        f"{L}.mtp_block.mlp.gate_up_proj") for lay in "ac"},
            **{("nvfp4", lay): _OK for lay in "bg"},
            ("fp8", "a"): Expected("silent", wrong=(
                (f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_a_proj"),
                (f"{L}.mlp.gate_up_proj", f"{L}.mlp.gate_proj"),
                (f"{L}.shared_head.head", f"{L}.shared_head.head"))),
            ("fp8", "c"): Expected("silent", wrong=(
                (f"{L}.self_attn.fused_qkv_a_proj", f"{L}.self_attn.q_a_proj"),
                (f"{L}.mlp.gate_up_proj", f"{L}.mlp.gate_proj"))),
            **{("fp8", lay): _OK for lay in "bg"},
        },
        mode="draft", engine_args={"trust_remote_code": True}),
    # Ring-2.5 (Bailing V2.5): MLA + MoE NextN layer; its head (prefix ...shared_head.head,
    # built with the quant config) is fed from lm_head.weight, which a ModelOpt export
    # keeps BF16: stock fails under NVFP4 unless a wildcard excludes the whole layer, and
    # under FP8 holds BF16 data. Its target is a hybrid (linear attention) model: the
    # engine config needs the Mamba block size equal to max_model_len on CPU
    _bailing("bailing_v2_5", "BailingMoeV25MTPModel", _BAILING_LINEAR,
             (f"{L}.mlp.shared_experts.gate_up_proj", f"{L}.mlp.shared_experts.gate_proj")),
    # Ling-V3 (Bailing V3): Bailing's names with a quantizable eh_proj (ReplicatedLinear)
    # and the attention output under self_attn.dense; the head fed from lm_head.weight
    _bailing("bailing_v3", "BailingMoeV3MTPModel",
             frozenset({x.replace(".self_attn.o_proj", ".self_attn.dense")
                        for x in _BAILING_LINEAR} | {f"{L}.eh_proj"}),
             (f"{L}.eh_proj", f"{L}.eh_proj")),
    # Nemotron-H: one attention MTP step (pattern "*"; the MoE step of public checkpoints
    # cannot be built on CPU: its non-gated experts); runtime prefixes mtp.layers.N, so
    # exclusions in checkpoint names match; eh_proj is quantizable
    LearnedClass(
        "nemotron_h", "NemotronHMTP", "NemotronHMTPModel",
        frozenset({f"{X}.mixer.qkv_proj", f"{X}.mixer.o_proj", f"{X}.eh_proj"}),
        {
            ("nvfp4", "a"): Expected("loud", "AssertionError",
                                     "[while loading model.layers.0.eh_proj.weight]"),
            **{("nvfp4", lay): _OK for lay in "bcg"},
            ("fp8", "a"): Expected("silent", wrong=(
                (f"{X}.mixer.qkv_proj", f"{X}.mixer.q_proj"), (f"{X}.eh_proj", f"{X}.eh_proj"))),
            **{("fp8", lay): _OK for lay in "bcg"},
        },
        mode="draft", engine_args=_HYBRID, limit_note=_NEMOTRON_MOE),
    # EAGLE-1 for Llama (llama_eagle.py): a separate draft folder (method "eagle") built
    # on its own quant config; layer 0 of the checkpoint is built as model.layers.{N}
    # and fc is a quantizable ReplicatedLinear "model.fc"
    LearnedClass(
        "eagle_llama", "EagleLlamaForCausalLM", "EagleLlamaForCausalLM", _EAGLE_LINEAR,
        {
            # NVFP4: fc's packed parameter [128, 128] gets BF16 [128, 256] (a, b: neither
            # "fc*" nor "layers.0*" matches model.fc / model.layers.2); with exact names
            # "fc" matches model.fc but layers.0.mlp.* still miss model.layers.2.mlp.*
            **{("nvfp4", lay): Expected("loud", "AssertionError", "[while loading fc.weight]")
               for lay in "ab"},
            ("nvfp4", "c"): Expected("loud", "AssertionError",
                                     "[while loading layers.0.mlp.gate_up_proj]"),
            ("nvfp4", "g"): _OK,
            **{("fp8", lay): Expected("silent", wrong=(*_EAGLE_FP8_WRONG,
                                                       ("model.fc", "fc")))
               for lay in "ab"},
            ("fp8", "c"): Expected("silent", wrong=_EAGLE_FP8_WRONG),
            ("fp8", "g"): _OK,
        },
        draft="llama"),
    # EAGLE-1 for Mistral (mistral_eagle.py): the same layers as EagleLlama's, its
    # checkpoint in HF names under "model." (model.fc a quantizable RowParallelLinear):
    # exclusions in checkpoint names match model.fc but never model.layers.{N}
    LearnedClass(
        "eagle_mistral", "EagleMistralForCausalLM", "EagleMistralForCausalLM", _EAGLE_LINEAR,
        _eagle_hf_stock(_GATE_UP), draft="mistral"),
    # EAGLE-1 for Cohere (cohere_eagle.py): the same names as EagleMistral's (fc with a
    # bias, a ReplicatedLinear), Cohere decoder layers indexed into the target's
    # layer_types; in NVFP4 the unexcluded fc fails first (a), else gate_up_proj
    LearnedClass(
        "eagle_cohere", "EagleCohereForCausalLM", "EagleCohereForCausalLM", _EAGLE_LINEAR,
        _eagle_hf_stock("[while loading model.fc.weight]"), draft="cohere"),
    # EAGLE-1 for MiniCPM and DeepSeek-V3 (hand profiles): stock vLLM builds the separate
    # draft with the *target's* quant config (vllm_config.quant_config), so the draft
    # folder's exclusions play no part: every BF16 layout fails (NVFP4) or loads wrong
    # (FP8) alike; MiniCPM's MLP is built with no prefix (".gate_up_proj")
    LearnedClass(
        "eagle_minicpm", "EagleMiniCPMForCausalLM", "EagleMiniCPMForCausalLM",
        frozenset({f"{M}.self_attn.qkv_proj", f"{M}.self_attn.o_proj", ".gate_up_proj",
                   ".down_proj"}),
        {
            **{("nvfp4", lay): Expected("loud", "AssertionError",
                                        "[while loading eagle_layers.0.mlp.gate_up_proj.weight]")
               for lay in "abc"},
            **{("fp8", lay): Expected("silent", wrong=(
                (f"{M}.self_attn.qkv_proj", "model.eagle_layers.0.self_attn.q_proj"),
                (f"{M}.self_attn.o_proj", "model.eagle_layers.0.self_attn.o_proj"),
                (".gate_up_proj", "model.eagle_layers.0.mlp.gate_proj"),
                (".down_proj", "model.eagle_layers.0.mlp.down_proj"))) for lay in "abc"},
            **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
        },
        draft="minicpm", profile=True),
    # MiMo-V2-Flash (hand profile): model.mtp.layers.0.* in checkpoint and runtime names
    # alike, the target's quant config and packed-module mapping, so exclusions written
    # in checkpoint names match (b, c); vLLM builds the MTP layer's o_proj with no quant
    # config (mimo_v2.py:MiMoV2Attention.__init__, "mtp.layers" in its prefix): a quantized
    # o_proj (g) fails under NVFP4 and loads as cast FP8 data without its scale under FP8
    LearnedClass(
        "mimo_v2", "MiMoV2MTP", "MiMoV2MTPModel",
        frozenset({f"{P}.self_attn.qkv_proj", f"{P}.self_attn.o_proj",
                   f"{P}.mlp.gate_up_proj", f"{P}.mlp.down_proj"}),
        {
            ("nvfp4", "a"): Expected("loud", "AssertionError",
                                     f"[while loading {P}.mlp.gate_proj.weight]"),
            ("nvfp4", "g"): Expected("loud", "RuntimeError",
                                     f"[while loading {P}.self_attn.o_proj.weight]"),
            ("fp8", "a"): Expected("silent", wrong=(
                (f"{P}.self_attn.qkv_proj", f"{P}.self_attn.q_proj"),
                (f"{P}.mlp.gate_up_proj", f"{P}.mlp.gate_proj"),
                (f"{P}.mlp.down_proj", f"{P}.mlp.down_proj"))),
            ("fp8", "g"): Expected("silent", wrong=(
                (f"{P}.self_attn.o_proj", f"{P}.self_attn.o_proj"),)),
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "bc"},
        },
        profile=True),
    # ---- issue 13g: separate-draft classes (EAGLE-1 Llama-4) ----
    # EAGLE-1 for Llama 4 (llama4_eagle.py): model.layers.0.* built as model.layers.{N}
    # on the draft's own quant config (no exclusion in checkpoint names matches them);
    # fc is a plain torch.nn.Linear; q/k rows are reordered for vLLM's rotary layout at
    # load (llama4.py:Llama4ForCausalLM.permute_qk_weight_for_rotary)
    LearnedClass(
        "eagle_llama4", "EagleLlama4ForCausalLM", "EagleLlama4ForCausalLM",
        frozenset({f"{E}.self_attn.qkv_proj", f"{E}.self_attn.o_proj",
                   f"{E}.feed_forward.gate_up_proj", f"{E}.feed_forward.down_proj"}),
        {
            # stock, measured: a BF16 draft declaring NVFP4 fails on the first unexcluded
            # packed parameter whatever the exclusions (none names model.layers.2), and
            # under FP8 every layer of the draft holds cast BF16 data (fc is plain BF16)
            **{("nvfp4", lay): Expected(
                "loud", "AssertionError", "[while loading layers.0.feed_forward.gate_up_proj]")
               for lay in "abc"},
            **{("fp8", lay): Expected("silent", wrong=_LLAMA4_FP8_WRONG) for lay in "abc"},
            **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
        },
        draft="llama4", qk_rotary=(4, 2)),
    # DFlash for Qwen3 (qwen3_dflash.py, method "dflash"): layers.0.* built as
    # model.layers.{N} on the draft's own quant config, its exclusions renamed to runtime
    # names by vLLM (map_draft_quant_config); fc a quantizable ReplicatedLinear "model.fc"
    LearnedClass(
        "dflash_qwen3", "DFlashQwen3ForCausalLM", "DFlashDraftModel", _EAGLE_LINEAR,
        _dflash_stock(), draft="dflash_qwen3"),
    # XPress for Qwen3 (qwen3_xpress.py, method "dflash"): DFlash's backbone (same names,
    # same stock outcomes) plus a refiner head of plain torch.nn.Linear layers
    LearnedClass(
        "xpress_qwen3", "Qwen3XPressForCausalLM", "DFlashQwen3XPressModel", _EAGLE_LINEAR,
        _dflash_stock(), draft="xpress_qwen3", env=_V2),
    # DSpark for Qwen3 (qwen3_dspark.py, method "dspark"): DFlash's backbone and names
    # plus a Markov head whose markov_w2 is a ParallelLMHead built with the draft's quant
    # config (a BF16 head here, as exports keep heads)
    LearnedClass(
        "dspark_qwen3", "Qwen3DSparkForCausalLM", "Qwen3DSparkModel", _EAGLE_LINEAR,
        _dspark_stock(), draft="dspark_qwen3", env=_V2),
    # DFlash2 for Qwen3 (qwen3_dflash2.py, method "dflash"; V2 model runner only: a
    # candidate-head draft): DFlash's names plus per-layer grouped convolutions whose
    # kernel_projection is quantizable, and a candidate selector built unquantized
    LearnedClass(
        "dflash2_qwen3", "DFlash2Qwen3ForCausalLM", "DFlash2DraftModel",
        _EAGLE_LINEAR | {f"{E}.attention_conv.kernel_projection",
                         f"{E}.mlp_conv.kernel_projection"},
        _dflash_stock(*((f"{E}.{c}.kernel_projection", f"layers.0.{c}.kernel_projection")
                        for c in ("attention_conv", "mlp_conv"))),
        draft="dflash2_qwen3", env=_V2),
    # Qwen3.8-Flash-Next (hand profile; built without QSA, support/_families_learned.py):
    # the draft's own fresh config with the drafter's packed-module mapping, and vLLM's
    # own remap of "mtp." entries to the runtime layer numbers
    # (qwen4_exp/nvidia/mtp.py:_make_draft_vllm_config), so exclusions in checkpoint
    # names match (b, c); nothing excluded (a) fails under NVFP4 on the first BF16 load
    # and loads BF16 data into FP8 parameters under FP8. The drafter's quant config does
    # not depend on the target's, so only the drafter is built.
    LearnedClass(
        "qwen4_exp", "Qwen4ExpMTP", "Qwen4ExpMTP", _QWEN4_LINEAR,
        {
            ("nvfp4", "a"): Expected("loud", "AssertionError",
                                     "[while loading fc_embedding.weight]"),
            ("fp8", "a"): Expected("silent", wrong=(
                ("mtp.fc_embedding", "mtp.fc_embedding"), ("mtp.fc_hidden", "mtp.fc_hidden"),
                (f"{Q}.self_attn.qkv_proj", f"{X}.self_attn.q_proj"),
                (f"{Q}.self_attn.o_proj", f"{X}.self_attn.o_proj"),
                (f"{Q}.mlp.experts", f"{X}.mlp.experts.0.gate_proj"),
                (f"{Q}.mlp.shared_expert.gate_up_proj", f"{X}.mlp.shared_expert.gate_proj"),
                (f"{Q}.mlp.shared_expert.down_proj", f"{X}.mlp.shared_expert.down_proj"))),
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "bcg"},
        },
        mode="draft", profile=True, kept_bf16=_QWEN4_HC),
    # --- issue 13f: HY-V4 (hy_v4/nvidia/mtp.py): checkpoint model.mtp_layers.0.*, runtime
    # model.layers.2.* (decoder block under mtp_block, built with the layer's prefix); the
    # target's quant config, to which vLLM adds the checkpoint-named MTP exclusions
    # remapped onto model.layers.2.* (_remap_mtp_quant_exclusions) and its own
    # packed-module mapping (q_a/kv_a -> fused_qkv_a_proj, gate/up -> gate_up_proj)
    LearnedClass(
        "hy_v4", "HYV4MTP", "HYV4MTPModel", _HYV4_LINEAR,
        {
            **{("nvfp4", lay): Expected("loud", "AssertionError",
                                        f"[while loading {L}.mtp_block.mlp.gate_proj.weight]")
               for lay in "ab"},
            **{("fp8", lay): Expected("silent", wrong=_HYV4_FP8_WRONG) for lay in "ab"},
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "cg"},
        },
        limit_note=_HYV4_NOTE),
    LearnedClass(
        "eagle_deepseek", "EagleDeepseekV3ForCausalLM", "EagleDeepSeekMTPModel",
        frozenset({f"{E}.self_attn.fused_qkv_a_proj", f"{E}.self_attn.q_b_proj",
                   f"{E}.self_attn.kv_b_proj", f"{E}.self_attn.o_proj",
                   f"{E}.mlp.shared_experts.gate_up_proj", f"{E}.mlp.shared_experts.down_proj"}),
        {
            **{("nvfp4", lay): Expected(
                "loud", "RuntimeError",
                "[while loading layers.0.mlp.experts.routed_experts.w2_weight]")
               for lay in "abc"},
            **{("fp8", lay): Expected("silent", wrong=(
                (f"{E}.self_attn.fused_qkv_a_proj", "layers.0.self_attn.q_a_proj"),
                (f"{E}.self_attn.q_b_proj", "layers.0.self_attn.q_b_proj"),
                (f"{E}.self_attn.kv_b_proj", "layers.0.self_attn.kv_b_proj"),
                (f"{E}.self_attn.o_proj", "layers.0.self_attn.o_proj"),
                (f"{E}.mlp.experts", "layers.0.mlp.experts.0.gate_proj"),
                (f"{E}.mlp.shared_experts.gate_up_proj", "layers.0.mlp.shared_experts.gate_proj"),
                (f"{E}.mlp.shared_experts.down_proj", "layers.0.mlp.shared_experts.down_proj")))
               for lay in "abc"},
            **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
        },
        draft="deepseek", profile=True),
    # ---- issue 13i: Glm5NextMTP ----
    # GLM-5-Next (glm5next/common/mtp.py): checkpoint model.language_model.layers.2.*,
    # runtime model.layers.2.* (decoder block under mtp_block, built with the layer's
    # prefix; load_weights strips "model.language_model."): so no exclusion written in
    # checkpoint names matches. Every attention projection (MLA and the DSA indexer) is
    # built with no quant config and kept BF16 by the checkpoint, as exports do; the
    # MoE block (routed and shared experts) takes the target's quant config. Its target
    # is a hybrid (KDA) model: only the drafter is built
    LearnedClass(
        "glm5_next", "Glm5NextMTP", "Glm5NextMTPModel", _G5N_ATTN | _G5N_SHARED,
        {
            # stock, measured: the BF16 experts into the packed NVFP4 experts (a, b: no
            # exclusion matches); exact names (c) exclude the experts and the shared
            # down_proj only by accident (quant_utils.py:is_layer_skipped takes a prefix
            # naming "experts" as excluded when an exclusion contains it:
            # "model.layers.2.mlp.experts" is inside
            # "model.language_model.layers.2.mlp.experts.0.gate_proj"), never the fused
            # shared gate_up_proj
            **{("nvfp4", lay): Expected(
                "loud", "RuntimeError",
                f"[while loading {L}.mtp_block.mlp.experts.routed_experts.w2_weight]")
               for lay in "ab"},
            ("nvfp4", "c"): Expected(
                "loud", "AssertionError",
                f"[while loading {L}.mtp_block.mlp.shared_experts.gate_up_proj.weight]"),
            **{("fp8", lay): Expected("silent", wrong=_G5N_FP8_WRONG) for lay in "ab"},
            ("fp8", "c"): Expected("silent", wrong=_G5N_FP8_WRONG[1:2]),
            **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
        },
        mode="draft", engine_args=_HYBRID, kept_bf16=_G5N_ATTN),
    # ---- issue 13i: MuseSparkDSparkForCausalLM ----
    # Muse Spark DSpark (muse_spark/common/dspark.py, method "dspark", V2 model runner):
    # DSpark's loader and Markov head on a Muse layer (q/k/v -> qkv_proj, feed_forward
    # gate/up -> gate_up_proj), built on the draft's own quant config
    # (get_draft_quant_config) whose exclusions vLLM does not rename to runtime names
    LearnedClass(
        "muse_spark_dspark", "MuseSparkDSparkForCausalLM", "MuseSparkDSparkModel",
        _MUSE_LINEAR,
        {
            # stock, measured: nothing matches the runtime names but exact "fc" and
            # "markov_head.markov_w2" (ModelOpt takes an exclusion contained in the
            # prefix, modelopt.py:ModelOptQuantConfigBase.is_layer_excluded): the NVFP4 fc
            # fails first (a, b), else the fused gate_up_proj (c); FP8 holds BF16 data
            **{("nvfp4", lay): Expected("loud", "AssertionError", "[while loading fc.weight]")
               for lay in "ab"},
            ("nvfp4", "c"): Expected("loud", "AssertionError",
                                     "[while loading layers.0.feed_forward.gate_up_proj]"),
            **{("fp8", lay): Expected("silent", wrong=_MUSE_FP8_WRONG) for lay in "ab"},
            ("fp8", "c"): Expected("silent", wrong=_MUSE_FP8_WRONG[:4]),
            **{(s, "g"): _OK for s in ("nvfp4", "fp8")},
        },
        draft="muse_spark_dspark", env=_V2),
    # ---- issue 13k: DFlashLaguna, DFlash2Beam, LiLiCorr (separate drafts) ----
    # DFlash for Laguna (laguna_dflash.py, method "dflash"): a Laguna decoder layer built
    # as model.layers.0 (only its attention layer is numbered after the target's) on the
    # draft's own quant config, with no exclusion remapping (DFlashLagunaModel.__init__
    # does not call map_draft_quant_config); its qkv_proj is stored fused
    LearnedClass(
        "dflash_laguna", "DFlashLagunaForCausalLM", "DFlashLagunaForCausalLM",
        frozenset({f"model.layers.0.self_attn.{m}" for m in ("qkv_proj", "g_proj", "o_proj")}
                  | {f"model.layers.0.mlp.{m}" for m in ("gate_proj", "up_proj", "down_proj")}
                  | {"model.fc"}),
        {
            # stock, measured: neither the wildcards (b) nor nothing (a) names model.fc
            # or model.layers.0.*: the NVFP4 fc gets BF16 data, every FP8 layer holds
            # cast BF16 data; exact names (c) exclude every module (no fused name to miss)
            **{("nvfp4", lay): Expected("loud", "AssertionError", "[while loading fc.weight]")
               for lay in "ab"},
            **{("fp8", lay): Expected("silent", wrong=_LAGUNA_FP8_WRONG) for lay in "ab"},
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "cg"},
        },
        draft="dflash_laguna"),
    # DFlash2 for Beam (models/beam/nvidia/dflash2.py; V2 model runner): every linear
    # layer built with no quant config; a quantized draft's attention/MLP projections
    LearnedClass(
        "dflash2_beam", "DFlash2BeamForCausalLM", "DFlash2BeamDraftModel",
        frozenset({f"{E}.self_attn.qkv_proj", f"{E}.self_attn.o_proj",
                   f"{E}.mlp.gate_up_proj", f"{E}.mlp.down_proj"}),
        {
            # stock, measured: a BF16 draft loads right whatever it declares; a quantized
            # one (g) has scale tensors no layer of the drafter can take
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "abc"},
            **{(s, "g"): Expected("loud", "ValueError", "There is no module or parameter "
                                  "named 'layers.0.mlp.down_proj.input_scale'")
               for s in ("nvfp4", "fp8")},
        },
        draft="dflash2_beam", env=_V2),
    # LiLiCorr (lilicorr.py, method "dflash"; V2 model runner: a candidate-head draft):
    # DFlash's backbone and names plus the lattice correlator lilicorr.*, its projections
    # and MLPs built with the draft's quant config, its edge heads without one
    LearnedClass(
        "lilicorr_qwen3", "LiLiCorrForCausalLM", "LiLiCorrDraftModel",
        _EAGLE_LINEAR | {f"model.lilicorr.{m}" for m in (
            "pass_hidden_proj", "context_proj", "feature_mlp.up_proj", "feature_mlp.down_proj",
            "layers.0.attn.out_proj", "layers.0.mlp.up_proj", "layers.0.mlp.down_proj",
            "anchor_out_head")},
        {
            # stock, measured: DFlash's outcomes (vLLM renames the exclusions to runtime
            # names, lilicorr.* included), plus, with nothing excluded, the correlator's
            # layers: under NVFP4 its 5-wide feature MLP cannot even be built, under FP8
            # each holds cast BF16 data
            **_dflash_stock(*_LILICORR_FP8_WRONG),
            ("nvfp4", "a"): Expected("loud", "ValueError", "Unsupported model when in "
                                     "features size is not multiple of 16 [while loading "
                                     "model.lilicorr.feature_mlp.up_proj]"),
        },
        draft="lilicorr_qwen3", env=_V2,
        kept_bf16=frozenset({"model.lilicorr.feature_mlp.up_proj"})),
    # ---- issue 13h: Gemma4MTP, Gemma4DSparkForCausalLM ----
    LearnedClass(
        "gemma4_mtp", "Gemma4MTP", "Gemma4MTPModel", _GEMMA4_MTP_LINEAR,
        _gemma4_mtp_stock(), draft="gemma4_mtp"),
    LearnedClass(
        "dspark_gemma4", "Gemma4DSparkForCausalLM", "Gemma4DSparkModel", _GEMMA4_DSPARK_LINEAR,
        _gemma4_dspark_stock(), mode="draft", draft="dspark_gemma4", env=_V2,
        limit_note=_GEMMA4_DSPARK_NOTE),
    # ---- issue 13j: InklingMTP ----
    # Inkling (inkling/nvidia/mtp.py): model.mtp.layers.0.* loaded as model.layers.0.* by
    # the drafter's own loader (_load_inkling_mtp_weights); the target's quant config,
    # whose exclusions vLLM maps through the drafter's hf_to_vllm_mapper ("model.mtp." ->
    # "model.", w13_dn/w2_md -> gate_up_proj/down_proj) and packed mapping (qkvr), so
    # exclusions in checkpoint names match (b, c). Nothing excluded (a): the NVFP4 load dies
    # on the first BF16 tensor; under FP8 the BF16 data lands in FP8 parameters, but the
    # drafter's completeness check then fails on the scales the checkpoint lacks. Built alone
    # (its quant config is the target's, which the target's construction does not change).
    LearnedClass(
        "inkling", "InklingMTP", "InklingMTPModel", _INKLING_LINEAR,
        {
            ("nvfp4", "a"): Expected("loud", "AssertionError",
                                     f"[while loading {K}.input_proj.weight]"),
            ("fp8", "a"): Expected("loud", "ValueError",
                                   "Inkling MTP checkpoint is missing required parameters: "
                                   f"{K}.input_proj.input_scale"),
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "bcg"},
        },
        mode="draft"),
    # ---- issue 13j: InternS2MobiusMTP ----
    # Intern-S2-Mobius (interns2_mobius.py): a Qwen3_5MoeMTP built on the draft config
    # (remote-code config in the checkpoint folder: trust_remote_code), whose text config
    # vLLM turns into qwen3_5_moe_text with the MTP layer's own expert count
    # (config/speculative.py:SpeculativeConfig.hf_config_override); stock outcomes as
    # Qwen3_5MoeMTP's: NVFP4 dies on the BF16 experts (a) and, with everything quantized
    # (g), on the NVFP4 mtp.fc that vLLM builds unquantized under modelopt_fp4
    # (qwen3_5_mtp.py); FP8 a loads BF16 data into FP8 layers. Built alone.
    LearnedClass(
        "interns2_mobius", "InternS2MobiusMTP", "InternS2MobiusMTP", _MOBIUS_LINEAR,
        {
            ("nvfp4", "a"): Expected("loud", "RuntimeError",
                                     f"[while loading {X}.mlp.experts.w2_weight]"),
            ("nvfp4", "g"): Expected("loud", "ValueError",
                                     "There is no module or parameter named 'fc.input_scale'"),
            ("fp8", "a"): Expected("silent", wrong=_MOBIUS_FP8_WRONG),
            **{(s, lay): _OK for s in ("nvfp4", "fp8") for lay in "bc"},
            ("fp8", "g"): _OK,
        },
        mode="draft", engine_args={"trust_remote_code": True}),
)


def rotary_rows(heads: tuple[int, int]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The checkpoint as a rotary-reordering drafter loads it (``LearnedClass.qk_rotary``):
    each q/k weight (and non-scalar weight scale) of ``f_out`` rows viewed as
    ``[heads, f_out / heads / 2, 2, ...]`` with its two middle axes swapped."""
    def reorder(tensors: dict[str, Any]) -> dict[str, Any]:
        out = dict(tensors)
        for name, t in tensors.items():
            parts = name.split(".")
            is_q, is_k = "q_proj" in parts, "k_proj" in parts
            if not (is_q or is_k) or not (parts[-1] in ("weight", "weight_packed") or (
                    parts[-1] == "weight_scale" and t.numel() > 1)):
                continue
            x = t.unsqueeze(-1) if t.ndim == 1 else t
            n = heads[1] if is_k else heads[0]
            f_out, f_in = x.shape
            x = x.reshape(n, f_out // n // 2, 2, f_in).transpose(1, 2).reshape(f_out, f_in)
            out[name] = x.squeeze(-1) if t.ndim == 1 else x
        return out
    return reorder


def by_family(family: str) -> LearnedClass:
    return next(c for c in CLASSES if c.family == family)


CASES: list[Case] = [case for c in CLASSES for case in c.cases]
STOCK: dict[Case, Expected] = {(c.family, s, lay): e for c in CLASSES
                               for (s, lay), e in c.stock.items()}
assert set(STOCK) == set(CASES), sorted(set(STOCK) ^ set(CASES))
