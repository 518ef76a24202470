"""Write tiny, real-format quantized checkpoints with MTP/NextN draft layers.

Usage::

    spec = CheckpointSpec("step3p5", "nvfp4", layout="a")
    ckpt = write_checkpoint(tmp_path / "m", spec)
    ckpt.stored_format("model.layers.2.mlp.gate_proj.weight")  # -> "bf16"

Every MTP module group (``attn``: attention projections, ``mlp``: MLP / experts /
shared experts, ``head``: Step-3.5 ``shared_head.output``, Qwen3-Next ``mtp.fc``,
DeepSeek ``shared_head.head``) is stored ``"bf16"`` or in the checkpoint's scheme.
Target layers are always quantized except what real exports keep BF16 (embeddings,
norms, ``lm_head``, routers); ``eh_proj`` is always BF16.

Tensor layouts (FINDINGS.md "Real checkpoint conventions"):

=================  ==========================================================
modelopt nvfp4     weight U8 [out,in/2], weight_scale F8_E4M3 [out,in/16],
                   weight_scale_2 F32 [], input_scale F32 []
modelopt fp8       weight F8_E4M3, weight_scale F32 [], input_scale F32 []
compressed-tensors weight_packed U8 [out,in/2], weight_scale F8_E4M3 [out,in/16],
nvfp4              weight_global_scale F32 [1], input_global_scale F32 [1]
compressed-tensors weight F8_E4M3, weight_scale F32 [1], input_scale F32 [1]
fp8
=================  ==========================================================

Step-3.5's target MoE stores the experts stacked ([E, ...], scalars become [E]).
This module imports numpy only (no torch, no vllm).
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from support import _formats_int4, _formats_more
from support._families import FAMILIES as _BASE_FAMILIES
from support._families import Family, Linear, Plain
from support._families_learned import LEARNED_FAMILIES
from support._families_more import MORE_FAMILIES
from support._io import write_json, write_safetensors
from vllm_draft_quant.demo import tensors as T
from vllm_draft_quant.demo.checkpoint import modelopt_quant_configs

__all__ = [
    "LAYOUTS",
    "CheckpointSpec",
    "ExclusionMode",
    "FamilyName",
    "Format",
    "Layout",
    "MtpFormats",
    "Producer",
    "Scheme",
    "TensorInfo",
    "WrittenCheckpoint",
    "write_checkpoint",
]

FamilyName = Literal[
    "step3p5", "qwen3_next", "deepseek_v3", "glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo",
    "glm5", "qwen3_5", "glm4_moe_lite", "deepseek_v32", "ernie4_5_moe", "exaone_moe",
    "exaone4_5", "glm_ocr", "longcat_flash",
    "hy_v3", "mimo_v2", "qwen4_exp",
    "hy_v4",
    # ---- issue 13i: Glm5NextMTP ----
    "glm5_next",
    # ---- issue 13j: InklingMTP ----
    "inkling", "interns2_mobius",
    # ---- issue 13m: Glm5NextMTP with its MTP attention stored quantized ----
    "glm5_next_qattn",
]
FAMILIES = {**_BASE_FAMILIES, **MORE_FAMILIES, **LEARNED_FAMILIES}
Scheme = Literal["nvfp4", "fp8", "fp8_block", "mxfp4", "int4"]
Format = Literal["bf16", "nvfp4", "fp8", "fp8_block", "mxfp4", "int4"]
# "fp8": DeepSeek-native FP8 block (weight_scale_inv); "quark": AMD Quark MXFP4
# "gptq", "awq", "auto-round" (and "compressed-tensors" int4): support/_formats_int4.py
Producer = Literal["modelopt", "compressed-tensors", "fp8", "quark", "gptq", "awq", "auto-round"]
ExclusionMode = Literal["none", "wildcard", "exact"]
_GROUPS = ("attn", "mlp", "head")


@dataclass(frozen=True)
class MtpFormats:
    """Stored format of one MTP layer's module groups."""

    attn: Format = "bf16"
    mlp: Format = "bf16"
    head: Format = "bf16"

    def of(self, group: str) -> Format:
        fmt: Format = getattr(self, group)
        return fmt

    @property
    def all_bf16(self) -> bool:
        return all(self.of(g) == "bf16" for g in _GROUPS)


