"""Checkpoints at DeepSeek-V3 scale with real headers and no data (sparse files).

`write_synthetic_checkpoint` writes ``config.json``, a shard index and
``num_shards`` safetensors files. Each file has a real header (every tensor's
name, dtype, shape and offsets, as an export writes them) and is then
``truncate``-d to the size the header declares, so the data section is a hole:
nothing is written, the disk holds only the headers, and header readers see a
valid file. The default spec is DeepSeek-V3/R1 (61 target layers + 1 MTP layer,
256 routed experts, native FP8 block scales): about 92k tensor names over 163
shards, ~690 GB apparent size. Used by the scale test and the benchmarks.

Pure standard library (no numpy, torch or vllm).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["SyntheticCheckpoint", "SyntheticSpec", "write_synthetic_checkpoint"]

SyntheticScheme = Literal["fp8_block", "nvfp4", "bf16"]

_BYTES = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1}


@dataclass(frozen=True)
class SyntheticSpec:
    """Shape of the synthetic model. Defaults: DeepSeek-V3 (config.json of the hub repo)."""

    num_hidden_layers: int = 61
    num_mtp_layers: int = 1
    num_experts: int = 256
    first_k_dense_replace: int = 3
    num_shards: int = 163
    #: how target linears are stored: DeepSeek native FP8 (weight_scale_inv 128x128
    #: blocks), ModelOpt NVFP4, or unquantized
    scheme: SyntheticScheme = "fp8_block"
    #: how the MTP layers' linears are stored (None: like the target); "bf16" in an
    #: FP8/NVFP4 checkpoint also excludes them in the quant config
    mtp_scheme: SyntheticScheme | None = None
    hidden_size: int = 7168
    intermediate_size: int = 18432
    moe_intermediate_size: int = 2048
    vocab_size: int = 129280
    q_lora_rank: int = 1536
    kv_lora_rank: int = 512
    num_attention_heads: int = 128
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128

    def __post_init__(self) -> None:
        if self.num_hidden_layers < 1 or self.num_mtp_layers < 0 or self.num_experts < 1:
            raise ValueError("need >= 1 target layer, >= 0 MTP layers and >= 1 expert")
        if self.num_shards < 1:
            raise ValueError("num_shards must be >= 1")
        if self.mtp_scheme not in (None, self.scheme, "bf16"):
            raise ValueError(f"mtp_scheme={self.mtp_scheme!r}: use None, 'bf16' or "
                             f"{self.scheme!r}")

    @property
    def mtp_format(self) -> SyntheticScheme:
        return self.mtp_scheme or self.scheme


@dataclass
class SyntheticCheckpoint:
    """What `write_synthetic_checkpoint` wrote."""

    path: Path
    spec: SyntheticSpec
    weight_map: dict[str, str]  # tensor name -> shard file
    shards: list[str]
    #: shards that hold at least one tensor of an MTP layer
    draft_shards: frozenset[str]
    #: stored format ("fp8_block" | "nvfp4" | "bf16") of every MTP checkpoint module
    mtp_module_formats: dict[str, str] = field(default_factory=dict)
    total_size: int = 0  # bytes of tensor data the headers declare (none are written)

    @property
    def num_tensors(self) -> int:
        return len(self.weight_map)


# ------------------------------------------------------------------ tensors
_Tensor = tuple[str, str, tuple[int, ...], str]  # name, dtype, shape, module format


def _linear(name: str, out: int, inp: int, fmt: SyntheticScheme) -> Iterator[_Tensor]:
    if fmt == "fp8_block":
        yield f"{name}.weight", "F8_E4M3", (out, inp), fmt
        yield f"{name}.weight_scale_inv", "F32", (math.ceil(out / 128), math.ceil(inp / 128)), fmt
    elif fmt == "nvfp4":
        yield f"{name}.weight", "U8", (out, inp // 2), fmt
        yield f"{name}.weight_scale", "F8_E4M3", (out, inp // 16), fmt
        yield f"{name}.weight_scale_2", "F32", (), fmt
        yield f"{name}.input_scale", "F32", (), fmt
    else:
        yield f"{name}.weight", "BF16", (out, inp), fmt


def _plain(name: str, shape: tuple[int, ...], dtype: str = "BF16") -> _Tensor:
    return name, dtype, shape, "bf16"


def _layer(s: SyntheticSpec, i: int, fmt: SyntheticScheme, mtp: bool) -> Iterator[_Tensor]:
    p = f"model.layers.{i}"
    h, heads = s.hidden_size, s.num_attention_heads
    a = f"{p}.self_attn"
    yield _plain(f"{p}.input_layernorm.weight", (h,))
    yield _plain(f"{p}.post_attention_layernorm.weight", (h,))
    yield from _linear(f"{a}.q_a_proj", s.q_lora_rank, h, fmt)
    yield _plain(f"{a}.q_a_layernorm.weight", (s.q_lora_rank,))
    yield from _linear(f"{a}.q_b_proj", heads * (s.qk_nope_head_dim + s.qk_rope_head_dim),
                       s.q_lora_rank, fmt)
    yield from _linear(f"{a}.kv_a_proj_with_mqa", s.kv_lora_rank + s.qk_rope_head_dim, h, fmt)
    yield _plain(f"{a}.kv_a_layernorm.weight", (s.kv_lora_rank,))
    yield from _linear(f"{a}.kv_b_proj", heads * (s.qk_nope_head_dim + s.v_head_dim),
                       s.kv_lora_rank, fmt)
    yield from _linear(f"{a}.o_proj", h, heads * s.v_head_dim, fmt)
    m = f"{p}.mlp"
    if i < s.first_k_dense_replace and not mtp:
        yield from _linear(f"{m}.gate_proj", s.intermediate_size, h, fmt)
        yield from _linear(f"{m}.up_proj", s.intermediate_size, h, fmt)
        yield from _linear(f"{m}.down_proj", h, s.intermediate_size, fmt)
    else:
        inter = s.moe_intermediate_size
        yield _plain(f"{m}.gate.weight", (s.num_experts, h))
        yield _plain(f"{m}.gate.e_score_correction_bias", (s.num_experts,), "F32")
        for e in range(s.num_experts):
            yield from _linear(f"{m}.experts.{e}.gate_proj", inter, h, fmt)
            yield from _linear(f"{m}.experts.{e}.up_proj", inter, h, fmt)
            yield from _linear(f"{m}.experts.{e}.down_proj", h, inter, fmt)
        yield from _linear(f"{m}.shared_experts.gate_proj", inter, h, fmt)
        yield from _linear(f"{m}.shared_experts.up_proj", inter, h, fmt)
        yield from _linear(f"{m}.shared_experts.down_proj", h, inter, fmt)
    if mtp:  # DeepSeek's MTP extras; the head and eh_proj stay BF16 in every export
        yield _plain(f"{p}.embed_tokens.weight", (s.vocab_size, h))
        yield _plain(f"{p}.enorm.weight", (h,))
        yield _plain(f"{p}.hnorm.weight", (h,))
        yield from _linear(f"{p}.eh_proj", h, 2 * h, "bf16")
        yield _plain(f"{p}.shared_head.norm.weight", (h,))
        yield from _linear(f"{p}.shared_head.head", s.vocab_size, h, "bf16")


def _tensors(s: SyntheticSpec) -> list[_Tensor]:
    out = [_plain("model.embed_tokens.weight", (s.vocab_size, s.hidden_size))]
    for i in range(s.num_hidden_layers):
        out += _layer(s, i, s.scheme, mtp=False)
    for k in range(s.num_mtp_layers):
        out += _layer(s, s.num_hidden_layers + k, s.mtp_format, mtp=True)
    out.append(_plain("model.norm.weight", (s.hidden_size,)))
    out.append(_plain("lm_head.weight", (s.vocab_size, s.hidden_size)))
    return out


def _nbytes(dtype: str, shape: tuple[int, ...]) -> int:
    return math.prod(shape) * _BYTES[dtype]


# ------------------------------------------------------------------- shards
def _split(sizes: list[int], n: int) -> list[int]:
    """Shard index per tensor: contiguous, by bytes, every shard non-empty."""
    n = min(n, len(sizes))
    total = sum(sizes) or 1
    out, start = [], 0
    for size in sizes:
        out.append(min(n - 1, start * n // total))
        start += size
    if len(set(out)) == n:
        return out
    return [i * n // len(sizes) for i in range(len(sizes))]  # by count: never empty


def _write_sparse(path: Path, rows: list[_Tensor]) -> int:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape, _ in rows:
        size = _nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        fh.truncate(8 + len(raw) + offset)  # the data section is a hole
    return offset


# ------------------------------------------------------------------- config
def _config(s: SyntheticSpec) -> dict[str, Any]:
    return {
        "architectures": ["DeepseekV3ForCausalLM"],
        "model_type": "deepseek_v3",
        "hidden_size": s.hidden_size,
        "intermediate_size": s.intermediate_size,
        "moe_intermediate_size": s.moe_intermediate_size,
        "num_hidden_layers": s.num_hidden_layers,
        "num_nextn_predict_layers": s.num_mtp_layers,
        "num_attention_heads": s.num_attention_heads,
        "num_key_value_heads": s.num_attention_heads,
        "q_lora_rank": s.q_lora_rank,
        "kv_lora_rank": s.kv_lora_rank,
        "qk_nope_head_dim": s.qk_nope_head_dim,
        "qk_rope_head_dim": s.qk_rope_head_dim,
        "v_head_dim": s.v_head_dim,
        "n_routed_experts": s.num_experts,
        "n_shared_experts": 1,
        "num_experts_per_tok": min(8, s.num_experts),
        "first_k_dense_replace": s.first_k_dense_replace,
        "moe_layer_freq": 1,
        "vocab_size": s.vocab_size,
        "torch_dtype": "bfloat16",
    }


def _quant_files(s: SyntheticSpec, mtp_linears: list[str]) -> dict[str, Any]:
    """{file name: JSON} of the quant config(s); empty for an unquantized model."""
    mtp_bf16 = s.mtp_format == "bf16" and s.scheme != "bf16" and s.num_mtp_layers > 0
    if s.scheme == "fp8_block":
        qc: dict[str, Any] = {"quant_method": "fp8", "activation_scheme": "dynamic",
                              "fmt": "e4m3", "weight_block_size": [128, 128]}
        if mtp_bf16:
            qc["ignored_layers"] = mtp_linears
        return {"config.json": qc}
    if s.scheme == "nvfp4":
        exclude = ["lm_head", *(f"model.layers.{s.num_hidden_layers + k}*"
                                for k in range(s.num_mtp_layers) if mtp_bf16)]
        return {
            "config.json": {"quant_method": "modelopt", "quant_algo": "NVFP4",
                            "ignore": exclude},
            "hf_quant_config.json": {"producer": {"name": "modelopt"}, "quantization": {
                "quant_algo": "NVFP4", "group_size": 16, "exclude_modules": exclude}},
        }
    return {}


def _natural(name: str) -> list[Any]:
    return [int(x) if x.isdigit() else x for x in re.split(r"(\d+)", name)]


def write_synthetic_checkpoint(
    path: str | os.PathLike[str], spec: SyntheticSpec | None = None
) -> SyntheticCheckpoint:
    """Write ``spec`` (default: DeepSeek-V3 scale) into the folder ``path``."""
    s = spec or SyntheticSpec()
    root = Path(path)
    root.mkdir(parents=True, exist_ok=True)
    rows = _tensors(s)
    index = _split([_nbytes(d, sh) for _, d, sh, _ in rows], s.num_shards)
    n = max(index) + 1
    names = [f"model-{i + 1:05d}-of-{n:06d}.safetensors" for i in range(n)]
    per_shard: list[list[_Tensor]] = [[] for _ in range(n)]
    for row, i in zip(rows, index, strict=True):
        per_shard[i].append(row)
    total = sum(_write_sparse(root / names[i], per_shard[i]) for i in range(n))

    weight_map = {row[0]: names[i] for row, i in zip(rows, index, strict=True)}
    mtp_roots = tuple(f"model.layers.{s.num_hidden_layers + k}." for k in range(s.num_mtp_layers))
    mtp_rows = [r for r in rows if r[0].startswith(mtp_roots)]
    mtp_modules = {r[0].rsplit(".", 1)[0]: r[3] for r in mtp_rows}
    mtp_linears = sorted((m for m, f in mtp_modules.items() if not m.endswith(
        ("norm", "embed_tokens", "mlp.gate"))), key=_natural)
    _dump(root / "model.safetensors.index.json",
          {"metadata": {"total_size": total}, "weight_map": weight_map})
    config = _config(s)
    quant = _quant_files(s, mtp_linears)
    if "config.json" in quant:
        config["quantization_config"] = quant.pop("config.json")
    _dump(root / "config.json", config)
    for fname, body in quant.items():
        _dump(root / fname, body)
    return SyntheticCheckpoint(
        path=root, spec=s, weight_map=weight_map, shards=names,
        draft_shards=frozenset(weight_map[r[0]] for r in mtp_rows),
        mtp_module_formats=mtp_modules, total_size=total,
    )


def _dump(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1), encoding="utf-8")
    os.replace(tmp, path)
