"""Raw tensor encodings and a minimal safetensors writer (numpy only, no torch).

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
    "nvfp4_packed",
    "rng_for",
    "write_safetensors",
]

_ITEMSIZE = {"BF16": 2, "F32": 4, "F8_E4M3": 1, "U8": 1}


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


def write_safetensors(
    path: Path, tensors: Iterable[tuple[str, RawTensor]], metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` (in the given order) to ``path`` atomically."""
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
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