@dataclass(frozen=True)
class Layout:
    """A FINDINGS.md layout: which MTP groups are quantized, how exclusions are written."""

    description: str
    quantized: frozenset[str]
    exclusions: ExclusionMode

    def formats(self, scheme: Scheme) -> MtpFormats:
        return MtpFormats(**{g: (scheme if g in self.quantized else "bf16") for g in _GROUPS})


LAYOUTS: dict[str, Layout] = {
    "a": Layout("MTP all BF16, exclusions do not mention MTP (graft)", frozenset(), "none"),
    "b": Layout("MTP all BF16, one wildcard per MTP root", frozenset(), "wildcard"),
    "c": Layout("MTP all BF16, every module excluded by exact name", frozenset(), "exact"),
    "d": Layout(
        "MTP quantized; head/fc/eh_proj BF16, excluded by exact name",
        frozenset({"attn", "mlp"}),
        "exact",
    ),
    "e": Layout(
        "attention BF16 (excluded), MLP quantized, head BF16 (excluded)",
        frozenset({"mlp"}),
        "exact",
    ),
    "f": Layout(
        "attention quantized, MLP BF16 (excluded), head BF16 (excluded)",
        frozenset({"attn"}),
        "exact",
    ),
    "g": Layout("everything quantized, head/fc included", frozenset(_GROUPS), "exact"),
}


@dataclass(frozen=True)
class CheckpointSpec:
    """What to write. ``layout``: a LAYOUTS key, one MtpFormats, or one per MTP layer.

    ``exclusions``: ``None`` takes the layout's mode ("exact" for MtpFormats);
    a mode; or an explicit list written verbatim as the MTP part of the exclusion
    list (target-side BF16 modules such as ``lm_head`` are always excluded).
    """

    family: FamilyName
    scheme: Scheme
    producer: Producer = "modelopt"
    layout: str | MtpFormats | Sequence[MtpFormats] = "a"
    exclusions: ExclusionMode | Sequence[str] | None = None
    num_mtp_layers: int = 1
    sharded: bool = False
    mtp_own_shard: bool = False
    with_mtp: bool = True
    seed: int = 0
    # False: the unquantized original of the same model (every linear BF16, no
    # quantization_config, no hf_quant_config.json); scheme/producer are then unused
    quantized: bool = True
    # True: the MTP layers' plain input projections (``eh_proj``, MiMo's ``input_proj``;
    # layers vLLM builds as ``torch.nn.Linear``) are stored in the checkpoint's scheme
    # too, as exports that quantize every linear layer write them
    quantize_plain: bool = False

    def __post_init__(self) -> None:
        if self.exclusions is not None and not isinstance(self.exclusions, str):
            object.__setattr__(self, "exclusions", tuple(self.exclusions))
        elif self.exclusions is not None and self.exclusions not in get_args(ExclusionMode):
            raise ValueError(
                f"exclusions={self.exclusions!r}: expected 'none', 'wildcard', 'exact' "
                "or a list of names"
            )
        if not isinstance(self.layout, (str, MtpFormats)):
            object.__setattr__(self, "layout", tuple(self.layout))
        if self.family not in FAMILIES:
            raise ValueError(f"family={self.family!r}: expected one of {sorted(FAMILIES)}")
        if self.scheme not in get_args(Scheme):
            raise ValueError(f"scheme={self.scheme!r}: expected one of {get_args(Scheme)}")
        if self.producer not in get_args(Producer):
            raise ValueError(f"producer={self.producer!r}: expected {get_args(Producer)}")
        if self.scheme not in _formats_more.PRODUCER_SCHEMES[self.producer]:
            raise ValueError(
                f"scheme={self.scheme!r}: {self.producer} writes "
                f"{_formats_more.PRODUCER_SCHEMES[self.producer]}"
            )
        if self.num_mtp_layers < 1:
            raise ValueError("num_mtp_layers must be >= 1 (use with_mtp=False to drop weights)")
        if isinstance(self.layout, str) and self.layout not in LAYOUTS:
            raise ValueError(f"layout={self.layout!r}: expected one of {sorted(LAYOUTS)}")
        for fmts in self.mtp_formats():
            for g in _GROUPS:
                if fmts.of(g) not in ("bf16", self.scheme):
                    raise ValueError(
                        f"MTP group {g!r} is {fmts.of(g)!r} in a {self.scheme!r} checkpoint: "
                        "a group is either 'bf16' or the checkpoint's scheme"
                    )

    def mtp_formats(self) -> tuple[MtpFormats, ...]:
        """The formats of each MTP layer (length ``num_mtp_layers``)."""
        if isinstance(self.layout, str):
            return (LAYOUTS[self.layout].formats(self.scheme),) * self.num_mtp_layers
        if isinstance(self.layout, MtpFormats):
            return (self.layout,) * self.num_mtp_layers
        if len(self.layout) != self.num_mtp_layers:
            raise ValueError(
                f"layout has {len(self.layout)} MtpFormats for {self.num_mtp_layers} MTP layers"
            )
        return tuple(self.layout)

    def exclusion_mode(self) -> ExclusionMode | tuple[str, ...]:
        if isinstance(self.exclusions, str):
            return self.exclusions  # type: ignore[return-value]
        if self.exclusions is not None:
            return tuple(self.exclusions)
        if isinstance(self.layout, str):
            return LAYOUTS[self.layout].exclusions
        return "exact"


