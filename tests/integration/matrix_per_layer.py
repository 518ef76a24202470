"""Issue 14's per-layer producers around MTP drafters, as data: a few cheap cases.

Cases are ``(family, producer, scheme, layout)`` like ``matrix_int4.py``'s:

- ``modelopt-mixed``: a ModelOpt ``MIXED_PRECISION`` export of Qwen3-Next (the family of
  Qwen3.8-Flash-Next, whose own drafter ``Qwen4ExpMTP`` is built by
  ``test_learned_drafters.py`` from the ``qwen4_exp`` factory family):
  ``quantized_layers`` lists the target's linears ``NVFP4``, the MTP attention ``FP8``
  and the MTP routed experts ``FP8_BLOCK_SCALES`` (the early alias Qwen3.8-Flash-Next's
  ``hf_quant_config.json`` uses) with DeepSeek-style 128 x 128 ``weight_scale_inv``
  tensors, as that model ships them (vllm#55496); the MTP shared expert and ``mtp.fc``
  are unlisted (BF16);
- ``quark-per-layer``: a Quark MXFP4 export of Qwen3-Next whose ``layer_quant_config``
  gives the MTP attention ``fp8_e4m3`` per tensor (``mtp.layers.0.self_attn.*``), the rest
  of the MTP MXFP4 (the global config);
- ``moe_wna16``: GPTQ exports served with ``--quantization moe_wna16`` (the INT4 MTP of
  GLM-4.5, and a BF16 MTP with no exclusion in a DeepSeek-V3 export: ``MoeWNA16Method``
  under ``gptq`` skips nothing). Qwen3-Next's target does not load under
  ``--quantization moe_wna16`` in vLLM 0.33, plugin on or off (``AttributeError:
  'MergedColumnParallelLinear' object has no attribute 'data'`` loading
  ``layers.0.linear_attn.in_proj_ba``), so it has no case here.

``STOCK_PER_LAYER`` is what stock vLLM 0.33.0 does (plugin off, CPU platform with
``demo/cpu_shims.py``, the target loaded first), in ``matrix.py``'s ``Expected`` terms.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from matrix import OK, Expected, _loud
from matrix_int4 import write_case as write_int4_case
from support import CheckpointSpec, _formats_int4, _formats_more, write_checkpoint
from support._formats_int4 import compose
from support._io import write_safetensors

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

CASES: tuple[Case, ...] = (
    ("qwen3_next", "modelopt-mixed", "nvfp4+fp8+fp8_block", "mixed"),
    ("qwen3_next", "modelopt-mixed", "nvfp4+fp8_pb_wo", "o_proj"),
    ("qwen3_next", "quark-per-layer", "mxfp4+fp8", "g"),
    ("glm4_moe", "gptq", "moe_wna16", "g"),
    ("deepseek_v3", "gptq", "moe_wna16", "a"),
)

_ATTN = "mtp.layers.0.self_attn."
_EXPERTS = "mtp.layers.0.mlp.experts."


def case_id(case: Case) -> str:
    return "-".join(case)


def engine_args(case: Case) -> dict[str, Any]:
    return {"quantization": "moe_wna16"} if case[2] == "moe_wna16" else {}


def _write(path: Path, spec: CheckpointSpec) -> Path:
    return write_checkpoint(path, spec).path


def _modules(folder: Path) -> dict[str, str]:
    """{module: "fp8" | "fp8_block" | "fp8_pb_wo" | "nvfp4"} of a single-file checkpoint's
    quantized linears."""
    blob = (folder / "model.safetensors").read_bytes()
    header = json.loads(blob[8:8 + int.from_bytes(blob[:8], "little")])
    header.pop("__metadata__", None)
    out: dict[str, str] = {}
    for name, h in header.items():
        module, _, suffix = name.rpartition(".")
        if suffix == "weight_scale" and len(h["shape"]) == 4:
            out[module] = "fp8_pb_wo"
        elif suffix == "weight_scale_inv":
            out[module] = "fp8_block"
        elif suffix == "weight_scale_2":
            out[module] = "nvfp4"
        elif suffix == "weight_scale" and out.get(module) not in ("nvfp4", "fp8_pb_wo"):
            out[module] = "fp8"
    return out


def _mixed(path: Path) -> Path:
    """Qwen3-Next, ModelOpt MIXED_PRECISION: NVFP4 target, FP8 MTP attention, block-FP8
    MTP experts (128 x 128, ``weight_scale_inv``), BF16 shared expert and ``mtp.fc``."""
    fam = "qwen3_next"
    base = _write(path.with_name(path.name + ".nvfp4"), CheckpointSpec(fam, "nvfp4", layout="a"))
    fp8 = _write(path.with_name(path.name + ".fp8"), CheckpointSpec(fam, "fp8", layout="g"))
    saved = _formats_more.BLOCK
    _formats_more.BLOCK = (128, 128)
    try:
        block = _write(path.with_name(path.name + ".block"),
                       CheckpointSpec(fam, "fp8_block", "fp8", layout="g"))
    finally:
        _formats_more.BLOCK = saved
    compose(path, base, [(fp8, lambda n: n.startswith(_ATTN)),
                         (block, lambda n: n.startswith(_EXPERTS))])
    _mixed_config(path)
    return path


def _pb_wo_o_proj(path: Path) -> Path:
    """Qwen3-Next, ModelOpt MIXED_PRECISION: NVFP4 target, the MTP ``o_proj`` block FP8 as
    ModelOpt writes ``FP8_PB_WO`` (``weight_scale`` F32 ``[out/128, 1, in/128, 1]``, no
    input scale), the rest of the MTP BF16 (unlisted)."""
    import numpy as np

    from vllm_draft_quant.demo import tensors as T

    fam = "qwen3_next"
    o_proj = f"{_ATTN}o_proj."
    base = _write(path.with_name(path.name + ".nvfp4"), CheckpointSpec(fam, "nvfp4", layout="a"))
    fp8 = _write(path.with_name(path.name + ".fp8"), CheckpointSpec(fam, "fp8", layout="g"))
    compose(path, base, [(fp8, lambda n: n == f"{o_proj}weight")])
    rows = _formats_int4._read_raw(path / "model.safetensors")
    out, inp = next(t.shape for n, t in rows if n == f"{o_proj}weight")
    grid = (-(-out // 128), 1, inp // 128, 1)
    scale = np.random.default_rng(7).uniform(1e-4, 4e-4, size=int(np.prod(grid)))
    rows.append((f"{o_proj}weight_scale", T.f32(scale, grid)))
    write_safetensors(path / "model.safetensors", rows, {"format": "pt"})
    _mixed_config(path)
    return path


def _mixed_config(path: Path) -> None:
    """Write ``path``'s MIXED_PRECISION configs from its tensors: every quantized module
    listed with its algorithm, BF16 ones unlisted."""
    layers: dict[str, dict[str, Any]] = {}
    for module, fmt in sorted(_modules(path).items()):
        if fmt == "nvfp4":
            layers[module] = {"quant_algo": "NVFP4", "group_size": 16}
        elif fmt == "fp8":
            layers[module] = {"quant_algo": "FP8"}
        elif fmt == "fp8_block":
            layers[module] = {"quant_algo": "FP8_BLOCK_SCALES", "group_size": 128}
        elif fmt == "fp8_pb_wo":
            layers[module] = {"quant_algo": "FP8_PB_WO", "group_size": 128}
    quantization = {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": None,
                    "exclude_modules": [], "quantized_layers": layers}
    config = json.loads((path / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "modelopt", **quantization}
    (path / "config.json").write_text(json.dumps(config, indent=1))
    (path / "hf_quant_config.json").write_text(json.dumps(
        {"producer": {"name": "modelopt", "version": "0.41.0"}, "quantization": quantization},
        indent=1))


def _quark_per_layer(path: Path) -> Path:
    """Qwen3-Next, Quark MXFP4 with a ``layer_quant_config`` making the MTP attention FP8."""
    fam = "qwen3_next"
    base = _write(path.with_name(path.name + ".mxfp4"),
                  CheckpointSpec(fam, "mxfp4", "quark", layout="g"))
    fp8 = _write(path.with_name(path.name + ".fp8"), CheckpointSpec(fam, "fp8", layout="g"))
    compose(path, base, [(fp8, lambda n: n.startswith(_ATTN))])
    config = json.loads((path / "config.json").read_text())
    qc = config["quantization_config"]
    fp8_spec = {"dtype": "fp8_e4m3", "qscheme": "per_tensor", "ch_axis": None,
                "group_size": None, "symmetric": True, "round_method": "half_even",
                "scale_type": "float", "observer_cls": "PerTensorMinMaxObserver"}
    qc["layer_quant_config"] = {f"{_ATTN}*": {
        "weight": {**fp8_spec, "is_dynamic": False},
        "input_tensors": {**fp8_spec, "is_dynamic": False},
        "output_tensors": None, "bias": None, "target_device": None}}
    (path / "config.json").write_text(json.dumps(config, indent=1))
    return path


def write_case(case: Case, path: Path) -> Path:
    """Write ``case``'s checkpoint at ``path``; return the model folder."""
    family, producer, _, layout = case
    if producer == "modelopt-mixed":
        return _pb_wo_o_proj(path) if layout == "o_proj" else _mixed(path)
    if producer == "quark-per-layer":
        return _quark_per_layer(path)
    return write_int4_case((family, producer, "int4", layout), path)


# ------------------------------------------------------------------ stock outcomes (measured)
STOCK_PER_LAYER: dict[Case, Expected] = {
    ("qwen3_next", "modelopt-mixed", "nvfp4+fp8+fp8_block", "mixed"): OK,
    ("qwen3_next", "modelopt-mixed", "nvfp4+fp8_pb_wo", "o_proj"): OK,
    ("qwen3_next", "quark-per-layer", "mxfp4+fp8", "g"): OK,
    # GLM's MTP load_weights indexes params_dict with the experts' g_idx (no parameter)
    ("glm4_moe", "gptq", "moe_wna16", "g"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_g_idx"),
    # MoeWNA16Method under gptq skips nothing: INT4 experts built for BF16 tensors
    ("deepseek_v3", "gptq", "moe_wna16", "a"): _loud(
        "KeyError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_weight"),
}
