"""Tiny Llama targets and EAGLE3 drafts, each in its own folder (numpy only, no torch).

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
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
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
    "LlamaTargetSpec",
    "QuantConfigPlace",
    "WrittenModel",
    "write_eagle3_deepseek_draft",
    "write_eagle3_draft",
    "write_llama_target",
]

EagleFormat = Literal["bf16", "nvfp4", "fp8"]
#: "llama": LlamaForCausalLM target, LlamaForCausalLMEagle3 draft; "qwen3" (issue 13):
#: Qwen3ForCausalLM target (q/k norms), Eagle3Qwen3ForCausalLM draft
#: (``qwen3_eagle3.py``: the same layout plus the draft layer's q/k norms)
EagleFamily = Literal["llama", "qwen3"]
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
    "qwen3": ({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3"},
              {"architectures": ["Eagle3Qwen3ForCausalLM"], "model_type": "qwen3"}),
}


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
    exclusions = [lin.name for lin, f in linears if f == "bf16"]
    hf_quant = None
    schemes = spec.schemes()
    if schemes and spec.quant_config != "none":
        qc, hq = modelopt_quant_configs(schemes.pop(), exclusions)
        config["quantization_config"] = qc
        if spec.quant_config == "hf_quant_config":
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
        if spec.family == "qwen3":
            plains += _qk_norms(f"{p}.self_attn", None)
    linears.append((Linear("lm_head", VOCAB, HIDDEN, None, "router", False), "bf16"))
    tensors = _write(root, linears, plains, [], spec.seed, draft=False)
    config = _llama_config(spec.num_hidden_layers, **_QWEN3[spec.family][0])
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
    linears = [
        (
            Linear(name, out, inp, 0, "head" if g in ("fc", "lm_head") else g),  # type: ignore[arg-type]
            spec.of(g),
        )
        for g, mods in groups.items()
        for name, out, inp in mods
    ]
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
    linears = [
        (Linear(name, out, inp, 0, "head" if g in ("fc", "lm_head") else g),  # type: ignore[arg-type]
         spec.of(g))
        for g, mods in groups.items()
        for name, out, inp in mods
    ]
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
