"""fix --write and graft under injected faults: TARGET is byte-identical after each, then a
rerun succeeds. Each write, fsync, link and rename is failed in turn, with EIO, ENOSPC
and Ctrl-C."""

from __future__ import annotations

import builtins
import errno
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cli_support import ckpt, copy_mode, digest, pair, run_cli  # noqa: F401 - fixture

from vllm_draft_quant.repair import writer


class _Injector:
    """Wraps a function; its ``n``-th call raises ``exc`` instead (once)."""

    def __init__(self, real: Callable[..., Any], n: int, exc: BaseException) -> None:
        self.real, self.n, self.exc, self.calls, self.fired = real, n, exc, 0, False

    def __call__(self, *a: Any, **k: Any) -> Any:
        self.calls += 1
        if self.calls == self.n:
            self.fired = True
            raise self.exc
        return self.real(*a, **k)


class _FullDiskFile:
    """A file whose ``limit``-th write fails with ENOSPC after writing part of the data."""

    def __init__(self, fh: Any, counter: _Injector) -> None:
        self._fh, self._counter = fh, counter

    def write(self, data: bytes) -> int:
        self._counter.calls += 1
        if self._counter.calls == self._counter.n:
            self._counter.fired = True
            self._fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self._fh.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _FullDiskFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


