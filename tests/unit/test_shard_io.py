"""graft's copy primitive: in the kernel (copy_file_range, then sendfile), else through one
buffer; the same bytes whichever path runs, adjacent ranges in one call."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import pytest

from vllm_draft_quant.errors import CheckpointError
from vllm_draft_quant.repair import shard_io
from vllm_draft_quant.repair.shard_io import TensorSource, write_shard


def _source(path: Path, sizes: list[int]) -> list[TensorSource]:
    """A file of random bytes cut into tensors of ``sizes`` after a 16-byte prefix."""
    data = os.urandom(16 + sum(sizes))
    path.write_bytes(data)
    out, at = [], 16
    for i, n in enumerate(sizes):
        out.append(TensorSource(f"t.{i}.weight", "U8", (n,), path, at, n))
        at += n
    return out


def _shard(path: Path, tensors: list[TensorSource], **kw: Any) -> bytes:
    with open(path, "xb") as fh:
        write_shard(fh, tensors, metadata={"format": "pt"}, **kw)
    return path.read_bytes()


def _no_python_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*a: Any) -> Any:
        raise AssertionError("tensor bytes went through Python")
    monkeypatch.setattr(shard_io, "_chunks", refuse)


def test_in_kernel_and_plain_write_the_same_bytes(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    a = _source(tmp_path / "a.bin", [1000, 3, 70_000, 0, 5])
    b = _source(tmp_path / "b.bin", [17, 4096])
    tensors = [a[2], b[1], a[0], a[1], b[0], a[4], a[3]]  # any order in, source order out
    monkeypatch.setattr(shard_io, "IN_KERNEL", False)
    plain = _shard(tmp_path / "plain", tensors)
    monkeypatch.setattr(shard_io, "IN_KERNEL", True)
    with monkeypatch.context() as mp:
        _no_python_bytes(mp)
        fast = _shard(tmp_path / "fast", tensors)
    assert fast == plain


def test_adjacent_ranges_are_one_call(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _source(tmp_path / "a.bin", [100] * 50)
    calls: list[int] = []
    real = os.copy_file_range

    def counting(fd_in: int, fd_out: int, count: int, *rest: Any) -> int:
        calls.append(count)
        return real(fd_in, fd_out, count, *rest)

    monkeypatch.setattr(os, "copy_file_range", counting)
    progress: list[int] = []
    _shard(tmp_path / "out", list(reversed(a)), progress=progress.append)
    assert calls == [5000] and sum(progress) == 5000


@pytest.mark.parametrize("refused", ["copy_file_range", "both", "after-a-part"])
def test_refused_kernel_calls_fall_back(refused: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """EXDEV/EINVAL/ENOSYS mean "not between these files": the next way copies the rest."""
    a = _source(tmp_path / "a.bin", [3000, 5000])
    monkeypatch.setattr(shard_io, "IN_KERNEL", False)
    expected = _shard(tmp_path / "plain", a)
    monkeypatch.setattr(shard_io, "IN_KERNEL", True)
    monkeypatch.setattr(shard_io, "KERNEL_STEP", 1024)
    real_cfr, real_sendfile = os.copy_file_range, os.sendfile
    state = {"n": 0}

    def cfr(*args: Any) -> int:
        state["n"] += 1
        if refused == "after-a-part" and state["n"] <= 2:
            return real_cfr(*args)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    def sendfile(*args: Any) -> int:
        if refused == "copy_file_range":
            return real_sendfile(*args)
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "copy_file_range", cfr)
    monkeypatch.setattr(os, "sendfile", sendfile)
    progress: list[int] = []
    assert _shard(tmp_path / "out", a, progress=progress.append) == expected
    assert sum(progress) == 8000


def test_a_real_write_error_is_not_a_fallback(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    a = _source(tmp_path / "a.bin", [3000])

    def full(*args: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", full)
    with pytest.raises(OSError) as info:
        _shard(tmp_path / "out", a)
    assert info.value.errno == errno.ENOSPC


@pytest.mark.parametrize("in_kernel", [True, False])
def test_truncated_source_is_named(in_kernel: bool, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    a = _source(tmp_path / "a.bin", [3000, 5000])
    os.truncate(tmp_path / "a.bin", 16 + 4000)
    monkeypatch.setattr(shard_io, "IN_KERNEL", in_kernel)
    with pytest.raises(CheckpointError, match=r"a\.bin: ends before the tensor data"):
        _shard(tmp_path / "out", a)


def test_copy_range_appends_at_the_buffered_position(tmp_path: Path) -> None:
    src = tmp_path / "s.bin"
    src.write_bytes(b"0123456789")
    out = tmp_path / "o.bin"
    with open(src, "rb") as s, open(out, "wb") as o:
        o.write(b"head:")  # still in Python's buffer
        shard_io.copy_range(s, src, 2, 5, o)
        o.write(b":tail")
    assert out.read_bytes() == b"head:23456:tail"


@pytest.mark.parametrize("prefix", [0, 8, 1000, 4088])
def test_largest_run_keeps_its_page_offset(prefix: int, tmp_path: Path) -> None:
    """The header padding puts the largest copied run at its source's offset within a
    page (whole-page kernel copies) and keeps the 8-byte alignment; safetensors reads
    the result as the source."""
    import numpy as np
    from safetensors.numpy import load_file

    from vllm_draft_quant.demo import tensors as T

    rng = np.random.default_rng(prefix)
    rows = [("a.pad", T.RawTensor("U8", (prefix,), bytes(prefix)))] if prefix else []
    rows += [(f"m.{i}.weight", T.RawTensor("U8", (n,), rng.bytes(n)))
             for i, n in enumerate((24, 3 * 4096 + 40, 16))]
    src = tmp_path / "src.safetensors"
    T.write_safetensors(src, rows)
    picked = [t for t in shard_io.sources_of(src) if t.name.startswith("m.")]
    out = tmp_path / "out.safetensors"
    data = _shard(out, picked)
    header_len = int.from_bytes(data[:8], "little")
    assert header_len % 8 == 0
    assert data[8 + header_len - 1:8 + header_len] in (b" ", b"}")
    run = picked[0].offset  # the three tensors are one run, copied as one
    new = shard_io.sources_of(out)
    assert new[0].offset % shard_io.PAGE == run % shard_io.PAGE
    want = load_file(src)
    assert {k: v.tobytes() for k, v in load_file(out).items()} == {
        k: want[k].tobytes() for k in want if k.startswith("m.")}
