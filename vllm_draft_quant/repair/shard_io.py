"""Streaming tensor bytes between safetensors files with bounded memory.

A tensor is copied as the raw byte range its header names; nothing is decoded,
so no torch or numpy is needed. `copy_range` moves a range inside the kernel
(``os.copy_file_range``, which also reflinks on filesystems that share extents, else
``os.sendfile``), so no tensor byte passes through Python; like ``cp`` it copies into
the page cache and leaves the writing back to the caller's one fsync (starting each
range's writeback early, ``posix_fadvise(POSIX_FADV_DONTNEED)``, mixed the writes with
the reads of a cold source and made the copy slower than ``cp``: benchmarks/README.md);
where neither call works (another OS, a filesystem that refuses both) it falls back to
reading and writing `CHUNK`-sized blocks. Either way memory stays at one chunk.
`write_shard` lays the tensors out in their source order, so adjacent ranges of a
source shard are copied as one. Each in-kernel step asks the kernel to read the next one
(``POSIX_FADV_WILLNEED``) before copying: with a cold source the disk reads ahead while
the kernel copies, which ``cp``'s single call gets from its readahead window alone
(the last gap to ``cp``: benchmarks/README.md).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import json
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vllm_draft_quant.checkpoint.headers import read_header
from vllm_draft_quant.errors import CheckpointError

__all__ = ["CHUNK", "IN_KERNEL", "TensorSource", "build_header", "copy_range", "same_bytes",
           "sources_of", "write_shard"]

CHUNK = 8 * 2**20
#: the page size the header padding aligns copied runs to
PAGE = 4096
#: bytes per in-kernel call: progress is reported (and Ctrl-C seen) at least this often
KERNEL_STEP = 64 * 2**20
#: try the in-kernel copies (tests set False to run the plain path)
IN_KERNEL = True
Progress = Callable[[int], None]

#: errors meaning "this call cannot copy between these files", not "the copy failed"
_UNSUPPORTED = frozenset({errno.ENOSYS, errno.EXDEV, errno.EINVAL, errno.EBADF, errno.ENOTSUP,
                          getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)})


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
    """A safetensors header for ``tensors`` laid out back to back, padded with spaces.

    The padding puts the largest run of source-adjacent tensors at the same offset
    within a page as in its source file (`PAGE`), when that keeps the 8-byte alignment
    of the reference writer: an in-kernel copy between page-aligned offsets moves whole
    pages, a misaligned one splits every page (up to 1.5x the kernel time measured here:
    benchmarks/README.md). Otherwise it pads to 8 bytes, as the reference writer does.
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": list(t.shape),
                          "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode()
    pad = -len(raw) % 8
    runs = _ranges(tensors)
    if runs:
        # where each run starts in the new data (one more start than runs: strict=False)
        starts = itertools.accumulate((r[2] for r in runs), initial=0)
        at, (_, src_offset, _) = max(zip(starts, runs, strict=False), key=lambda x: x[1][2])
        aligned = (src_offset - 8 - at - len(raw)) % PAGE
        if (len(raw) + aligned) % 8 == 0:
            pad = aligned
    return raw + b" " * pad


def _chunks(src: BinaryIO, path: Path, offset: int, nbytes: int) -> Iterator[bytes]:
    src.seek(offset)
    left = nbytes
    while left:
        block = src.read(min(CHUNK, left))
        if not block:
            raise _truncated(path)
        left -= len(block)
        yield block


def _truncated(path: Path) -> CheckpointError:
    return CheckpointError(f"{path}: ends before the tensor data its header promises "
                           "(truncated download?); re-download the shard")


def copy_range(src: BinaryIO, path: Path, offset: int, nbytes: int, out: BinaryIO, *,
               progress: Progress | None = None) -> None:
    """Append ``nbytes`` of ``src`` from ``offset`` to ``out`` (at its current position).

    In the kernel when it can (``copy_file_range``, then ``sendfile``), else through one
    `CHUNK`-sized buffer. ``out`` must be a buffered binary file: it is flushed first
    and left positioned after the copied bytes. ``path`` names ``src`` in errors.
    """
    done = 0
    if IN_KERNEL and nbytes:
        out.flush()
        fd_in, fd_out = src.fileno(), out.fileno()
        start = out.tell()
        done = _kernel_copy(fd_in, offset, fd_out, start, nbytes, path, progress)
        out.seek(start + done)
    if done < nbytes:
        for block in _chunks(src, path, offset + done, nbytes - done):
            out.write(block)
            if progress is not None:
                progress(len(block))