def _inject(mp: pytest.MonkeyPatch, point: str, n: int) -> _Injector:
    if point == "write-enospc":
        counter = _Injector(lambda: None, n, OSError(errno.ENOSPC, "full"))

        def full_disk_open(*a: Any, **k: Any) -> _FullDiskFile:
            return _FullDiskFile(builtins.open(*a, **k), counter)

        mp.setattr(writer, "open", full_disk_open, raising=False)
        real_copy = os.copy_file_range

        def full_disk_copy(fd_in: int, fd_out: int, count: int, *a: Any) -> int:
            """The in-kernel copy's write: part of the range lands, then ENOSPC."""
            counter.calls += 1
            if counter.calls == counter.n:
                counter.fired = True
                real_copy(fd_in, fd_out, max(1, count // 2), *a)
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_copy(fd_in, fd_out, count, *a)

        mp.setattr(os, "copy_file_range", full_disk_copy)
        return counter
    name, exc = {
        "replace": ("replace", OSError(errno.EIO, "I/O error")),
        "replace-interrupt": ("replace", KeyboardInterrupt()),
        "fsync": ("fsync", OSError(errno.EIO, "I/O error")),
        "fsync-enospc": ("fsync", OSError(errno.ENOSPC, "No space left on device")),
        "link": ("link", OSError(errno.EIO, "I/O error")),
    }[point]
    inj = _Injector(getattr(os, name), n, exc)
    mp.setattr(os, name, inj)
    return inj


POINTS = ["replace", "replace-interrupt", "fsync", "fsync-enospc", "link", "write-enospc"]


def _every_fault(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                 folder: Path, argv: list[Any], point: str, expected: dict[str, str]) -> int:
    """Fail call 1, 2, ... of ``point`` until a run succeeds; return how many runs failed.

    A failed run must leave ``folder`` byte-identical; the successful one must leave it
    as a clean run does (``expected``). The only fault a run may survive is the
    best-effort folder fsync after the commit.
    """
    before = digest(folder)
    n = 0
    while True:
        n += 1
        with monkeypatch.context() as mp:
            inj = _inject(mp, point, n)
            code, _, err = run_cli(capsys, *argv)
        if code == 0:
            assert not inj.fired or point.startswith("fsync"), (point, n)
            assert digest(folder) == expected, (point, n)
            return n - 1
        assert inj.fired, err
        assert code in (2, 130), (point, n, err)
        # one error line; progress lines (stderr is not a terminal here) may precede it
        lines = err.splitlines()
        assert lines[-1].startswith("vllm-draft-quant: ") and sum(
            ln.startswith("vllm-draft-quant: ") for ln in lines) == 1, err
        assert digest(folder) == before, (point, n)


def _reference(tmp_path: Path, make: Callable[[Path], list[Any]], capsys: Any) -> dict[str, str]:
    ref = tmp_path / "reference"
    argv = make(ref)
    code, _, err = run_cli(capsys, *argv)
    assert code == 0, err
    return digest(Path(argv[1]))


@pytest.mark.usefixtures("copy_mode")  # the in-kernel copy path and the plain one
@pytest.mark.parametrize("point", POINTS)
def test_graft_faults(point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    def make(root: Path) -> list[Any]:
        target, source = pair(root, "step3p5", truncate=True, sharded=True)
        return ["graft", target, "--from", source]

    expected = _reference(tmp_path, make, capsys)
    argv = make(tmp_path / "run")
    target = Path(argv[1])
    pristine = digest(target)
    assert _every_fault(monkeypatch, capsys, target, argv, point, expected) >= 1
    assert expected != pristine


@pytest.mark.usefixtures("copy_mode")
@pytest.mark.parametrize("point", ["replace", "replace-interrupt", "fsync-enospc", "link",
                                   "write-enospc"])
def test_graft_force_faults(point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    """Replacing a quantized MTP block: a shard deleted, another rewritten, all undone."""
    def make(root: Path) -> list[Any]:
        source = ckpt(root / "source", "qwen3_next", layout="a")
        target = ckpt(root / "target", "qwen3_next", layout="g", sharded=True)
        return ["graft", target, "--from", source, "--force"]

    expected = _reference(tmp_path, make, capsys)
    argv = make(tmp_path / "run")
    assert _every_fault(monkeypatch, capsys, Path(argv[1]), argv, point, expected) >= 1


@pytest.mark.parametrize("point", POINTS)
def test_fix_faults(point: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    def make(root: Path) -> list[Any]:
        return ["fix", ckpt(root / "m", "deepseek_v3", layout="a"), "--write"]

    expected = _reference(tmp_path, make, capsys)
    argv = make(tmp_path / "run")
    assert _every_fault(monkeypatch, capsys, Path(argv[1]), argv, point, expected) >= 1


def test_fault_counts_cover_every_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A graft of a sharded target renames 4 files with os.replace (its journal, then the
    index and the 2 configs it replaces) and links 4 new ones (3 .bak and the shard: a
    link never overwrites); each is failed in turn."""
    def make(root: Path) -> list[Any]:
        target, source = pair(root, "step3p5", sharded=True)
        return ["graft", target, "--from", source]

    expected = _reference(tmp_path, make, capsys)
    argv = make(tmp_path / "run")
    assert _every_fault(monkeypatch, capsys, Path(argv[1]), argv, "replace", expected) == 4
    argv = make(tmp_path / "run2")
    # links: 3 backups and 3 rollback links staged, then 4 new files placed
    assert _every_fault(monkeypatch, capsys, Path(argv[1]), argv, "link", expected) == 10


def test_rollback_failure_names_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If even the undo fails, the error says how to restore by hand."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.json").write_text("old")
    (folder / "b.json").write_text("old")
    tx = writer.Transaction(folder)
    tx.write_bytes("a.json", b"new")
    tx.write_bytes("b.json", b"new")
    real = os.replace
    calls = {"n": 0}

    def flaky(src: Any, dst: Any) -> None:
        calls["n"] += 1
        if calls["n"] >= 3:  # 1: the journal, 2: a.json, 3: b.json, 4: undo a.json
            raise OSError(errno.EIO, "I/O error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", flaky)
    with pytest.raises(writer.CheckpointError, match=r"restore the folder by hand: move \.a\.json"):
        tx.commit()
    monkeypatch.setattr(os, "replace", real)
    kept = [p for p in folder.iterdir() if ".orig" in p.name]
    assert len(kept) == 1 and kept[0].read_text() == "old"
    assert (folder / writer.JOURNAL_NAME).exists()  # kept: the folder is not consistent
    shutil.rmtree(folder)
