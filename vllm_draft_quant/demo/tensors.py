"""Raw tensor encodings and a minimal safetensors writer (numpy only, no torch).

Used by the demo's checkpoint (``checkpoint.py``) and by the test suite's checkpoint
factory (``tests/support``), so both encode a tensor the same way.

A safetensors file is an 8-byte little-endian header length, a UTF-8 JSON header
(``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {...}}``) and the
concatenated tensor bytes. numpy has no bfloat16 or float8 dtype, so every tensor
is handed to the writer as raw bytes plus its safetensors dtype string.

Values are random but reproducible (``numpy.random.Generator`` seeded per tensor)
and always finite: FP8 bytes never take the E4M3FN NaN encodings (0x7F, 0xFF),
and scales are positive.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "RawTensor",
    "bf16",
    "e4m3_positive_scales",
    "e4m3_weight",
    "f32",
    "fusion_key",
    "modelopt_linear",
    "nvfp4_packed",
    "rng_for",
    "scalar_scale",
    "write_json",
    "write_safetensors",
]

_ITEMSIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1, "I32": 4, "I64": 8}


@dataclass(frozen=True)
class RawTensor:
    """One tensor ready to be written: safetensors dtype, shape, little-endian bytes."""

    dtype: str
    shape: tuple[int, ...]
    data: bytes

    def __post_init__(self) -> None:
        n = int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1
        if len(self.data) != n * _ITEMSIZE[self.dtype]:
            raise ValueError(
                f"{self.dtype}{list(self.shape)} needs {n * _ITEMSIZE[self.dtype]} bytes, "
                f"got {len(self.data)}"
            )


def rng_for(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the checkpoint seed and the tensor name."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _f32_to_bf16_bits(x: np.ndarray) -> np.ndarray:
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))
    return (rounded >> np.uint32(16)).astype("<u2")


def bf16(
    rng: np.random.Generator, shape: tuple[int, ...], *, std: float = 0.02, mean: float = 0.0
) -> RawTensor:
    """Normal(mean, std) values stored as BF16 (round to nearest even)."""
    values = rng.normal(mean, std, size=shape).astype(np.float32)
    return RawTensor("BF16", shape, _f32_to_bf16_bits(values).tobytes())


def f32(values: np.ndarray | float, shape: tuple[int, ...] | None = None) -> RawTensor:
    """Float32 tensor; a Python float with ``shape=()`` gives a scalar."""
    arr = np.asarray(values, dtype="<f4")
    if shape is not None:
        arr = arr.reshape(shape)
    return RawTensor("F32", tuple(arr.shape), arr.tobytes())


def e4m3_weight(rng: np.random.Generator, shape: tuple[int, ...]) -> RawTensor:
    """Random finite FP8 E4M3FN bytes of either sign (NaN codes 0x7F/0xFF excluded)."""
    n = int(np.prod(shape, dtype=np.int64))
    # 0..0x7E is every finite non-negative code; the top bit adds the sign.
    magnitude = rng.integers(0, 0x7F, size=n, dtype=np.uint8)
    sign = rng.integers(0, 2, size=n, dtype=np.uint8) << np.uint8(7)
    return RawTensor("F8_E4M3", shape, (magnitude | sign).tobytes())


def e4m3_positive_scales(rng: np.random.Generator, shape: tuple[int, ...]) -> RawTensor:
    """Positive normal FP8 E4M3FN values in [0.5, 3.75] (exponent field 6..8)."""
    n = int(np.prod(shape, dtype=np.int64))
    exponent = rng.integers(6, 9, size=n, dtype=np.uint8)
    mantissa = rng.integers(0, 8, size=n, dtype=np.uint8)
    return RawTensor("F8_E4M3", shape, ((exponent << np.uint8(3)) | mantissa).tobytes())


def nvfp4_packed(rng: np.random.Generator, shape: tuple[int, ...]) -> RawTensor:
    """Two E2M1 codes per byte (every 4-bit code is a finite value): U8 [..., in/2]."""
    n = int(np.prod(shape, dtype=np.int64))
    return RawTensor("U8", shape, rng.integers(0, 256, size=n, dtype=np.uint8).tobytes())


_FUSED_WITH_FIRST = {
    ".k_proj": ".q_proj",
    ".v_proj": ".q_proj",
    ".up_proj": ".gate_proj",
    ".kv_a_proj_with_mqa": ".q_a_proj",
}
# activation scales and NVFP4 global weight scales are shared by the modules vLLM
# fuses (same input; ModelOpt and llm-compressor unify fused globals)
_SHARED_BY_FUSED = ("input_scale", "input_global_scale", "weight_scale_2", "weight_global_scale")


def fusion_key(name: str) -> str:
    """The name of the first module of the fused group ``name`` belongs to."""
    for member, first in _FUSED_WITH_FIRST.items():
        if name.endswith(member):
            return name[: -len(member)] + first
    return name


def scalar_scale(
    seed: int, name: str, suffix: str, lo: float, hi: float, shape: tuple[int, ...]
) -> RawTensor:
    """A positive per-tensor scale (``shape`` ``()``, ``(1,)`` or ``(E,)`` when stacked)
    of linear ``name``; the scales fused modules share are drawn once per fused group."""
    key = f"{fusion_key(name) if suffix in _SHARED_BY_FUSED else name}.{suffix}"
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    return f32(rng_for(seed, key).uniform(lo, hi, size=n), shape)


def modelopt_linear(
    name: str,
    out: int,
    inp: int,
    fmt: str,
    seed: int,
    lead: tuple[int, ...] = (),
    scalar: tuple[int, ...] | None = None,
) -> list[tuple[str, RawTensor]]:
    """The tensors of linear ``name`` [*lead, out, inp] as a ModelOpt export stores them:
    ``bf16``, ``fp8`` (per-tensor) or ``nvfp4``; ``lead`` is ``(E,)`` for stacked experts.
    Per-tensor scales have shape ``scalar`` (default ``lead``: ``[]``, or ``[E]`` when
    stacked; compressed-tensors' FP8 stores the same tensors with ``[1]``)."""
    scalar = lead if scalar is None else scalar

    def rng(suffix: str) -> np.random.Generator:
        return rng_for(seed, f"{name}.{suffix}")

    if fmt == "bf16":
        return [(f"{name}.weight", bf16(rng("weight"), (*lead, out, inp)))]
    if fmt == "fp8":
        return [
            (f"{name}.weight", e4m3_weight(rng("weight"), (*lead, out, inp))),
            (f"{name}.weight_scale", scalar_scale(seed, name, "weight_scale", 1e-3, 4e-3, scalar)),
            (f"{name}.input_scale", scalar_scale(seed, name, "input_scale", 1e-2, 4e-2, scalar)),
        ]
    if fmt == "nvfp4":
        return [
            (f"{name}.weight", nvfp4_packed(rng("weight"), (*lead, out, inp // 2))),
            (
                f"{name}.weight_scale",
                e4m3_positive_scales(rng("weight_scale"), (*lead, out, inp // 16)),
            ),
            (
                f"{name}.weight_scale_2",
                scalar_scale(seed, name, "weight_scale_2", 1e-4, 4e-4, scalar),
            ),
            (f"{name}.input_scale", scalar_scale(seed, name, "input_scale", 1e-3, 4e-3, scalar)),
        ]
    raise ValueError(f"{name}: ModelOpt format {fmt!r} is not one of bf16, fp8, nvfp4")


def write_json(path: Path, obj: object, *, durable: bool = True) -> None:
    """``obj`` as indented JSON, written atomically (temporary file, fsync, rename).

    ``durable=False`` skips the fsync: the rename still makes the write atomic for a
    killed process, not for a power cut (the test suite's throwaway checkpoints)."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=2)
        fh.write("\n")
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_safetensors(
    path: Path,
    tensors: Iterable[tuple[str, RawTensor]],
    metadata: dict[str, str] | None = None,
    *,
    durable: bool = True,
) -> None:
    """Write ``tensors`` (in the given order) to ``path`` atomically (``durable``: as
    ``write_json``)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    chunks: list[bytes] = []
    offset = 0
    for name, tensor in tensors:
        if name in header:
            raise ValueError(f"duplicate tensor name {name!r} in {path}")
        header[name] = {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": [offset, offset + len(tensor.data)],
        }
        chunks.append(tensor.data)
        offset += len(tensor.data)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the reference writer pads the header to 8 bytes
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.write(len(raw).to_bytes(8, "little"))
        fh.write(raw)
        for chunk in chunks:
            fh.write(chunk)
        if durable:
            fh.flush()
            os.fsync(fh.fileno())
    os.replace(tmp, path)
