"""Tiny checkpoints written from a drafter profile alone, for families the factory
cannot write because vLLM cannot build them on the CPU (DeepSeek-V4; MiMo-V2 and
Qwen4Exp too, written before their factory families ``mimo_v2`` and ``qwen4_exp``
existed): `fix` and `graft` work on names, headers and configs, so a checkpoint whose
draft tensors carry the profile's checkpoint names (and shapes the config implies) is
all their tests need.

Two target layers ``model.layers.{0,1}`` with the profile's layer modules stored NVFP4
(routers and other vLLM layers built without a quant config stay BF16 and excluded,
as exports keep them), ``lm_head`` and ``model.embed_tokens`` BF16; the draft layers
under the profile's checkpoint root and its global modules, all BF16 (layouts a, b, c
of ``support.factory.LAYOUTS``: the ModelOpt NVFP4 exclusions do not mention the draft,
name its namespace by one wildcard, or name every draft module exactly).
Uses numpy through ``vllm_draft_quant.demo.tensors`` (no torch, no vllm).
"""

from __future__ import annotations

from pathlib import Path

from support._io import write_json, write_safetensors
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.core.profile import DrafterProfile, ModuleSpec
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.demo import tensors as T
from vllm_draft_quant.demo.checkpoint import modelopt_quant_configs

__all__ = ["HIDDEN", "TARGET_LAYERS", "draft_namespace", "write_profiled"]

HIDDEN, VOCAB, TARGET_LAYERS, EXPERTS = 64, 128, 2, 2
_WIDE = ("eh_proj", "fc", "input_proj")  # [hidden, 2 * hidden] (repair/shapes.py)


def _shape(name: str, kind: ModuleKind) -> tuple[int, int]:
    if kind is ModuleKind.LM_HEAD or name.endswith(("head", "lm_head")):
        return (VOCAB, HIDDEN)
    if name.endswith("shared_expert_gate"):
        return (1, HIDDEN)
    if name.rsplit(".", 1)[-1] in _WIDE:
        return (HIDDEN, 2 * HIDDEN)
    return (HIDDEN, HIDDEN)


def _names(root: str, spec: ModuleSpec) -> list[str]:
    """Checkpoint module names of ``spec`` under ``root`` ("" for a global), experts expanded."""
    out = []
    for c in spec.checkpoint:
        for e in range(EXPERTS) if "{e}" in c else [None]:
            name = c.replace("{e}", str(e)) if e is not None else c
            out.append(f"{root}.{name}" if root else name)
    return out


def draft_namespace(profile: DrafterProfile) -> str:
    """The draft layers' container without the layer number (``mtp``, ``model.mtp``)."""
    head = profile.root.checkpoint.split("{n}", 1)[0].rstrip(".")
    return head.removesuffix(".layers")


def write_profiled(
    path: Path, profile: DrafterProfile, layout: str = "a", *, with_mtp: bool = True
) -> Path:
    """Write the checkpoint (ModelOpt NVFP4 target, BF16 draft) and return ``path``."""
    path.mkdir(parents=True, exist_ok=True)
    key = profile.num_layers_keys[0] if profile.num_layers_keys else None
    config = {
        "architectures": [profile.target_architectures[0]],
        "hidden_size": HIDDEN,
        "vocab_size": VOCAB,
        "num_hidden_layers": TARGET_LAYERS,
        "torch_dtype": "bfloat16",
        **({key: 1} if key else {}),
    }
    names = NameMap(profile, num_hidden_layers=TARGET_LAYERS, num_draft_layers=1)
    tensors: list[tuple[str, T.RawTensor]] = []
    excluded = ["lm_head"]

    def add(name: str, kind: ModuleKind, fmt: str) -> None:
        out, inp = _shape(name, kind)
        tensors.extend(T.modelopt_linear(name, out, inp, fmt, seed=0))

    for i in range(TARGET_LAYERS):
        for spec in profile.modules:
            for name in _names(f"model.layers.{i}", spec):
                quantizable = spec.kind in (ModuleKind.LINEAR, ModuleKind.EXPERTS)
                add(name, spec.kind, "nvfp4" if quantizable else "bf16")
                excluded += [] if quantizable else [name]
        norm = f"model.layers.{i}.input_layernorm.weight"
        tensors.append((norm, T.bf16(T.rng_for(0, norm), (HIDDEN,))))
    for name in ("model.embed_tokens", "lm_head"):
        add(name, ModuleKind.LM_HEAD, "bf16")
    draft: list[str] = []
    if with_mtp:
        for layer in names.layers:
            for spec in profile.modules:
                draft += _names(layer.checkpoint_root, spec)
            norm = f"{layer.checkpoint_root}.enorm.weight"
            tensors.append((norm, T.bf16(T.rng_for(0, norm), (HIDDEN,))))
        draft += [n for spec in profile.globals for n in _names("", spec) if n != "lm_head"]
        kinds = {n: s.kind for s in (*profile.modules, *profile.globals) for n in _names("", s)}
        for name in draft:
            add(name, kinds.get(name.split(".", 1)[-1], ModuleKind.LINEAR), "bf16")
    if layout == "b":
        excluded.append(f"{draft_namespace(profile)}*")
    elif layout == "c":
        excluded += draft
    qc, hf = modelopt_quant_configs("nvfp4", excluded)
    write_json(path / "config.json", {**config, "quantization_config": qc})
    write_json(path / "hf_quant_config.json", hf)
    write_safetensors(path / "model.safetensors", tensors, {"format": "pt"})
    return path