@dataclass(frozen=True)
class TensorInfo:
    """One written tensor: safetensors dtype, shape, file, owning module and its format."""

    dtype: str
    shape: tuple[int, ...]
    file: str
    module: str
    format: Format
    mtp: bool


@dataclass
class WrittenCheckpoint:
    """What ``write_checkpoint`` wrote."""

    path: Path
    spec: CheckpointSpec
    tensors: dict[str, TensorInfo]
    module_formats: dict[str, Format]
    mtp_modules: frozenset[str]
    exclusions: list[str]  # as written (compressed-tensors: exact names and ``re:``)
    config: dict[str, Any]
    files: list[str] = field(default_factory=list)

    def stored_format(self, name: str) -> Format:
        """Format of the module owning ``name`` (a tensor or a checkpoint module name)."""
        if name in self.tensors:
            return self.tensors[name].format
        if name in self.module_formats:
            return self.module_formats[name]
        raise KeyError(f"{name!r} is neither a tensor nor a module of {self.path}")

    def mtp_tensor_names(self) -> list[str]:
        return [n for n, t in self.tensors.items() if t.mtp]


# ----------------------------------------------------------------------------- tensors
# A tensor's bytes depend only on its module, format, producer, seed and the writers'
# layout settings (``_formats_int4.GROUP``, ``_formats_more.BLOCK``: the matrices switch
# them for a case), and the suite writes the same tiny tensors thousands of times: both
# generators are memoized on exactly those (RawTensor is immutable; a few MB per family
# and format).
def _quant_tensors(
    lin: Linear, fmt: Format, producer: Producer, seed: int
) -> tuple[tuple[str, T.RawTensor], ...]:
    return _memo_quant_tensors(lin, fmt, producer, seed, _formats_int4.GROUP,
                               _formats_more.BLOCK)


@functools.lru_cache(maxsize=32768)
def _memo_quant_tensors(
    lin: Linear, fmt: Format, producer: Producer, seed: int, group: int,
    block: tuple[int, int],
) -> tuple[tuple[str, T.RawTensor], ...]:
    assert (group, block) == (_formats_int4.GROUP, _formats_more.BLOCK)
    return tuple(_make_quant_tensors(lin, fmt, producer, seed))


