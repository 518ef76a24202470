"""Streaming tensor bytes between safetensors files with bounded memory.

A tensor is copied as the raw byte range its header names; nothing is decoded,
so no torch or numpy is needed and memory stays at one chunk.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vllm_draft_quant.checkpoint.headers import read_header
from vllm_draft_quant.errors import CheckpointError

__all__ = ["CHUNK", "TensorSource", "build_header", "same_bytes", "sources_of", "write_shard"]

CHUNK = 8 * 2**20
Progress = Callable[[int], None]


@dataclass(frozen=True)
class TensorSource:
    """Where one tensor's bytes live: file, absolute offset, length; and its header facts."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    path: Path
    offset: int
    nbytes: int


def sources_of(path: Path, names: Sequence[str] | None = None) -> list[TensorSource]:
    """`TensorSource` for ``names`` (default: all) of the safetensors file ``path``."""
    header = read_header(path)
    start = header.bytes_read
    wanted = list(header.tensors) if names is None else list(names)
    out = []
    for n in wanted:
        info = header.tensors.get(n)
        if info is None:
            raise CheckpointError(f"{path}: no tensor {n!r} in this shard; the index and the "
                                  "shard disagree (re-download them from the same revision)")
        begin, end = info.data_offsets
        out.append(TensorSource(n, info.dtype, info.shape, path, start + begin, end - begin))
    return out


def build_header(tensors: Sequence[TensorSource], metadata: dict[str, str] | None) -> bytes:
    """A safetensors header for ``tensors`` laid out back to back, padded to 8 bytes."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape),
                          "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    return raw + b" " * (-len(raw) % 8)


def _chunks(src: BinaryIO, path: Path, offset: int, nbytes: int) -> Iterator[bytes]:
    src.seek(offset)
    left = nbytes
    while left:
        block = src.read(min(CHUNK, left))
        if not block:
            raise CheckpointError(f"{path}: ends before the tensor data its header promises "
                                  "(truncated download?); re-download the shard")
        left -= len(block)
        yield block


def write_shard(out: BinaryIO, tensors: Sequence[TensorSource], *,
                metadata: dict[str, str] | None = None, progress: Progress | None = None) -> None:
    """Write a safetensors file holding ``tensors`` to ``out``, streaming each byte range."""
    header = build_header(tensors, metadata)
    out.write(len(header).to_bytes(8, "little"))
    out.write(header)
    handles: dict[Path, BinaryIO] = {}
    try:
        for t in tensors:
            src = handles.get(t.path)
            if src is None:
                src = handles[t.path] = open(t.path, "rb")  # noqa: SIM115 - closed below
            for block in _chunks(src, t.path, t.offset, t.nbytes):
                out.write(block)
                if progress is not None:
                    progress(len(block))
    finally:
        for h in handles.values():
            h.close()


def same_bytes(a: TensorSource, b: TensorSource) -> bool:
    """Whether two tensors have the same dtype, shape and bytes (streamed compare)."""
    if (a.dtype, a.shape, a.nbytes) != (b.dtype, b.shape, b.nbytes):
        return False
    with open(a.path, "rb") as fa, open(b.path, "rb") as fb:
        for x, y in zip(_chunks(fa, a.path, a.offset, a.nbytes),
                        _chunks(fb, b.path, b.offset, b.nbytes), strict=True):
            if x != y:
                return False
    return True
