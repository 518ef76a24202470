"""Read and validate a safetensors header without touching tensor data.

The file is untrusted input. The rules are the ones safetensors enforces when it
opens a file (``tensor.rs``), so a header accepted here also opens there:

* at least 8 bytes; a little-endian u64 header length of at most 100 MB that fits
  in the file;
* the header is UTF-8 JSON holding an object;
* every entry but ``__metadata__`` has a known ``dtype``, a ``shape`` of
  non-negative integers and ``data_offsets`` ``[begin, end]`` whose span is the
  tensor's size (sub-byte dtypes must end on a byte boundary);
* the tensors tile the data section from byte 0 to its end, without gaps or
  overlaps;
* ``__metadata__`` is absent, null or a string-to-string map.

Every failure raises `CheckpointError` naming the file, the tensor or field, the
value found and the fix.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from vllm_draft_quant.errors import CheckpointError

__all__ = ["DTYPE_BITS", "MAX_HEADER_BYTES", "SafetensorsHeader", "TensorInfo", "read_header"]

#: safetensors' own limit on the JSON header (``MAX_HEADER_SIZE``).
MAX_HEADER_BYTES = 100_000_000

#: Bits per element of every dtype safetensors 0.8 knows (``Dtype::bitsize``).
DTYPE_BITS: Mapping[str, int] = MappingProxyType(
    {
        "BOOL": 8,
        "F4": 4,
        "F6_E2M3": 6,
        "F6_E3M2": 6,
        "U8": 8,
        "I8": 8,
        "F8_E5M2": 8,
        "F8_E4M3": 8,
        "F8_E8M0": 8,
        "F8_E4M3FNUZ": 8,
        "F8_E5M2FNUZ": 8,
        "I16": 16,
        "U16": 16,
        "F16": 16,
        "BF16": 16,
        "I32": 32,
        "U32": 32,
        "F32": 32,
        "C64": 64,
        "F64": 64,
        "I64": 64,
        "U64": 64,
    }
)

_U64_MAX = 2**64 - 1
_METADATA_KEY = "__metadata__"
_FIX_CORRUPT = "re-download the shard or re-export it with safetensors"


@dataclass(frozen=True)
class TensorInfo:
    """What a header says about one tensor."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    data_offsets: tuple[int, int]
    file: str


@dataclass(frozen=True)
class SafetensorsHeader:
    """A validated header: tensors by name, the ``__metadata__`` map, bytes read."""

    path: Path
    tensors: Mapping[str, TensorInfo]
    metadata: Mapping[str, str]
    bytes_read: int


def read_header(path: str | os.PathLike[str], *, file: str | None = None) -> SafetensorsHeader:
    """Read and validate the header of the safetensors file at `path`.

    Only the 8-byte length and the JSON header are read. `file` is the name
    recorded in each `TensorInfo` (default: the file's base name).
    """
    path = Path(path)
    raw, file_size = _read_header_bytes(path)
    header = _parse_json(path, raw)
    data_size = file_size - 8 - len(raw)
    shard = path.name if file is None else file
    tensors, metadata = _validate(path, header, data_size, shard)
    return SafetensorsHeader(
        path=path,
        tensors=MappingProxyType(tensors),
        metadata=MappingProxyType(metadata),
        bytes_read=8 + len(raw),
    )


def _fail(path: Path, problem: str, fix: str = _FIX_CORRUPT) -> NoReturn:
    raise CheckpointError(f"{path}: {problem}; {fix}")


