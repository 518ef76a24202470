"""A tiny pure-Python safetensors writer for tests (header + zero bytes).

Kept independent of the package under test: its own dtype sizes, its own
layout, so a test does not check the reader against itself. Hostile files are
built with `encode` / `write_raw`, which take any header (dict, str or bytes)
and an optional lying length prefix.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Bits per element, from safetensors' Dtype::bitsize.
BITS = {
    "BOOL": 8,
    "U8": 8,
    "I8": 8,
    "F8_E4M3": 8,
    "F8_E5M2": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "U16": 16,
    "I16": 16,
    "F16": 16,
    "BF16": 16,
    "U32": 32,
    "I32": 32,
    "F32": 32,
    "C64": 64,
    "U64": 64,
    "I64": 64,
    "F64": 64,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
}

Spec = tuple[str, Sequence[int]]  # (dtype, shape)


def nbytes(dtype: str, shape: Sequence[int]) -> int:
    return math.prod(shape) * BITS[dtype] // 8


def layout(
    tensors: Mapping[str, Spec], metadata: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Header dict with tensors laid out back to back in the given order."""
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, (dtype, shape) in tensors.items():
        size = nbytes(dtype, shape)
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + size],
        }
        offset += size
    return header


def data_size(header: Mapping[str, Any]) -> int:
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"]
    return max(ends, default=0)


def encode(header: Mapping[str, Any] | str | bytes, *, length: int | None = None) -> bytes:
    """8-byte little-endian length + header (space-padded to 8 bytes like safetensors)."""
    if isinstance(header, bytes):
        raw = header
    else:
        text = header if isinstance(header, str) else json.dumps(header, separators=(",", ":"))
        raw = text.encode("utf-8")
        raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw) if length is None else length) + raw


def write_raw(
    path: Path,
    header: Mapping[str, Any] | str | bytes,
    data_len: int | None = None,
    *,
    length: int | None = None,
) -> Path:
    """Write `header` and `data_len` zero bytes (default: what the header needs)."""
    if data_len is None:
        data_len = data_size(header) if isinstance(header, Mapping) else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode(header, length=length) + bytes(data_len))
    return path


def write_safetensors(
    path: Path, tensors: Mapping[str, Spec], metadata: Mapping[str, str] | None = None
) -> Path:
    """Write a valid safetensors file whose tensors are all zeros."""
    return write_raw(path, layout(tensors, metadata))


def write_index(model_dir: Path, weight_map: Mapping[str, Any] | str | bytes) -> Path:
    """Write model.safetensors.index.json (a dict becomes ``{"weight_map": ...}``)."""
    path = model_dir / "model.safetensors.index.json"
    if isinstance(weight_map, bytes):
        path.write_bytes(weight_map)
    elif isinstance(weight_map, str):
        path.write_text(weight_map, encoding="utf-8")
    else:
        doc = {"metadata": {"total_size": 0}, "weight_map": dict(weight_map)}
        path.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    return path


def write_checkpoint(
    model_dir: Path, shards: Mapping[str, Mapping[str, Spec]], *, index: bool = True
) -> Path:
    """Write each shard and, if `index`, an index mapping every tensor to its shard."""
    model_dir.mkdir(parents=True, exist_ok=True)
    for shard, tensors in shards.items():
        write_safetensors(model_dir / shard, tensors)
    if index:
        write_index(model_dir, {n: s for s, ts in shards.items() for n in ts})
    return model_dir
