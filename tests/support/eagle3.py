"""Tiny Llama targets and EAGLE3 / EAGLE-1 drafts, each in its own folder (numpy only, no torch).

Usage::

    target = write_llama_target(tmp / "llama", LlamaTargetSpec("nvfp4"))
    draft = write_eagle3_draft(tmp / "eagle3", Eagle3Spec(attn="fp8", mlp="fp8", fc="fp8"))
    # EngineArgs(model=target.path, speculative_config={"method": "eagle3",
    #            "model": str(draft.path), "num_speculative_tokens": 1})

The draft follows the EAGLE3 reference export (``LlamaForCausalLMEagle3``, as written
by the EAGLE authors and ModelOpt): one decoder layer stored as ``midlayer.*`` whose
``q/k/v_proj`` read ``2 * hidden`` (embeddings and hidden states concatenated),
``fc`` [hidden, 3 * hidden] (three target hidden states), ``norm``, its own
``lm_head`` over a smaller draft vocabulary, and ``d2t``/``t2d`` vocabulary maps.
vLLM loads it with ``llama_eagle3.py:Eagle3LlamaForCausalLM`` (``midlayer.`` ->
``layers.0.``; its layers are *built* with prefix ``model.layers.{N + k}``, N the
target's layer count).

Each draft module group is stored ``"bf16"`` or quantized (ModelOpt tensor layouts as
in ``factory.py``); ``quant_config`` says where the draft declares it: both
``hf_quant_config.json`` and ``config.json`` (``"hf_quant_config"``, ModelOpt's own
export), ``config.json`` only (``"config_json"``), or nowhere (``"none"``: only the
stored tensors tell). A declared config excludes its BF16 modules by checkpoint name.

``write_eagle_draft`` writes EAGLE-1 drafts (``{"method": "eagle"}``: vLLM prefixes
``Eagle`` to the draft's architecture, ``transformers_utils/configs/eagle.py:EAGLEConfig``)
in the layouts of ``factory.LAYOUTS`` a, b, c and g, the draft's quantization declared in
both ``hf_quant_config.json`` and ``config.json`` (see `EagleSpec`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, Literal, get_args

import numpy as np

from support._families import Linear, Plain
from support._io import write_json, write_safetensors
from support.factory import Format, TensorInfo, _plain_tensor, _quant_tensors
from vllm_draft_quant.demo import tensors as T
from vllm_draft_quant.demo.checkpoint import modelopt_quant_configs

__all__ = [
    "Eagle3Spec",
    "EagleFormat",
    "EagleSpec",
    "LlamaTargetSpec",
    "QuantConfigPlace",
    "WrittenModel",
    "write_eagle3_deepseek_draft",
    "write_eagle3_draft",
    "write_eagle_draft",
    "write_eagle_pair",
    "write_llama_target",
]

EagleFormat = Literal["bf16", "nvfp4", "fp8"]
#: "llama": LlamaForCausalLM target, LlamaForCausalLMEagle3 draft; "qwen3" (issue 13):
#: Qwen3ForCausalLM target (q/k norms), Eagle3Qwen3ForCausalLM draft
#: (``qwen3_eagle3.py``: the same layout plus the draft layer's q/k norms); "cohere": a
#: Llama target with ``layer_types`` (for ``write_eagle_pair``'s EAGLE-Cohere drafts)
#: "laguna" (issue 13k): a dense LagunaForCausalLM (q/k norms, a per-element softplus
#: output gate ``g_proj``), the target of a DFlash-Laguna draft
#: "beam": a dense BeamForCausalLM (q/k norms, a sigmoid output gate ``gate_proj`` with
#: its ``gate_bias``, sandwich norms), the target of a DFlash2-Beam draft
#: "gemma4" (issue 13h): a text-only Gemma4ForCausalLM target (model type
#: ``gemma4_text``: q/k norms, pre/post feed-forward norms, a sliding and a full attention
#: layer, no per-layer embeddings) for the Gemma4 assistant (MTP) and DSpark drafts
EagleFamily = Literal["llama", "qwen3", "cohere", "laguna", "beam", "gemma4"]
QuantConfigPlace = Literal["hf_quant_config", "config_json", "none"]

HIDDEN, INTER, VOCAB, DRAFT_VOCAB = 128, 256, 256, 128
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 32
_GROUPS = ("attn", "mlp", "fc", "lm_head")


class _ExactTensor(T.RawTensor):
    """A raw tensor of a dtype ``_tensors`` does not encode (I64, BOOL)."""

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class LlamaTargetSpec:
    """A tiny ``LlamaForCausalLM``: every decoder linear stored in ``scheme``."""

    scheme: EagleFormat = "bf16"
    num_hidden_layers: int = 2
    seed: int = 0
    family: EagleFamily = "llama"

    def __post_init__(self) -> None:
        if self.scheme not in get_args(EagleFormat):
            raise ValueError(f"scheme={self.scheme!r}: expected one of {get_args(EagleFormat)}")


@dataclass(frozen=True)
class Eagle3Spec:
    """The stored format of each draft group (``fc`` and ``lm_head`` are groups here)."""

    attn: EagleFormat = "bf16"
    mlp: EagleFormat = "bf16"
    fc: EagleFormat = "bf16"
    lm_head: EagleFormat = "bf16"
    quant_config: QuantConfigPlace = "hf_quant_config"
    embed_tokens: bool = False  # most EAGLE3 exports share the target's embedding
    seed: int = 0
    family: EagleFamily = "llama"

    def __post_init__(self) -> None:
        for g in _GROUPS:
            if self.of(g) not in get_args(EagleFormat):
                raise ValueError(f"{g}={self.of(g)!r}: expected one of {get_args(EagleFormat)}")
        if len(self.schemes()) > 1:
            raise ValueError(f"one quantization scheme per draft, got {sorted(self.schemes())}")
        if self.quant_config not in get_args(QuantConfigPlace):
            raise ValueError(
                f"quant_config={self.quant_config!r}: expected one of {get_args(QuantConfigPlace)}"
            )

    def of(self, group: str) -> EagleFormat:
        fmt: EagleFormat = getattr(self, group)
        return fmt

    def schemes(self) -> set[EagleFormat]:
        return {self.of(g) for g in _GROUPS} - {"bf16"}


@dataclass
class WrittenModel:
    """What was written: tensors (``mtp`` marks draft tensors), module formats, configs."""

    path: Path
    tensors: dict[str, TensorInfo]
    module_formats: dict[str, Format]
    exclusions: list[str]
    config: dict[str, Any]
    hf_quant_config: dict[str, Any] | None

    def stored_format(self, name: str) -> Format:
        if name in self.tensors:
            return self.tensors[name].format
        return self.module_formats[name]


#: family -> (target config keys, draft config keys) that differ from Llama's
_QWEN3: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "llama": ({}, {"architectures": ["LlamaForCausalLMEagle3"]}),
    # a Llama target with Cohere-2's per-layer attention types: an EAGLE-Cohere draft
    # indexes the target's layer_types with its own (cohere_eagle.py:CohereEagleModel)
    "cohere": ({"layer_types": ["full_attention"] * 2}, {}),
    "qwen3": ({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"},
              {"architectures": ["Eagle3Qwen3ForCausalLM"], "model_type": "qwen3"}),
    # ---- issue 13k: a dense Laguna target (laguna.py:LagunaForCausalLM) ----
    "laguna": ({"architectures": ["LagunaForCausalLM"], "model_type": "laguna",
                "mlp_layer_types": ["dense"] * 2, "layer_types": ["full_attention"] * 2,
                "gating": "per-element", "num_experts": 0, "rms_norm_eps": 1e-6,
                "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}, {}),
    # a dense Beam target (models/beam/nvidia/model.py:BeamForCausalLM), sliding layers
    "beam": ({"architectures": ["BeamForCausalLM"], "model_type": "beam",
              "mlp_layer_types": ["dense"] * 2, "layer_types": ["sliding_attention"] * 2,
              "sliding_window": 64, "rms_norm_eps": 1e-6,
              "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0}}, {}),
}


#: the Gemma4 text config keys of a tiny model (transformers' ``Gemma4TextConfig``):
#: every layer of one head size (``global_head_dim`` too), no per-layer embeddings
_GEMMA4_TEXT: dict[str, Any] = {
    "model_type": "gemma4_text", "hidden_activation": "gelu_pytorch_tanh",
    "global_head_dim": HEAD_DIM, "sliding_window": 64, "hidden_size_per_layer_input": 0,
    "vocab_size_per_layer_input": 0, "num_kv_shared_layers": 0, "final_logit_softcapping": None,
}
_QWEN3["gemma4"] = ({**_GEMMA4_TEXT, "architectures": ["Gemma4ForCausalLM"],
                     "layer_types": ["sliding_attention", "full_attention"]}, {})


def _gemma4_norms(m: str, mtp: int | None) -> list[Plain]:
    """A Gemma4 decoder layer's norms beyond Llama's: q/k norms and the feed-forward pair."""
    return [*_qk_norms(f"{m}.self_attn", mtp),
            *(Plain(f"{m}.{n}.weight", (HIDDEN,), mtp, init="ones")
              for n in ("pre_feedforward_layernorm", "post_feedforward_layernorm"))]


def _qk_norms(attn: str, mtp: int | None) -> list[Plain]:
    return [Plain(f"{attn}.{n}.weight", (HEAD_DIM,), mtp, init="ones") for n in ("q_norm", "k_norm")]


def _llama_config(num_layers: int, **extra: Any) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": HIDDEN,
        "intermediate_size": INTER,
        "num_hidden_layers": num_layers,
        "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS,
        "head_dim": HEAD_DIM,
        "vocab_size": VOCAB,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0,
        "hidden_act": "silu",
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "bos_token_id": 1,
        "eos_token_id": 2,
        **extra,
    }


def _write(
    root: Path,
    linears: Sequence[tuple[Linear, Format]],
    plains: list[Plain],
    extra: list[tuple[str, T.RawTensor]],
    seed: int,
    draft: bool,
) -> dict[str, TensorInfo]:
    root.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, T.RawTensor, str, Format]] = []
    for lin, fmt in linears:
        for name, t in _quant_tensors(lin, fmt, "modelopt", seed):
            rows.append((name, t, lin.name, fmt))
    for p in plains:
        rows.append((p.name, _plain_tensor(p, seed), p.name.rsplit(".", 1)[0], "bf16"))
    for name, t in extra:
        rows.append((name, t, name, "bf16"))
    rows.sort(key=lambda r: r[0])
    write_safetensors(root / "model.safetensors", [(r[0], r[1]) for r in rows], {"format": "pt"})
    write_json(root / "generation_config.json", {"_from_model_config": True})
    return {
        name: TensorInfo(t.dtype, t.shape, "model.safetensors", module, fmt, draft)
        for name, t, module, fmt in rows
    }


def _write_draft_config(
    root: Path,
    spec: Eagle3Spec,
    linears: Sequence[tuple[Linear, Format]],
    tensors: dict[str, TensorInfo],
    config: dict[str, Any],
) -> WrittenModel:
    """Declare the draft's quantization where ``spec.quant_config`` says (its BF16 linears
    excluded by checkpoint name), write ``config.json`` and describe what was written."""
    schemes = spec.schemes()
    scheme = schemes.pop() if schemes and spec.quant_config != "none" else None
    return _declare(root, scheme, [lin.name for lin, f in linears if f == "bf16"],
                    spec.quant_config, linears, tensors, config)


def _declare(
    root: Path,
    scheme: EagleFormat | None,
    exclusions: list[str],
    place: QuantConfigPlace,
    linears: Sequence[tuple[Linear, Format]],
    tensors: dict[str, TensorInfo],
    config: dict[str, Any],
) -> WrittenModel:
    """Declare ``scheme`` excluding ``exclusions`` where ``place`` says (nothing when
    ``scheme`` is None), write ``config.json`` and describe what was written."""
    hf_quant = None
    if scheme is not None and place != "none":
        qc, hq = modelopt_quant_configs(scheme, exclusions)
        config["quantization_config"] = qc
        if place == "hf_quant_config":
            hf_quant = hq
            write_json(root / "hf_quant_config.json", hq)
    else:
        exclusions = []
    write_json(root / "config.json", config)
    return WrittenModel(
        root, tensors, {lin.name: f for lin, f in linears}, exclusions, config, hf_quant
    )


def write_llama_target(path: str | os.PathLike[str], spec: LlamaTargetSpec) -> WrittenModel:
    """A tiny Llama target; quantized ones keep ``lm_head`` BF16 (excluded, as exports do)."""
    root = Path(path)
    linears: list[tuple[Linear, Format]] = []
    plains = [
        Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), None),
        Plain("model.norm.weight", (HIDDEN,), None, init="ones"),
    ]
    for i in range(spec.num_hidden_layers):
        p = f"model.layers.{i}"
        for name, out, inp in (
            ("self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN),
            ("self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN),
            ("self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN),
            ("self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM),
            ("mlp.gate_proj", INTER, HIDDEN),
            ("mlp.up_proj", INTER, HIDDEN),
            ("mlp.down_proj", HIDDEN, INTER),
        ):
            linears.append((Linear(f"{p}.{name}", out, inp, None, "target"), spec.scheme))
        plains += [
            Plain(f"{p}.input_layernorm.weight", (HIDDEN,), None, init="ones"),
            Plain(f"{p}.post_attention_layernorm.weight", (HIDDEN,), None, init="ones"),
        ]
        if spec.family in ("qwen3", "laguna", "beam"):
            plains += _qk_norms(f"{p}.self_attn", None)
        elif spec.family == "gemma4":
            plains += _gemma4_norms(p, None)
        if spec.family in ("laguna", "beam"):  # the output gate
            gate = "g_proj" if spec.family == "laguna" else "gate_proj"
            linears.append((Linear(f"{p}.self_attn.{gate}", HEADS * HEAD_DIM, HIDDEN, None,
                                   "target"), spec.scheme))
        if spec.family == "beam":
            plains += [Plain(f"{p}.self_attn.gate_bias", (HEADS,), None),
                       *(Plain(f"{p}.{n}.weight", (HIDDEN,), None, init="ones")
                         for n in ("pre_feedforward_layernorm", "post_feedforward_layernorm"))]
    linears.append((Linear("lm_head", VOCAB, HIDDEN, None, "router", False), "bf16"))
    tensors = _write(root, linears, plains, [], spec.seed, draft=False)
    config = _llama_config(spec.num_hidden_layers, **_QWEN3[spec.family][0])
    if spec.family == "gemma4":  # Gemma4TextConfig's own rope and activation keys
        del config["rope_theta"], config["hidden_act"]
    hf_quant = None
    exclusions: list[str] = []
    if spec.scheme != "bf16":
        exclusions = ["lm_head"]
        qc, hf_quant = modelopt_quant_configs(spec.scheme, exclusions)
        config["quantization_config"] = qc
        write_json(root / "hf_quant_config.json", hf_quant)
    write_json(root / "config.json", config)
    return WrittenModel(
        root, tensors, {lin.name: f for lin, f in linears}, exclusions, config, hf_quant
    )


def write_eagle3_draft(path: str | os.PathLike[str], spec: Eagle3Spec) -> WrittenModel:
    """A tiny EAGLE3 draft for ``write_llama_target``'s models (same hidden size and vocab)."""
    root = Path(path)
    m = "midlayer"
    groups = {
        "attn": [
            (f"{m}.self_attn.q_proj", HEADS * HEAD_DIM, 2 * HIDDEN),
            (f"{m}.self_attn.k_proj", KV_HEADS * HEAD_DIM, 2 * HIDDEN),
            (f"{m}.self_attn.v_proj", KV_HEADS * HEAD_DIM, 2 * HIDDEN),
            (f"{m}.self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM),
        ],
        "mlp": [
            (f"{m}.mlp.gate_proj", INTER, HIDDEN),
            (f"{m}.mlp.up_proj", INTER, HIDDEN),
            (f"{m}.mlp.down_proj", HIDDEN, INTER),
        ],
        "fc": [("fc", HIDDEN, 3 * HIDDEN)],
        "lm_head": [("lm_head", DRAFT_VOCAB, HIDDEN)],
    }
    linears = _linears(groups, spec.of)
    plains = [
        Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
        for n in ("input_layernorm", "hidden_norm", "post_attention_layernorm")
    ]
    plains.append(Plain("norm.weight", (HIDDEN,), 0, init="ones"))
    if spec.family == "qwen3":
        plains += _qk_norms(f"{m}.self_attn", 0)
    if spec.embed_tokens:
        plains.append(Plain("embed_tokens.weight", (VOCAB, HIDDEN), 0))
    # d2t[i]: offset from draft token i to its target id; t2d: which target ids the draft has
    rng = T.rng_for(spec.seed, "d2t")
    ids = np.sort(rng.choice(VOCAB, size=DRAFT_VOCAB, replace=False)).astype("<i8")
    d2t = ids - np.arange(DRAFT_VOCAB, dtype="<i8")
    t2d = np.zeros(VOCAB, dtype=np.uint8)
    t2d[ids] = 1
    extra: list[tuple[str, T.RawTensor]] = [
        ("d2t", _ExactTensor("I64", (DRAFT_VOCAB,), d2t.tobytes())),
        ("t2d", _ExactTensor("BOOL", (VOCAB,), t2d.tobytes())),
    ]
    tensors = _write(root, linears, plains, extra, spec.seed, draft=True)
    config = _llama_config(1, **{**_QWEN3[spec.family][1], "draft_vocab_size": DRAFT_VOCAB})
    return _write_draft_config(root, spec, linears, tensors, config)


def write_eagle3_deepseek_draft(path: str | os.PathLike[str], spec: Eagle3Spec) -> WrittenModel:
    """A tiny EAGLE3 draft for a DeepSeek-V3 target (``support.factory``'s ``deepseek_v3``
    family, same hidden size and vocabulary): ``Eagle3DeepseekV2ForCausalLM``
    (``deepseek_eagle3.py``), one ``midlayer`` with DeepSeek's MLA whose ``q_a_proj`` and
    ``kv_a_proj_with_mqa`` read ``2 * hidden``, a dense MLP, ``fc`` and ``lm_head``.
    ``spec.lm_head`` must be "bf16": vLLM builds this drafter's head without a quant
    config."""
    from support import _families as F

    if spec.lm_head != "bf16":
        raise ValueError("Eagle3DeepseekV2ForCausalLM builds lm_head unquantized: keep it bf16")
    root = Path(path)
    m = "midlayer"
    a = f"{m}.self_attn"
    groups = {
        "attn": [
            (f"{a}.q_a_proj", F.Q_LORA, 2 * HIDDEN),
            (f"{a}.q_b_proj", F.HEADS * (F.NOPE + F.ROPE), F.Q_LORA),
            (f"{a}.kv_a_proj_with_mqa", F.KV_LORA + F.ROPE, 2 * HIDDEN),
            (f"{a}.kv_b_proj", F.HEADS * (F.NOPE + F.V_DIM), F.KV_LORA),
            (f"{a}.o_proj", HIDDEN, F.HEADS * F.V_DIM),
        ],
        "mlp": [
            (f"{m}.mlp.gate_proj", INTER, HIDDEN),
            (f"{m}.mlp.up_proj", INTER, HIDDEN),
            (f"{m}.mlp.down_proj", HIDDEN, INTER),
        ],
        "fc": [("fc", HIDDEN, 3 * HIDDEN)],
        "lm_head": [("lm_head", DRAFT_VOCAB, HIDDEN)],
    }
    linears = _linears(groups, spec.of)
    plains = [
        Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
        for n in ("input_layernorm", "hidden_norm", "post_attention_layernorm")
    ]
    plains += [Plain(f"{a}.q_a_layernorm.weight", (F.Q_LORA,), 0, init="ones"),
               Plain(f"{a}.kv_a_layernorm.weight", (F.KV_LORA,), 0, init="ones"),
               Plain("norm.weight", (HIDDEN,), 0, init="ones")]
    rng = T.rng_for(spec.seed, "d2t")
    ids = np.sort(rng.choice(VOCAB, size=DRAFT_VOCAB, replace=False)).astype("<i8")
    extra: list[tuple[str, T.RawTensor]] = [
        ("d2t", _ExactTensor("I64", (DRAFT_VOCAB,),
                             (ids - np.arange(DRAFT_VOCAB, dtype="<i8")).tobytes())),
    ]
    tensors = _write(root, linears, plains, extra, spec.seed, draft=True)
    config = dict(F.deepseek_v3(1).config)
    # model type deepseek_v2: config/speculative.py turns a "deepseek_v3" draft config
    # into DeepSeek's MTP drafter ("Eagle3DeepSeekMTPModel", which does not exist)
    config.update({"architectures": ["Eagle3DeepseekV2ForCausalLM"], "model_type": "deepseek_v2",
                   "num_hidden_layers": 1,
                   "num_nextn_predict_layers": 0, "intermediate_size": INTER,
                   "draft_vocab_size": DRAFT_VOCAB})
    return _write_draft_config(root, spec, linears, tensors, config)


# ------------------------------------------------------------------------- EAGLE-1
#: EAGLE-1 draft families, each beside the target vLLM is given with it:
#: - "llama" (the reference export of yuhuili/EAGLE-LLaMA3-*): ``layers.0.*`` without an
#:   input norm, ``fc`` [hidden, 2 * hidden] (quantizable), its own ``embed_tokens``;
#:   ``LlamaForCausalLM`` -> ``llama_eagle.py:EagleLlamaForCausalLM``; "mistral":
#:   ``model.layers.0.*`` (both norms), ``model.fc`` (quantizable), ``model.norm``, no
#:   embedding (shared), ``MistralForCausalLM`` ->
#:   ``mistral_eagle.py:EagleMistralForCausalLM``; "cohere": the same names with one
#:   ``input_layernorm`` (Cohere's parallel block) and a ``model.fc.bias``,
#:   ``CohereForCausalLM`` -> ``cohere_eagle.py:EagleCohereForCausalLM``; all three beside
#:   ``write_llama_target``'s target;
#: - "minicpm": ``model.eagle_layers.0.*`` (MiniCPM attention and MLP, both norms),
#:   ``model.fc`` (a plain ``torch.nn.Linear``), ``model.input_norm{1,2}``,
#:   ``model.embed_tokens``, ``model.norm``, ``lm_head``; ``MiniCPMForCausalLM`` (config
#:   keys of model type ``llama``: MiniCPM is remote code) ->
#:   ``minicpm_eagle.py:EagleMiniCPMForCausalLM``, beside the Llama target;
#: - "deepseek": ``layers.0.*`` (DeepSeek-V3 MLA and MoE, ``support._families``' layer),
#:   ``fc`` (plain), ``enorm``/``hnorm``/``norm``, ``lm_head`` (no embedding: vLLM
#:   shares the target's, ``utils.py:process_eagle_weight``); model
#:   type ``deepseek_v3`` (``config/speculative.py:hf_config_override`` makes it
#:   ``DeepSeekMTPModel``) -> ``deepseek_eagle.py:EagleDeepseekV3ForCausalLM``
#:   (``EagleDeepSeekMTPModel``), beside ``support.factory``'s ``deepseek_v3`` target
#:   without MTP layers.
#: - "llama4" (issue 13g): ``model.layers.0.*`` (Llama-4 attention, its q/k norms
#:   weightless; a dense ``feed_forward``), ``model.fc`` (a plain ``torch.nn.Linear``),
#:   both norms and ``model.norm``, no embedding or head (shared); ``Llama4ForCausalLM``
#:   of model type ``llama4_text`` with what the drafter asserts
#:   (``llama4_eagle.py:LlamaModel.validate_and_update_config``: no yoco layers, no MoE
#:   layers) and no chunked attention -> ``llama4_eagle.py:EagleLlama4ForCausalLM``,
#:   beside ``write_llama_target``'s target. vLLM reorders q/k rows for its rotary
#:   layout at load (``llama4.py:Llama4ForCausalLM.permute_qk_weight_for_rotary``).
#: - "dflash_qwen3" (issue 13g; method ``dflash``, not EAGLE-1, written the same way):
#:   the z-lab DFlash export, ``layers.0.*`` (Qwen3 attention with q/k norms, MLP, both
#:   norms), ``fc`` [hidden, 2 * hidden] over the target's layers 0 and 1
#:   (``dflash_config.target_layer_ids``; a quantizable ``ReplicatedLinear``),
#:   ``hidden_norm``, ``norm``; ``DFlashDraftModel`` of model type ``qwen3`` ->
#:   ``qwen3_dflash.py:DFlashQwen3ForCausalLM``, beside a Qwen3 ``write_llama_target``.
#: - "dspark_qwen3" (method ``dspark``): the DFlash layout plus DSpark's Markov head,
#:   ``markov_head.markov_w1`` (an embedding) and ``markov_head.markov_w2`` (a
#:   ``ParallelLMHead`` built with the draft's quant config, stored BF16 as exports keep
#:   heads); ``Qwen3DSparkModel`` of model type ``qwen3`` (not wrapped in vLLM's
#:   ``EAGLEConfig``: ``target_layer_ids`` and ``markov_rank`` at the top level) ->
#:   ``qwen3_dspark.py:Qwen3DSparkForCausalLM``.
#: - "mistral_large3": a DeepSeek-V3 layer in HF names, ``model.layers.0.*`` (MLA and,
#:   past the draft's shifted ``first_k_dense_replace``, a dense MLP), ``model.fc``
#:   (a quantizable ``RowParallelLinear``), both norms and ``model.norm``;
#:   ``MistralLarge3ForCausalLM`` of model type ``deepseek_v3``
#:   (``config/speculative.py:hf_config_override`` names it
#:   ``EagleMistralLarge3ForCausalLM``) ->
#:   ``mistral_large_3_eagle.py:EagleMistralLarge3ForCausalLM``, beside the
#:   ``deepseek_v3`` target.
#: - "xpress_qwen3" (method ``dflash``): the DFlash layout plus the XPress refiner,
#:   ``xpress_head.*`` (plain ``torch.nn.Linear`` layers, an embedding and the raw mixer
#:   ``mix.L``, all BF16 plain tensors here); ``Qwen3XPressModel`` of model type ``qwen3``
#:   (vLLM's ``EAGLEConfig`` names it ``DFlashQwen3XPressModel``) ->
#:   ``qwen3_xpress.py:Qwen3XPressForCausalLM``.
#: - "gemma4_mtp" (issue 13h; method ``mtp``): the Gemma4 assistant, ``model.layers.0.*``
#:   (Q-only attention), ``pre_projection``/``post_projection``, ``model.embed_tokens``
#:   (its head tied to it: excluded by name as exports do), beside the ``gemma4`` target;
#:   "dspark_gemma4" (method ``dspark``): ``Gemma4DSparkModel``, ``layers.0.*`` with its
#:   own K (``attention_k_eq_v``), ``fc``, the Markov head, ``lm_head`` (see the writers).
#: - "dflash2_qwen3" (method ``dflash``): the DFlash layout plus, per layer, two grouped
#:   convolutions (``attention_conv``/``mlp_conv``: a ``base_kernel`` and a quantizable
#:   ``kernel_projection``) and a ``candidate_selector`` (two codebooks and a
#:   ``hidden_projection`` vLLM builds without a quant config); ``DFlash2DraftModel`` ->
#:   ``qwen3_dflash2.py:DFlash2Qwen3ForCausalLM``.
#: - "muse_spark_dspark" (issue 13i; method ``dspark``): a dense Muse Spark DSpark draft,
#:   ``layers.0.*`` (a Muse layer: q/k/v/o, ``feed_forward`` gate/up/down, affine
#:   pre-norms), ``fc`` (quantizable), ``hidden_norm``, ``norm``, DSpark's Markov head,
#:   its own ``lm_head`` and ``d2t``; model type ``muse_spark_dspark`` (vLLM's
#:   ``MuseSparkDSparkConfig``) -> ``muse_spark/common/dspark.py:
#:   MuseSparkDSparkForCausalLM``, beside the Qwen3 target (public drafts sit beside a
#:   multimodal Muse Spark target; the drafter's construction and load read only the
#:   target's layer count and vocabulary size, not its model class).
#: - "k3_dspark" (issue 13l; method ``dspark``): Kimi-K3's dense MLA DSpark draft,
#:   ``layers.0.*`` (DeepSeek-V3 MLA names, ``support._families``' ``_mla``, and a dense
#:   MLP), ``context_proj`` [hidden, 2 * hidden] over the target's layers 0 and 1 (a
#:   quantizable ``ReplicatedLinear``), ``context_norm``, ``final_norm`` and DSpark's
#:   Markov head (as "dspark_qwen3"'s); no embedding or head (shared with the target);
#:   ``K3DSparkModel`` of model type ``k3_dspark`` (``configs/k3_dspark.py``) ->
#:   ``kimi_k3/nvidia/dspark_mla.py:K3DSparkForCausalLM``, which also loads each layer's
#:   ``kv_a_proj_with_mqa`` into its cross-layer ``context_kv_proj``
#:   (``_duplicate_context_kv_weights``); beside `write_kimi_k3_target`'s target.
Eagle1Family = Literal["llama", "mistral", "cohere", "minicpm", "deepseek", "llama4",
                       "dflash_qwen3", "dspark_qwen3", "mistral_large3", "xpress_qwen3",
                       "dflash2_qwen3", "muse_spark_dspark", "dflash_laguna",
                       "lilicorr_qwen3", "dflash2_beam", "gemma4_mtp", "dspark_gemma4",
                       "k3_dspark"]
#: the ``speculative_config`` method of each family not drafted as EAGLE-1
_METHOD: dict[str, str] = {"dflash_qwen3": "dflash", "dspark_qwen3": "dspark",
                           "xpress_qwen3": "dflash", "dflash2_qwen3": "dflash",
                           "muse_spark_dspark": "dspark",
                           "dflash_laguna": "dflash", "lilicorr_qwen3": "dflash",
                           "dflash2_beam": "dflash",
                           "gemma4_mtp": "mtp", "dspark_gemma4": "dspark",
                           "k3_dspark": "dspark"}
#: drafts beside ``write_llama_target``'s Gemma4 target (issue 13h)
_GEMMA4_DRAFTS = ("gemma4_mtp", "dspark_gemma4")
_QWEN3_DRAFTS = ("dflash_qwen3", "dspark_qwen3", "xpress_qwen3", "dflash2_qwen3",
                 "muse_spark_dspark", "lilicorr_qwen3")
MARKOV_RANK = 32
#: ``factory.LAYOUTS`` for a separate draft folder that declares the target's scheme:
#: a BF16 draft excluding nothing of its own (a config copied from the target), b the
#: same excluding each draft root by one wildcard, c every BF16 module by exact name; g a
#: quantized draft (its plain ``torch.nn.Linear`` layers and ``lm_head`` BF16, excluded
#: by exact name). ``lm_head``, where the draft has one, stays BF16 and excluded by
#: exact name, as exports do.
EagleLayout = Literal["a", "b", "c", "g"]


@dataclass(frozen=True)
class EagleSpec:
    """A separate EAGLE-1 draft of ``family`` declaring ``scheme`` as ``layout`` says."""

    family: Eagle1Family = "llama"
    scheme: Literal["nvfp4", "fp8"] = "nvfp4"
    layout: EagleLayout = "a"
    seed: int = 1
    #: a head tied to the draft's embedding is excluded by name, as ModelOpt exports do;
    #: False: the quant config says nothing of it (it is quantized by the config's word)
    exclude_tied_head: bool = True

    def __post_init__(self) -> None:
        for field_, allowed in (("family", Eagle1Family), ("layout", EagleLayout)):
            if getattr(self, field_) not in get_args(allowed):
                raise ValueError(f"{field_}={getattr(self, field_)!r}: expected one of "
                                 f"{get_args(allowed)}")


def _linears(groups: dict[str, list[tuple[str, int, int]]],
             fmt: Any) -> list[tuple[Linear, Format]]:
    """(Linear, stored format) per module of ``groups`` (``fmt(group)``: its format)."""
    return [(Linear(name, out, inp, 0, "head" if g in ("fc", "lm_head") else g),  # type: ignore[arg-type]
             fmt(g))
            for g, mods in groups.items() for name, out, inp in mods]


_Draft1 = tuple[list[Linear], list[Plain], list[str], dict[str, Any]]


def _llama_like(m: str, arch: str, model_type: str) -> _Draft1:
    """A Llama decoder layer at ``m`` (sizes of this module's Llama target)."""
    groups = {
        "attn": [(f"{m}.self_attn.q_proj", HEADS * HEAD_DIM, HIDDEN),
                 (f"{m}.self_attn.k_proj", KV_HEADS * HEAD_DIM, HIDDEN),
                 (f"{m}.self_attn.v_proj", KV_HEADS * HEAD_DIM, HIDDEN),
                 (f"{m}.self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM)],
        "mlp": [(f"{m}.mlp.gate_proj", INTER, HIDDEN), (f"{m}.mlp.up_proj", INTER, HIDDEN),
                (f"{m}.mlp.down_proj", HIDDEN, INTER)],
    }
    linears = [lin for lin, _ in _linears(groups, lambda g: "bf16")]
    return linears, [], [f"{m}*"], _llama_config(1, architectures=[arch], model_type=model_type)


def _eagle1_llama() -> _Draft1:
    linears, plains, roots, config = _llama_like("layers.0", "LlamaForCausalLM", "llama")
    linears.append(Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head"))
    # layer 0 has no input norm (llama_eagle.py:LlamaDecoderLayer, disable_input_layernorm)
    plains += [Plain("layers.0.post_attention_layernorm.weight", (HIDDEN,), 0, init="ones"),
               Plain("embed_tokens.weight", (VOCAB, HIDDEN), 0)]
    return linears, plains, [*roots, "fc*"], config


def _eagle1_hf(arch: str, model_type: str, norms: tuple[str, ...]) -> _Draft1:
    """``model.layers.0.*`` (its ``norms``), ``model.fc``, ``model.norm``; no embedding."""
    m = "model.layers.0"
    linears, plains, roots, config = _llama_like(m, arch, model_type)
    linears.append(Linear("model.fc", HIDDEN, 2 * HIDDEN, 0, "head"))
    plains += [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones") for n in norms]
    plains.append(Plain("model.norm.weight", (HIDDEN,), 0, init="ones"))
    return linears, plains, [*roots, "model.fc*"], config


def _eagle1_cohere() -> _Draft1:
    linears, plains, roots, config = _eagle1_hf("CohereForCausalLM", "cohere",
                                                ("input_layernorm",))
    plains.append(Plain("model.fc.bias", (HIDDEN,), 0))  # cohere_eagle.py: fc has a bias
    config.update(layer_norm_eps=1e-5, logit_scale=1.0, use_qk_norm=False,
                  layer_types=["full_attention"])
    return linears, plains, roots, config


def _eagle1_llama4() -> _Draft1:
    m = "model.layers.0"
    linears, plains, _, config = _eagle1_hf("Llama4ForCausalLM", "llama4_text", (
        "input_layernorm", "post_attention_layernorm"))
    linears = [replace(lin, name=lin.name.replace(".mlp.", ".feed_forward."))
               for lin in linears if lin.name != "model.fc"]
    linears.append(Linear("model.fc", HIDDEN, 2 * HIDDEN, 0, "head", False))
    config.update(intermediate_size_mlp=INTER, moe_layers=[], interleave_moe_layer_step=0,
                  no_rope_layers=[1], attention_chunk_size=None, use_qk_norm=True,
                  yoco_global_kv_layer=None, yoco_local_kv_layer=None,
                  draft_vocab_size=VOCAB)
    return linears, plains, [f"{m}*"], config


def _dflash_qwen3() -> _Draft1:
    m = "layers.0"
    linears, plains, roots, config = _llama_like(m, "DFlashDraftModel", "qwen3")
    linears.append(Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head"))
    plains += [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
               for n in ("input_layernorm", "post_attention_layernorm")]
    plains += _qk_norms(f"{m}.self_attn", 0)
    plains += [Plain(f"{n}.weight", (HIDDEN,), 0, init="ones") for n in ("hidden_norm", "norm")]
    config.update(dflash_config={"target_layer_ids": [0, 1], "mask_token_id": VOCAB - 1},
                  block_size=2)
    return linears, plains, [*roots, "fc*"], config


def _dspark_qwen3() -> _Draft1:
    linears, plains, roots, config = _dflash_qwen3()
    linears.append(Linear("markov_head.markov_w2", VOCAB, MARKOV_RANK, 0, "head", False))
    plains.append(Plain("markov_head.markov_w1.weight", (VOCAB, MARKOV_RANK), 0))
    del config["dflash_config"]
    config.update(architectures=["Qwen3DSparkModel"], target_layer_ids=[0, 1],
                  mask_token_id=VOCAB - 1, markov_rank=MARKOV_RANK)
    return linears, plains, roots, config


def _k3_dspark() -> _Draft1:
    from support import _families as F

    m = "layers.0"
    attn, attn_norms = F._mla(m, 0)
    linears = [*attn, *F._mlp(f"{m}.mlp", F.DENSE_INTER, 0),
               Linear("context_proj", HIDDEN, 2 * HIDDEN, 0, "head"),
               Linear("markov_head.markov_w2", VOCAB, MARKOV_RANK, 0, "head", False)]
    plains = [*attn_norms, *F.layer_norms(m, 0),
              Plain("markov_head.markov_w1.weight", (VOCAB, MARKOV_RANK), 0),
              *(Plain(f"{n}.weight", (HIDDEN,), 0, init="ones")
                for n in ("context_norm", "final_norm"))]
    config = {"architectures": ["K3DSparkModel"], "model_type": "k3_dspark",
              "hidden_size": HIDDEN, "intermediate_size": F.DENSE_INTER,
              "num_hidden_layers": 1, "num_attention_heads": F.HEADS,
              "num_key_value_heads": F.HEADS, "q_lora_rank": F.Q_LORA,
              "kv_lora_rank": F.KV_LORA, "qk_nope_head_dim": F.NOPE,
              "qk_rope_head_dim": F.ROPE, "v_head_dim": F.V_DIM, "vocab_size": VOCAB,
              "target_hidden_size": HIDDEN, "num_target_layers": 2,
              "target_layer_ids": [0, 1], "markov_rank": MARKOV_RANK, "hidden_act": "silu",
              "rms_norm_eps": 1e-6, "max_position_embeddings": 4096,
              "torch_dtype": "bfloat16", "block_size": 2, "mask_token_id": VOCAB - 1}
    return linears, plains, [f"{m}*", "context_proj*"], config


#: Kimi-K3's text config (vLLM's ``kimi_k3`` config nests a ``KimiLinearConfig``): latent
#: attention, target layer 1 KDA (a hybrid: ``mamba_block_size`` = max_model_len on CPU)
KIMI_K3_TEXT: dict[str, Any] = {
    "model_type": "kimi_linear", "hidden_size": HIDDEN, "intermediate_size": INTER,
    "num_hidden_layers": 2, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
    "head_dim": HEAD_DIM, "vocab_size": VOCAB, "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
    "q_lora_rank": 64, "kv_lora_rank": 64, "qk_nope_head_dim": 32, "qk_rope_head_dim": 0,
    "v_head_dim": 32, "mla_use_nope": True, "num_nextn_predict_layers": 0,
    "linear_attn_config": {"kda_layers": [1], "full_attn_layers": [2, 3], "head_dim": 32,
                           "num_heads": 4, "short_conv_kernel_size": 4}}


def write_kimi_k3_target(path: str | os.PathLike[str], scheme: EagleFormat) -> WrittenModel:
    """A Kimi-K3 target's ``config.json`` declaring ``scheme`` (``lm_head`` excluded) and
    its embedding: only its drafter is built (the drafter alone: see ``learned_cases.py``)."""
    root = Path(path)
    tensors = _write(root, [], [Plain("language_model.model.embed_tokens.weight",
                                      (VOCAB, HIDDEN), None)], [], 0, draft=False)
    config = {"architectures": ["KimiK3ForConditionalGeneration"], "model_type": "kimi_k3",
              "text_config": dict(KIMI_K3_TEXT)}
    return _declare(root, None if scheme == "bf16" else scheme, ["lm_head"],
                    "hf_quant_config", [], tensors, config)


def _eagle1_mistral_large3() -> _Draft1:
    from support import _families as F

    m = "model.layers.0"
    attn, attn_norms = F._mla(m, 0)
    linears = [*attn, *F._mlp(f"{m}.mlp", F.DENSE_INTER, 0),
               Linear("model.fc", HIDDEN, 2 * HIDDEN, 0, "head")]
    plains = [*attn_norms, *F.layer_norms(m, 0),
              Plain("model.norm.weight", (HIDDEN,), 0, init="ones")]
    config = {**F.deepseek_v3(1).config, "architectures": ["MistralLarge3ForCausalLM"],
              "num_hidden_layers": 1, "num_nextn_predict_layers": 1}
    return linears, plains, [f"{m}*", "model.fc*"], config


def _xpress_qwen3() -> _Draft1:
    linears, plains, roots, config = _dflash_qwen3()
    r, block, mlp = 16, 2, 32
    plains += [Plain(f"xpress_head.{n}", shape, 0) for n, shape in (
        ("w1.weight", (VOCAB, r)), ("down_h.weight", (r, HIDDEN)),
        ("down_g.weight", (r, HIDDEN)), ("in_proj.weight", (r, 3 * r)),
        ("mix.L", (r, block, block)), ("mlp.gate_proj.weight", (mlp, r)),
        ("mlp.up_proj.weight", (mlp, r)), ("mlp.down_proj.weight", (r, mlp)),
        ("w2.weight", (VOCAB, r)))]
    config.update(architectures=["Qwen3XPressModel"], xpress_block_size=block,
                  xpress_rank=r, xpress_mlp_hidden=mlp, xpress_topc=0,
                  xpress_compile_head=False)
    return linears, plains, roots, config


def _dflash2_qwen3() -> _Draft1:
    linears, plains, roots, config = _dflash_qwen3()
    taps, group, rank = 2, 32, 16
    for conv in ("attention_conv", "mlp_conv"):
        linears.append(Linear(f"layers.0.{conv}.kernel_projection",
                              2 * taps * (HIDDEN // group), HIDDEN, 0, "mlp"))
        plains.append(Plain(f"layers.0.{conv}.base_kernel", (2, taps, HIDDEN), 0))
    linears.append(Linear("candidate_selector.hidden_projection", rank, HIDDEN, 0, "head",
                          False))
    plains += [Plain(f"candidate_selector.{n}_codebook", (VOCAB, rank), 0)
               for n in ("predecessor", "successor")]
    config.update(architectures=["DFlash2DraftModel"])
    config["dflash_config"].update(conv_kernel_size=taps, conv_group_size=group,
                                   selector_rank=rank, selector_top_k=4)
    return linears, plains, roots, config


def _eagle1_minicpm() -> _Draft1:
    m = "model.eagle_layers.0"
    linears, plains, roots, config = _llama_like(m, "MiniCPMForCausalLM", "llama")
    linears += [Linear("model.fc", HIDDEN, 2 * HIDDEN, 0, "head", False),
                Linear("lm_head", VOCAB, HIDDEN, 0, "head")]
    plains += [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
               for n in ("input_layernorm", "post_attention_layernorm")]
    plains += [Plain(f"model.{n}.weight", (HIDDEN,), 0, init="ones")
               for n in ("input_norm1", "input_norm2", "norm")]
    plains.append(Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), 0))
    config.update(scale_emb=1.0, scale_depth=1.0, dim_model_base=HIDDEN)
    return linears, plains, roots, config


def _eagle1_deepseek() -> _Draft1:
    from support import _families as F

    m = "layers.0"
    attn, attn_norms = F._mla(m, 0)
    mlp, mlp_plains = F.dense_then_moe(1, m, 0)  # past first_k_dense_replace: the MoE
    plains = [*attn_norms, *F.layer_norms(m, 0), *mlp_plains,
              *(Plain(f"{n}.weight", (HIDDEN,), 0, init="ones")
                for n in ("enorm", "hnorm", "norm"))]  # the target's embedding is shared
    linears = [*attn, *mlp, Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head", False),
               Linear("lm_head", VOCAB, HIDDEN, 0, "head")]
    config = {**F.deepseek_v3(1).config, "num_hidden_layers": 1,
              "num_nextn_predict_layers": 1}
    return linears, plains, [f"{m}*"], config


# ---- issue 13i: MuseSparkDSparkForCausalLM ----
def _muse_spark_dspark() -> _Draft1:
    """A dense Muse Spark DSpark draft (``muse_spark/common/dspark.py``): one Muse layer
    ``layers.0`` (q/k/v/o, a ``feed_forward`` gated MLP, the affine pre-norms
    ``self_attn.pre_qkv_proj_norm`` and ``pre_ffn_norm``; weightless post-norms, no
    residual gate, no MoE), ``fc`` over the target's layers 0 and 1 (a quantizable
    ``ReplicatedLinear``), ``hidden_norm``, ``norm``, DSpark's Markov head, its own
    ``lm_head`` and the ``d2t`` map it requires (a full-vocabulary draft: zeros, held as
    a plain tensor the loader casts to its int64 parameter)."""
    m = "layers.0"
    linears, _, _, _ = _llama_like(m, "MuseSparkDSparkModel", "muse_spark_dspark")
    linears = [replace(lin, name=lin.name.replace(".mlp.", ".feed_forward."))
               for lin in linears]
    linears += [Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head"),
                Linear("markov_head.markov_w2", VOCAB, MARKOV_RANK, 0, "head", False),
                Linear("lm_head", VOCAB, HIDDEN, 0, "head")]
    plains = [Plain(f"{n}.weight", (HIDDEN,), 0, init="ones") for n in (
        f"{m}.self_attn.pre_qkv_proj_norm", f"{m}.pre_ffn_norm", "hidden_norm", "norm")]
    plains += [Plain("markov_head.markov_w1.weight", (VOCAB, MARKOV_RANK), 0),
               Plain("d2t", (VOCAB,), 0, "F32", "zeros_ish")]
    config = {
        "architectures": ["MuseSparkDSparkModel"], "model_type": "muse_spark_dspark",
        "vocab_size": VOCAB, "draft_vocab_size": VOCAB, "hidden_size": HIDDEN,
        "target_hidden_size": HIDDEN, "num_hidden_layers": 1, "num_attention_heads": HEADS,
        "num_key_value_heads": KV_HEADS, "head_dim": HEAD_DIM,
        "ffn_dim_multiplier": INTER / HIDDEN, "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "moe": {"is_enabled": False},
        "use_qk_norm": True, "use_attn_o_gate": False, "use_attn_o_norm": False,
        "use_residual_gate": False, "norm_affine": True, "post_norm_affine": False,
        "use_ffn_learnable_scales": False, "residual_dtype": "fp32",
        "target_layer_ids": [0, 1], "mask_token_id": VOCAB - 1, "markov_rank": MARKOV_RANK,
        "enable_confidence_head": False, "confidence_head_with_markov": False,
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False,
        "torch_dtype": "bfloat16"}
    return linears, plains, [f"{m}*", "fc*"], config


# ---- issue 13k: DFlash-Laguna, LiLiCorr ----
def _dflash_laguna() -> _Draft1:
    """The DFlash-Laguna layout (``laguna_dflash.py``): ``layers.0.*`` a Laguna decoder
    layer whose ``qkv_proj`` is stored fused (``DFlashLagunaModel.load_weights`` maps no
    q/k/v names) with a per-element output gate ``g_proj``, ``fc`` over the target's
    layers 0 and 1, one ``aux_hidden_norms.{i}`` per target feature, ``hidden_norm``,
    ``norm``; ``LagunaForCausalLM`` of model type ``laguna`` (vLLM's ``EAGLEConfig``
    names it ``DFlashLagunaForCausalLM``)."""
    m = "layers.0"
    groups = {
        "attn": [(f"{m}.self_attn.qkv_proj", (HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN),
                 (f"{m}.self_attn.g_proj", HEADS * HEAD_DIM, HIDDEN),
                 (f"{m}.self_attn.o_proj", HIDDEN, HEADS * HEAD_DIM)],
        "mlp": [(f"{m}.mlp.gate_proj", INTER, HIDDEN), (f"{m}.mlp.up_proj", INTER, HIDDEN),
                (f"{m}.mlp.down_proj", HIDDEN, INTER)],
    }
    linears = [lin for lin, _ in _linears(groups, lambda g: "bf16")]
    linears.append(Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head"))
    plains = [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
              for n in ("input_layernorm", "post_attention_layernorm")]
    plains += _qk_norms(f"{m}.self_attn", 0)
    plains += [Plain(f"{n}.weight", (HIDDEN,), 0, init="ones")
               for n in ("aux_hidden_norms.0", "aux_hidden_norms.1", "hidden_norm", "norm")]
    config = _llama_config(1, **_QWEN3["laguna"][0])
    config.update(mlp_layer_types=["dense"], layer_types=["full_attention"],
                  draft_vocab_size=VOCAB, block_size=2,
                  dflash_config={"target_layer_ids": [0, 1], "mask_token_id": VOCAB - 1})
    return linears, plains, [f"{m}*", "fc*"], config


def _lilicorr_qwen3() -> _Draft1:
    """The DFlash layout plus LiLiCorr's candidate-lattice correlator (``lilicorr.py``),
    ``lilicorr.*``: quantizable ``ReplicatedLinear`` projections and a bias-carrying
    MLP per lattice layer built with the draft's quant config, the edge heads
    (``factor_input_proj``, ``out_head``, ``in_head``) built without one, and plain
    parameters (the lattice attention's ``in_proj``, embeddings, biases).
    ``feature_mlp.up_proj`` reads the 5 candidate features: too narrow to quantize, BF16
    in every layout. ``LiLiCorrDraftModel`` (kept by vLLM's ``EAGLEConfig``) ->
    ``lilicorr.py:LiLiCorrForCausalLM``."""
    linears, plains, roots, config = _dflash_qwen3()
    h, heads, factor, topk, block = HIDDEN, 4, 32, 2, 2
    c = "lilicorr"
    head = [(f"{c}.pass_hidden_proj", h, HIDDEN, True), (f"{c}.context_proj", h, HIDDEN, True),
            (f"{c}.feature_mlp.up_proj", h, 5, False),
            (f"{c}.feature_mlp.down_proj", h, h, True),
            (f"{c}.layers.0.attn.out_proj", h, h, True),
            (f"{c}.layers.0.mlp.up_proj", 2 * h, h, True),
            (f"{c}.layers.0.mlp.down_proj", h, 2 * h, True),
            (f"{c}.factor_input_proj", h, 3 * h, False), (f"{c}.out_head", factor, h, False),
            (f"{c}.in_head", factor, h, False), (f"{c}.anchor_out_head", factor, h, True)]
    for name, out, inp, quantizable in head:
        linears.append(Linear(name, out, inp, 0, "head", quantizable))
        plains.append(Plain(f"{name}.bias", (out,), 0))
    plains += [Plain(f"{c}.{n}", shape, 0) for n, shape in (
        ("feature_norm.weight", (5,)), ("feature_norm.bias", (5,)),
        ("slot_embedding", (1, 1, block - 1, 1, h)), ("rank_embedding", (1, 1, 1, topk, h)),
        ("relative_slot_bias", (heads, 2 * block - 1)), ("same_slot_bias", (heads,)),
        ("layers.0.attn.in_proj_weight", (3 * h, h)), ("layers.0.attn.in_proj_bias", (3 * h,)))]
    plains += [Plain(f"{c}.{n}.weight", (h,), 0, init="ones") for n in (
        "layers.0.attn_norm", "layers.0.mlp_norm", "output_norm", "anchor_norm")]
    config.update(architectures=["LiLiCorrDraftModel"])
    config["dflash_config"].update(
        block_size=block, lilicorr_enabled=True, lilicorr_hidden_size=None,
        lilicorr_candidate_topk=topk, lilicorr_num_heads=heads, lilicorr_mlp_ratio=2.0,
        lilicorr_factor_dim=factor, lilicorr_vector_eps=1e-6, lilicorr_logit_scale=10.0,
        lilicorr_num_layers=1)
    return linears, plains, [*roots, f"{c}*"], config


def _dflash2_beam() -> _Draft1:
    """The DFlash2-Beam layout (``models/beam/nvidia/dflash2.py``): the DFlash2 names
    (``layers.0.*`` in HF names, per-layer grouped convolutions, ``fc``, the candidate
    selector) with no ``embed_tokens``/``lm_head``; ``DFlash2BeamDraftModel`` of model
    type ``beam``, every layer non-causal sliding attention. vLLM builds every linear
    layer of this drafter with no quant config; a quantized draft (g) stores the decoder
    layer's attention and MLP projections quantized (an export that quantizes every
    general linear layer), the ``ReplicatedLinear`` ones (``fc``, the convolutions'
    ``kernel_projection``, the selector's ``hidden_projection``) BF16."""
    m = "layers.0"
    linears, plains, roots, config = _llama_like(m, "DFlash2BeamDraftModel", "beam")
    taps, group, rank = 2, 32, 16
    linears.append(Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head", False))
    for conv in ("attention_conv", "mlp_conv"):
        linears.append(Linear(f"{m}.{conv}.kernel_projection", 2 * taps * (HIDDEN // group),
                              HIDDEN, 0, "mlp", False))
        plains.append(Plain(f"{m}.{conv}.base_kernel", (2, taps, HIDDEN), 0))
    linears.append(Linear("candidate_selector.hidden_projection", rank, HIDDEN, 0, "head",
                          False))
    plains += [Plain(f"candidate_selector.{n}_codebook", (VOCAB, rank), 0)
               for n in ("predecessor", "successor")]
    plains += [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
               for n in ("input_layernorm", "post_attention_layernorm")]
    plains += _qk_norms(f"{m}.self_attn", 0)
    plains += [Plain(f"{n}.weight", (HIDDEN,), 0, init="ones") for n in ("hidden_norm", "norm")]
    config.update(_QWEN3["beam"][0], architectures=["DFlash2BeamDraftModel"],
                  num_hidden_layers=1, mlp_layer_types=["dense"],
                  layer_types=["sliding_attention"], is_causal=False, block_size=2,
                  dflash_config={"target_layer_ids": [0, 1], "mask_token_id": VOCAB - 1,
                                 "conv_kernel_size": taps, "conv_group_size": group,
                                 "selector_rank": rank, "selector_top_k": 4,
                                 "final_logit_softcapping": 30.0})
    return linears, plains, [*roots, "fc*"], config


# ---- issue 13h: Gemma4MTP, Gemma4DSparkForCausalLM ----
def _gemma4_text(num_layers: int, layer_types: list[str], **extra: Any) -> dict[str, Any]:
    """A tiny Gemma4 text config (``_GEMMA4_TEXT``) of ``num_layers`` layers."""
    config = _llama_config(num_layers, **_GEMMA4_TEXT, layer_types=layer_types, **extra)
    del config["rope_theta"], config["hidden_act"]
    return config


def _gemma4_layer(m: str) -> tuple[list[Linear], list[Plain]]:
    """A Gemma4 draft decoder layer at ``m``: Llama's linears and norms, Gemma4's extra
    norms (``k_norm`` too: the caller drops it where the layer has no K)."""
    linears, _, _, _ = _llama_like(m, "", "")
    plains = [Plain(f"{m}.{n}.weight", (HIDDEN,), 0, init="ones")
              for n in ("input_layernorm", "post_attention_layernorm")]
    return linears, [*plains, *_gemma4_norms(m, 0)]


def _gemma4_mtp() -> _Draft1:
    """The Gemma4 assistant (``gemma4_assistant``; ``config/speculative.py`` makes it
    ``Gemma4MTPModel`` -> ``gemma4_mtp.py:Gemma4MTP``): ``model.layers.0.*`` with Q-only
    attention (K/V are the target's cache), ``pre_projection`` [hidden, 2 * backbone],
    ``post_projection`` [backbone, hidden], ``model.norm`` and ``model.embed_tokens``
    (the head is tied to it); the text config nested under ``text_config``."""
    m = "model.layers.0"
    linears, plains = _gemma4_layer(m)
    linears = [lin for lin in linears if not lin.name.endswith(("k_proj", "v_proj"))]
    plains = [p for p in plains if "k_norm" not in p.name]
    linears += [Linear("pre_projection", HIDDEN, 2 * HIDDEN, 0, "head"),
                Linear("post_projection", HIDDEN, HIDDEN, 0, "head")]
    plains += [Plain("model.norm.weight", (HIDDEN,), 0, init="ones"),
               Plain("model.embed_tokens.weight", (VOCAB, HIDDEN), 0)]
    text = _gemma4_text(1, ["full_attention"], tie_word_embeddings=True)
    del text["architectures"]
    config = {"architectures": ["Gemma4AssistantForCausalLM"], "model_type": "gemma4_assistant",
              "backbone_hidden_size": HIDDEN, "use_ordered_embeddings": False,
              "tie_word_embeddings": True, "torch_dtype": "bfloat16", "text_config": text}
    return linears, plains, [f"{m}*", "pre_projection*", "post_projection*"], config


def _dspark_gemma4() -> _Draft1:
    """A self-contained Gemma4 DSpark draft (``Gemma4DSparkModel`` of model type
    ``gemma4_text`` -> ``gemma4_dspark.py:Gemma4DSparkForCausalLM``): ``layers.0.*`` (a
    full-attention layer with its own K, ``attention_k_eq_v``: no ``v_proj``), ``fc``
    [hidden, 2 * hidden] over the target's layers 0 and 1 (a quantizable
    ``ReplicatedLinear``), ``hidden_norm``, ``norm``, ``embed_tokens``, the Markov head and
    ``lm_head`` (both built without a quant config)."""
    m = "layers.0"
    linears, plains = _gemma4_layer(m)
    linears = [lin for lin in linears if not lin.name.endswith("v_proj")]
    linears += [Linear("fc", HIDDEN, 2 * HIDDEN, 0, "head"),
                Linear("lm_head", VOCAB, HIDDEN, 0, "head", False),
                Linear("markov_head.markov_w2", VOCAB, MARKOV_RANK, 0, "head", False)]
    plains += [Plain(f"{n}.weight", (HIDDEN,), 0, init="ones") for n in ("hidden_norm", "norm")]
    plains += [Plain("embed_tokens.weight", (VOCAB, HIDDEN), 0),
               Plain("markov_head.markov_w1.weight", (VOCAB, MARKOV_RANK), 0)]
    config = _gemma4_text(1, ["full_attention"], architectures=["Gemma4DSparkModel"],
                          attention_k_eq_v=True, target_layer_ids=[0, 1],
                          mask_token_id=VOCAB - 1, markov_rank=MARKOV_RANK, block_size=2)
    return linears, plains, [f"{m}*", "fc*"], config


#: EAGLE-1-style draft family -> its writer (any other family: ``_eagle1_llama``)
_DRAFT1_WRITERS: dict[str, Callable[[], _Draft1]] = {
    "minicpm": _eagle1_minicpm,
    "deepseek": _eagle1_deepseek,
    "mistral": partial(_eagle1_hf, "MistralForCausalLM", "mistral",
                       ("input_layernorm", "post_attention_layernorm")),
    "cohere": _eagle1_cohere,
    "llama4": _eagle1_llama4,
    "dflash_qwen3": _dflash_qwen3,
    "mistral_large3": _eagle1_mistral_large3,
    "dspark_qwen3": _dspark_qwen3,
    "dflash2_qwen3": _dflash2_qwen3,
    "xpress_qwen3": _xpress_qwen3,
    # ---- issue 13i: MuseSparkDSparkForCausalLM ----
    "muse_spark_dspark": _muse_spark_dspark,
    # ---- issue 13k: DFlash-Laguna, LiLiCorr ----
    "dflash_laguna": _dflash_laguna,
    "lilicorr_qwen3": _lilicorr_qwen3,
    "dflash2_beam": _dflash2_beam,
    # ---- issue 13h: Gemma4MTP, Gemma4DSparkForCausalLM ----
    "gemma4_mtp": _gemma4_mtp,
    "dspark_gemma4": _dspark_gemma4,
    "k3_dspark": _k3_dspark,
}


def write_eagle_draft(path: str | os.PathLike[str], spec: EagleSpec) -> WrittenModel:
    """A tiny EAGLE-1 draft of ``spec.family`` (same hidden size and vocabulary as its
    target: ``write_llama_target``'s, or the ``deepseek_v3`` factory family's)."""
    root = Path(path)
    lins, plains, roots, config = _DRAFT1_WRITERS.get(spec.family, _eagle1_llama)()

    def stored(lin: Linear) -> Format:
        keep = not lin.quantizable or lin.name == "lm_head" or spec.layout != "g"
        return "bf16" if keep else spec.scheme

    linears = [(lin, stored(lin)) for lin in lins]
    bf16 = [lin.name for lin, f in linears if f == "bf16" and lin.group != "router"]
    head = ["lm_head"] if "lm_head" in bf16 else []
    # a head tied to the draft's embedding (Gemma4's assistant) is excluded as a stored one
    tied = (["lm_head"] if config.get("tie_word_embeddings") and not head
            and spec.exclude_tied_head else [])
    exclusions = {"a": [*head, *tied], "b": [*roots, *head, *tied], "c": [*bf16, *tied],
                  "g": [*bf16, *tied]}[spec.layout]
    tensors = _write(root, linears, plains, [], spec.seed, draft=True)
    return _declare(root, spec.scheme, exclusions, "hf_quant_config", linears, tensors, config)


def write_eagle_pair(
    root: str | os.PathLike[str], spec: EagleSpec
) -> tuple[Any, WrittenModel, dict[str, Any]]:
    """(target, EAGLE-1 draft, ``speculative_config``) under ``root``: the target quantized
    in ``spec.scheme`` (its ``lm_head`` BF16 and excluded), the draft as ``spec`` says."""
    base = Path(root)
    target: Any
    if spec.family == "k3_dspark":
        target = write_kimi_k3_target(base / "target", spec.scheme)
    elif spec.family in ("deepseek", "mistral_large3"):
        from support.factory import CheckpointSpec, write_checkpoint

        target = write_checkpoint(base / "target", CheckpointSpec(
            "deepseek_v3", spec.scheme, layout="a", with_mtp=False))
    else:
        fam = ("qwen3" if spec.family in _QWEN3_DRAFTS
               else "gemma4" if spec.family in _GEMMA4_DRAFTS
               else "cohere" if spec.family == "cohere"
               else {"dflash_laguna": "laguna", "dflash2_beam": "beam"}.get(spec.family,
                                                                            "llama"))
        target = write_llama_target(base / "target", LlamaTargetSpec(
            spec.scheme, family=fam))  # type: ignore[arg-type]
    draft = write_eagle_draft(base / "draft", spec)
    return target, draft, {"method": _METHOD.get(spec.family, "eagle"),
                           "model": str(draft.path), "num_speculative_tokens": 1}