def _show(value: object, limit: int = 80) -> str:
    """`repr` of `value`, cut short so a hostile header cannot flood a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read_header_bytes(path: Path) -> tuple[bytes, int]:
    """Return the JSON header bytes and the file size."""
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            _fail(path, "is not a regular file", "point at a .safetensors file")
        with path.open("rb") as f:
            file_size = os.fstat(f.fileno()).st_size
            if file_size < 8:
                _fail(path, f"is {file_size} bytes, shorter than the 8-byte header length")
            prefix = f.read(8)
            if len(prefix) != 8:
                _fail(path, "file shrank while its header length was being read")
            (length,) = struct.unpack("<Q", prefix)
            if length > MAX_HEADER_BYTES:
                _fail(
                    path,
                    f"header length {length} exceeds safetensors' limit of "
                    f"{MAX_HEADER_BYTES} bytes (not a safetensors file, or corrupt)",
                )
            if 8 + length > file_size:
                _fail(
                    path,
                    f"header length {length} runs past the end of the {file_size}-byte "
                    "file (truncated download?)",
                )
            raw = f.read(length)
    except OSError as e:
        raise CheckpointError(
            f"{path}: cannot read the safetensors header ({e.strerror or e}); "
            "check that the file exists and is readable"
        ) from e
    if len(raw) != length:
        _fail(path, f"file shrank while reading: got {len(raw)} of {length} header bytes")
    return raw, file_size


def _reject_constant(token: str) -> NoReturn:
    raise ValueError(f"{token} is not valid JSON")


def _parse_json(path: Path, raw: bytes) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CheckpointError(
            f"{path}: header is not UTF-8 (bad byte at header offset {e.start}); {_FIX_CORRUPT}"
        ) from e
    try:
        header = json.loads(text, parse_constant=_reject_constant)
    except RecursionError as e:
        raise CheckpointError(
            f"{path}: header JSON is nested too deeply to be a safetensors header; {_FIX_CORRUPT}"
        ) from e
    except ValueError as e:  # JSONDecodeError, NaN/Infinity, over-long integers
        raise CheckpointError(f"{path}: header is not valid JSON ({e}); {_FIX_CORRUPT}") from e
    if not isinstance(header, dict):
        _fail(path, f"header is a JSON {type(header).__name__}, not an object")
    return header


def _validate(
    path: Path, header: dict[str, Any], data_size: int, shard: str
) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    metadata = _validate_metadata(path, header.get(_METADATA_KEY))
    tensors: dict[str, TensorInfo] = {}
    for name, entry in header.items():
        if name != _METADATA_KEY:
            tensors[name] = _validate_entry(path, name, entry, data_size, shard)
    _check_tiling(path, tensors, data_size)
    return tensors, metadata


def _validate_metadata(path: Path, value: object) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        _fail(path, f"__metadata__ is {_show(value)}, not a map of strings to strings")
    for key, item in value.items():
        if not isinstance(item, str):
            _fail(path, f"__metadata__[{_show(key)}] is {_show(item)}, not a string")
        _check_utf8(path, f"__metadata__[{_show(key)}]", key)
        _check_utf8(path, f"__metadata__[{_show(key)}]", item)
    return dict(value)


def _check_utf8(path: Path, where: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogate from a \\udXXX escape
        raise CheckpointError(
            f"{path}: {where} holds an unpaired surrogate escape; {_FIX_CORRUPT}"
        ) from e


def _validate_entry(path: Path, name: str, entry: object, data_size: int, shard: str) -> TensorInfo:
    _check_utf8(path, f"tensor name {_show(name)}", name)
    where = f"tensor {_show(name)}"
    if not isinstance(entry, dict):
        _fail(path, f"{where} is {_show(entry)}, not an object with dtype/shape/data_offsets")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in entry:
            _fail(path, f"{where} has no {field!r} field")
    dtype = entry["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        _fail(
            path,
            f"{where} has dtype {_show(dtype)}, which safetensors does not know "
            f"(known: {', '.join(sorted(DTYPE_BITS))})",
            "re-download the shard, or re-export it with a dtype safetensors knows",
        )
    shape = _int_list(path, f"{where} shape", entry["shape"])
    offsets = _int_list(path, f"{where} data_offsets", entry["data_offsets"])
    if len(offsets) != 2:
        _fail(path, f"{where} data_offsets is {_show(offsets)}, not [begin, end]")
    begin, end = offsets
    if begin > end:
        _fail(path, f"{where} data_offsets {_show(offsets)} end before they begin")
    if end > data_size:
        _fail(
            path,
            f"{where} data_offsets {_show(offsets)} run past the {data_size}-byte data "
            "section (truncated download?)",
        )
    _check_size(path, where, dtype, shape, end - begin)
    return TensorInfo(name, dtype, tuple(shape), (begin, end), shard)


def _int_list(path: Path, where: str, value: object) -> list[int]:
    if not isinstance(value, list):
        _fail(path, f"{where} is {_show(value)}, not a list of integers")
    for item in value:
        # bool is an int subclass; JSON true/false is not a size.
        if type(item) is not int or not 0 <= item <= _U64_MAX:
            _fail(path, f"{where} holds {_show(item)}, not a non-negative 64-bit integer")
    return value


def _check_size(path: Path, where: str, dtype: str, shape: list[int], nbytes: int) -> None:
    bits = DTYPE_BITS[dtype]
    limit = max(nbytes * 8 // bits, _U64_MAX)  # beyond this, stop multiplying
    if 0 in shape:
        elements = 0
    else:
        elements = 1
        for dim in shape:
            elements *= dim
            if elements > limit:  # a hostile shape: fail before the product grows huge
                _fail(
                    path,
                    f"{where} spans {nbytes} bytes, far too few for shape {_show(shape)} "
                    f"of {dtype}",
                )
    total_bits = elements * bits
    if total_bits % 8:
        _fail(
            path,
            f"{where} has {elements} {dtype} elements ({total_bits} bits), which does not "
            "end on a byte boundary",
        )
    if total_bits // 8 != nbytes:
        _fail(
            path,
            f"{where} spans {nbytes} bytes but shape {_show(shape)} of {dtype} needs "
            f"{total_bits // 8}",
        )


def _check_tiling(path: Path, tensors: dict[str, TensorInfo], data_size: int) -> None:
    """Tensors must cover the data section from 0 to its end, in offset order."""
    position, previous = 0, None
    for info in sorted(tensors.values(), key=lambda t: t.data_offsets):
        begin, end = info.data_offsets
        if begin != position:
            after = (
                "the start of the data section"
                if previous is None
                else f"where tensor {_show(previous)} ends"
            )
            _fail(
                path,
                f"tensor {_show(info.name)} starts at byte {begin}, not at byte {position} "
                f"({after}); tensors must tile the data section without gaps or overlaps",
            )
        position, previous = end, info.name
    if position != data_size:
        _fail(
            path,
            f"tensors cover {position} bytes but the data section holds {data_size} "
            "(trailing bytes after the last tensor)",
        )