def _kernel_copy(fd_in: int, offset: int, fd_out: int, at: int, nbytes: int, path: Path,
                 progress: Progress | None) -> int:
    """Bytes copied in the kernel (all of them, or fewer where both calls are refused)."""
    done = 0
    use_sendfile = False
    _prefetch(fd_in, offset, min(KERNEL_STEP, nbytes))
    while done < nbytes:
        step = min(KERNEL_STEP, nbytes - done)
        # the next step is read from the disk while this one is copied
        _prefetch(fd_in, offset + done + step, min(KERNEL_STEP, nbytes - done - step))
        try:
            if not use_sendfile:
                n = os.copy_file_range(fd_in, fd_out, step, offset + done, at + done)
            else:
                os.lseek(fd_out, at + done, os.SEEK_SET)
                n = os.sendfile(fd_out, fd_in, offset + done, step)
        except AttributeError:  # no such call on this platform
            if use_sendfile:
                return done
            use_sendfile = True
            continue
        except OSError as e:
            if e.errno not in _UNSUPPORTED:
                raise
            if use_sendfile:
                return done  # the plain path copies the rest
            use_sendfile = True
            continue
        if n == 0:
            raise _truncated(path)
        done += n
        if progress is not None:
            progress(n)
    return done


def _prefetch(fd: int, offset: int, nbytes: int) -> None:
    """Start reading ``nbytes`` at ``offset`` into the page cache without waiting
    (``POSIX_FADV_WILLNEED``): one step ahead of the copy, so a cold source keeps the
    disk busy while the kernel copies the step before. Best effort."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None or nbytes <= 0:  # pragma: no cover - not on Linux
        return
    with contextlib.suppress(OSError, ValueError):
        advise(fd, offset, nbytes, os.POSIX_FADV_WILLNEED)


def _read_sequentially(src: BinaryIO) -> None:
    """Tell the kernel ``src`` is read front to back (a larger readahead window), as ``cp``
    does (``POSIX_FADV_SEQUENTIAL``). Best effort: where unsupported, nothing."""
    advise = getattr(os, "posix_fadvise", None)
    if advise is None:  # pragma: no cover - not on Linux
        return
    with contextlib.suppress(OSError, ValueError):
        advise(src.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


def _ranges(tensors: Sequence[TensorSource]) -> list[tuple[Path, int, int]]:
    """(file, offset, length) per run of tensors stored back to back in one file."""
    out: list[tuple[Path, int, int]] = []
    for t in tensors:
        if out and out[-1][0] == t.path and out[-1][1] + out[-1][2] == t.offset:
            out[-1] = (t.path, out[-1][1], out[-1][2] + t.nbytes)
        else:
            out.append((t.path, t.offset, t.nbytes))
    return out


def write_shard(out: BinaryIO, tensors: Sequence[TensorSource], *,
                metadata: dict[str, str] | None = None, progress: Progress | None = None) -> None:
    """Write a safetensors file holding ``tensors`` to ``out``, copying each byte range.

    The tensors are laid out in the order they are stored in their source files, so a
    block of adjacent source tensors is one `copy_range`.
    """
    tensors = sorted(tensors, key=lambda t: (str(t.path), t.offset))
    header = build_header(tensors, metadata)
    out.write(len(header).to_bytes(8, "little"))
    out.write(header)
    handles: dict[Path, BinaryIO] = {}
    try:
        for path, offset, nbytes in _ranges(tensors):
            src = handles.get(path)
            if src is None:
                src = handles[path] = open(path, "rb")  # noqa: SIM115 - closed below
                _read_sequentially(src)
            copy_range(src, path, offset, nbytes, out, progress=progress)
    finally:
        for h in handles.values():
            h.close()


def same_bytes(a: TensorSource, b: TensorSource, *, progress: Progress | None = None) -> bool:
    """Whether two tensors have the same dtype, shape and bytes (streamed compare).

    ``progress`` gets the bytes of ``a`` compared so far; on a difference it is also told
    the bytes left unread, so a caller's total still adds up."""
    if (a.dtype, a.shape, a.nbytes) != (b.dtype, b.shape, b.nbytes):
        if progress is not None:
            progress(a.nbytes)
        return False
    seen = 0
    with open(a.path, "rb") as fa, open(b.path, "rb") as fb:
        for x, y in zip(_chunks(fa, a.path, a.offset, a.nbytes),
                        _chunks(fb, b.path, b.offset, b.nbytes), strict=True):
            seen += len(x)
            if x != y:
                if progress is not None:
                    progress(a.nbytes - seen + len(x))
                return False
            if progress is not None:
                progress(len(x))
    return True