def _make_quant_tensors(
    lin: Linear, fmt: Format, producer: Producer, seed: int
) -> list[tuple[str, T.RawTensor]]:
    lead: tuple[int, ...] = (lin.stacked_experts,) if lin.stacked_experts else ()
    # per-tensor scalars: [] for ModelOpt, [1] for compressed-tensors, [E] when stacked
    scalar: tuple[int, ...] = lead or (() if producer == "modelopt" else (1,))
    if fmt == "int4":
        if lead:
            raise ValueError(f"{lin.name}: stacked experts are not written as int4")
        return list(_formats_int4.int4_tensors(lin.name, lin.out, lin.inp, producer, seed))
    if fmt in ("fp8_block", "mxfp4"):
        return list(_formats_more.quant_tensors(lin.name, lin.out, lin.inp, lead, fmt, seed))
    if fmt != "nvfp4" or producer == "modelopt":  # BF16, FP8 (both producers), ModelOpt NVFP4
        return T.modelopt_linear(lin.name, lin.out, lin.inp, fmt, seed, lead, scalar)
    # compressed-tensors nvfp4-pack-quantized: global scales are reciprocals
    name = lin.name
    return [
        (f"{name}.weight_packed", T.nvfp4_packed(T.rng_for(seed, f"{name}.weight"),
                                                 (*lead, lin.out, lin.inp // 2))),
        (f"{name}.weight_scale", T.e4m3_positive_scales(T.rng_for(seed, f"{name}.weight_scale"),
                                                        (*lead, lin.out, lin.inp // 16))),
        (f"{name}.weight_global_scale",
         T.scalar_scale(seed, name, "weight_global_scale", 2500, 1e4, scalar)),
        (f"{name}.input_global_scale",
         T.scalar_scale(seed, name, "input_global_scale", 250, 1e3, scalar)),
    ]


@functools.lru_cache(maxsize=32768)
def _plain_tensor(p: Plain, seed: int) -> T.RawTensor:
    rng = T.rng_for(seed, p.name)
    if p.dtype == "F32":
        return T.f32(rng.normal(0.0, 0.02, size=p.shape), p.shape)
    if p.init == "ones":
        return T.bf16(rng, p.shape, mean=1.0, std=0.02)
    return T.bf16(rng, p.shape)


# ----------------------------------------------------------------------------- formats
def _module_format(lin: Linear, spec: CheckpointSpec, mtp_fmts: tuple[MtpFormats, ...]) -> Format:
    if spec.quantize_plain and spec.quantized and lin.mtp is not None and lin.group == "eh_proj":
        return spec.scheme
    if not lin.quantizable or not spec.quantized:
        return "bf16"
    if lin.mtp is None:
        return spec.scheme
    if _formats_more.head_stays_bf16(spec.producer, lin.name) or (
        spec.producer in _formats_int4.HEADS_NEVER_QUANTIZED
        and lin.name.endswith(("shared_head.head", "shared_head.output"))
    ):
        return "bf16"
    return mtp_fmts[lin.mtp].of(lin.group)


# -------------------------------------------------------------------------- exclusions
def _mtp_exclusions(
    fam: Family, mode: ExclusionMode, formats: dict[str, Format], mtp_fmts: tuple[MtpFormats, ...]
) -> list[str]:
    if mode == "none":
        return []
    bf16_mtp = [lin for lin in fam.linears if lin.mtp is not None and formats[lin.name] == "bf16"]
    if mode == "exact":
        return [lin.name for lin in bf16_mtp]
    # wildcard: the widest glob(s) that cover exactly the BF16 MTP modules
    if all(f.all_bf16 for f in mtp_fmts) and fam.mtp_root_glob:
        return [fam.mtp_root_glob]
    globs: list[str] = []
    covered: set[str] = set()
    for k, prefix in enumerate(fam.mtp_layer_prefixes):
        if mtp_fmts[k].all_bf16 and not fam.mtp_root_glob:
            globs.append(f"{prefix}*")
            covered |= {lin.name for lin in bf16_mtp if lin.name.startswith(prefix + ".")}
            continue
        for g in _GROUPS:
            if mtp_fmts[k].of(g) != "bf16":
                continue
            glob = fam.group_globs[(k, g)]
            if glob not in globs:
                globs.append(glob)
            stem = glob.rstrip("*")
            covered |= {lin.name for lin in bf16_mtp if lin.name.startswith(stem)}
    return globs + [lin.name for lin in bf16_mtp if lin.name not in covered]


def _target_exclusions(fam: Family) -> list[str]:
    return [lin.name for lin in fam.linears if lin.mtp is None and not lin.quantizable]


def _to_ct(pattern: str) -> str:
    """ModelOpt glob -> compressed-tensors ``ignore`` entry (exact name or ``re:``)."""
    if "*" not in pattern:
        return pattern
    return "re:" + ".*".join(re.escape(part) for part in pattern.split("*"))


# ------------------------------------------------------------------------ quant config
def _quant_configs(
    spec: CheckpointSpec, exclusions: list[str]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(config.json quantization_config, hf_quant_config.json or None)."""
    if spec.producer in _formats_more.MORE_PRODUCERS:
        return _formats_more.quant_config(spec.producer, exclusions), None
    if spec.producer in _formats_int4.INT4_PRODUCERS:
        fam = FAMILIES[spec.family](spec.num_mtp_layers)
        target = _target_exclusions(fam)
        return _formats_int4.quant_config(
            spec.producer, [e for e in exclusions if e not in target], target), None
    if spec.producer == "modelopt":
        return modelopt_quant_configs(spec.scheme, exclusions)
    if spec.scheme == "int4":
        args = {
            "num_bits": 4,
            "type": "int",
            "strategy": "group",
            "group_size": _formats_int4.GROUP,
            "symmetric": True,
            "dynamic": False,
            "observer": "minmax",
            "actorder": None,
            "block_structure": None,
        }
        acts = None
        fmt = "pack-quantized"
    elif spec.scheme == "nvfp4":
        args = {
            "num_bits": 4,
            "type": "float",
            "strategy": "tensor_group",
            "group_size": 16,
            "symmetric": True,
            "dynamic": False,
            "observer": "static_minmax",
            "actorder": None,
            "block_structure": None,
        }
        acts = {**args, "dynamic": "local", "observer": "static_minmax"}
        fmt = "nvfp4-pack-quantized"
    else:
        args = {
            "num_bits": 8,
            "type": "float",
            "strategy": "tensor",
            "group_size": None,
            "symmetric": True,
            "dynamic": False,
            "observer": "minmax",
            "actorder": None,
            "block_structure": None,
        }
        acts = dict(args)
        fmt = "float-quantized"
    qc = {
        "config_groups": {
            "group_0": {
                "targets": ["Linear"],
                "weights": args,
                "input_activations": acts,
                "output_activations": None,
                "format": fmt,
            }
        },
        "format": fmt,
        "global_compression_ratio": None,
        "ignore": [_to_ct(e) for e in exclusions],
        "kv_cache_scheme": None,
        "quant_method": "compressed-tensors",
        "quantization_status": "compressed",
        "sparsity_config": {},
        "version": "0.12.2",
    }
    return qc, None


# ------------------------------------------------------------------------------ writer
def write_checkpoint(path: str | os.PathLike[str], spec: CheckpointSpec) -> WrittenCheckpoint:
    """Write ``spec`` into the folder ``path`` (created if needed) and describe it."""
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    fam = FAMILIES[spec.family](spec.num_mtp_layers)
    mtp_fmts = spec.mtp_formats()

    formats = {lin.name: _module_format(lin, spec, mtp_fmts) for lin in fam.linears}
    mode = spec.exclusion_mode()
    mtp_excl = (
        list(mode) if isinstance(mode, tuple) else _mtp_exclusions(fam, mode, formats, mtp_fmts)
    )
    exclusions = _target_exclusions(fam) + mtp_excl

    # tensors, target first then MTP (as exports and grafts order them)
    target: list[tuple[str, T.RawTensor, str, Format]] = []
    mtp: list[tuple[str, T.RawTensor, str, Format]] = []
    for lin in fam.linears:
        bucket = target if lin.mtp is None else mtp
        for name, t in _quant_tensors(lin, formats[lin.name], spec.producer, spec.seed):
            bucket.append((name, t, lin.name, formats[lin.name]))
    for p in fam.plains:
        bucket = target if p.mtp is None else mtp
        module = p.name.rsplit(".", 1)[0]
        # a bias belongs to its linear: it reports that module's format
        bucket.append((p.name, _plain_tensor(p, spec.seed), module, formats.get(module, "bf16")))
    target.sort(key=lambda r: _natural(r[0]))
    mtp.sort(key=lambda r: _natural(r[0]))
    if not spec.with_mtp:
        mtp = []

    shards = _plan_shards(target, mtp, spec)
    tensors: dict[str, TensorInfo] = {}
    mtp_names = {r[0] for r in mtp}
    for fname, rows in shards:
        write_safetensors(root / fname, [(r[0], r[1]) for r in rows], {"format": "pt"})
        for name, t, module, fmt in rows:
            tensors[name] = TensorInfo(t.dtype, t.shape, fname, module, fmt, name in mtp_names)
    if len(shards) > 1:
        total = sum(len(r[1].data) for _, rows in shards for r in rows)
        weight_map = {r[0]: fname for fname, rows in shards for r in rows}
        write_json(
            root / "model.safetensors.index.json",
            {"metadata": {"total_size": total}, "weight_map": weight_map},
        )

    qc, hf_quant = _quant_configs(spec, exclusions)
    written_exclusions: list[str] = list(  # each producer's own exclusion field
        qc.get("ignore", qc.get("exclude", qc.get("modules_to_not_convert",
               qc.get("dynamic", qc.get("extra_config", []))))) or []
    ) if spec.quantized else []
    config = {**fam.config, "quantization_config": qc} if spec.quantized else dict(fam.config)
    write_json(root / "config.json", config)
    if hf_quant is not None and spec.quantized:
        write_json(root / "hf_quant_config.json", hf_quant)
    for fname, text in getattr(fam, "extra_files", {}).items():  # e.g. remote-code configs
        (root / fname).write_text(text)
    write_json(root / "generation_config.json", {"_from_model_config": True})
    return WrittenCheckpoint(
        path=root,
        spec=spec,
        tensors=tensors,
        module_formats=formats,
        mtp_modules=frozenset(lin.name for lin in fam.linears if lin.mtp is not None),
        exclusions=written_exclusions,
        config=config,
        files=[f for f, _ in shards],
    )


def _natural(name: str) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def _plan_shards(
    target: Sequence[tuple[str, T.RawTensor, str, Format]],
    mtp: Sequence[tuple[str, T.RawTensor, str, Format]],
    spec: CheckpointSpec,
) -> list[tuple[str, list[tuple[str, T.RawTensor, str, Format]]]]:
    if not spec.sharded and not spec.mtp_own_shard:
        return [("model.safetensors", [*target, *mtp])]
    if spec.sharded:
        half = len(target) // 2
        parts = [list(target[:half]), list(target[half:])]
    else:
        parts = [list(target)]
    if spec.mtp_own_shard:
        named = [
            (f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors", p) for i, p in enumerate(parts)
        ]
        return [*named, ("model-mtp.safetensors", list(mtp))] if mtp else named
    parts[-1] += list(mtp)
    return [(f"model-{i + 1:05d}-of-{len(parts):05d}.safetensors", p) for i, p in enumerate(parts)]
