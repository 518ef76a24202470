"""One writer per model folder: a second fix/graft gets a clear "in progress" error."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from _cli_support import ckpt, digest, pair, run_cli

from vllm_draft_quant.checkpoint.facts import JOURNAL_NAME
from vllm_draft_quant.repair import lock as lock_mod
from vllm_draft_quant.repair.writer import LOCK_NAME, FolderBusyError, FolderLock

_HOLDER = """
import sys, time
from vllm_draft_quant.repair.writer import FolderLock
lock = FolderLock(sys.argv[1]); lock.acquire()
print("locked", flush=True)
sys.stdin.readline()
lock.release()
"""


def _exe() -> str:
    exe = Path(sys.executable).with_name("vllm-draft-quant")
    if not exe.exists():
        pytest.skip("console script not installed")
    return str(exe)


@pytest.mark.parametrize("command", ["fix", "graft"])
def test_busy_in_process(command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, source = pair(tmp_path, "step3p5")
    before = digest(target)
    argv = ["fix", target, "--write"] if command == "fix" else ["graft", target, "--from", source]
    with FolderLock(target):
        code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert "in progress" in err and err.count("\n") == 1
    assert digest(target) == before  # the holder's lock file is gone again too


def test_dry_runs_need_no_lock(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, source = pair(tmp_path, "step3p5")
    with FolderLock(target):
        assert run_cli(capsys, "graft", target, "--from", source, "--dry-run")[0] == 0
        assert run_cli(capsys, "fix", target)[0] == 2  # no draft weights yet: bad input
        assert run_cli(capsys, "plan", source)[0] == 1


def test_busy_across_processes_then_stale_lock_taken_over(tmp_path: Path) -> None:
    target, source = pair(tmp_path, "qwen3_next")
    before = digest(target)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(target)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        r = subprocess.run([_exe(), "graft", str(target), "--from", str(source)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, r.stderr
        assert "in progress" in r.stderr and f"process {holder.pid}" in r.stderr
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock: the file stays
        holder.wait(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
    assert (target / LOCK_NAME).exists()
    assert digest(target).keys() - before.keys() == {LOCK_NAME}  # nothing else was written
    r = subprocess.run([_exe(), "graft", str(target), "--from", str(source)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert not (target / LOCK_NAME).exists()


def test_two_concurrent_grafts_never_mix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref_target, ref_source = pair(tmp_path / "ref", "deepseek_v3", sharded=True)
    assert run_cli(capsys, "graft", ref_target, "--from", ref_source)[0] == 0
    expected = digest(ref_target)
    target, source = pair(tmp_path / "run", "deepseek_v3", sharded=True)
    cmd = [_exe(), "graft", str(target), "--from", str(source)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes in ([0, 0], [0, 2]), results
    for code, err in results:
        if code == 2:
            assert "in progress" in err
    assert digest(target) == expected


def test_threads_exclude_each_other(tmp_path: Path) -> None:
    folder = ckpt(tmp_path / "m", "step3p5", layout="a")
    first = FolderLock(folder)
    first.acquire()
    errors: list[BaseException] = []

    def second() -> None:
        try:
            FolderLock(folder).acquire()
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=second)
    t.start()
    t.join()
    first.release()
    assert len(errors) == 1 and isinstance(errors[0], FolderBusyError)
    with FolderLock(folder):  # free again
        pass
    assert not (folder / LOCK_NAME).exists()


def test_unwritable_folder_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    model.chmod(0o555)
    try:
        code, _, err = run_cli(capsys, "fix", model, "--write")
    finally:
        model.chmod(0o755)
    assert code == 2 and "lock file" in err


# ------------------------------------------------------------------ issue 18: lock life
def test_lock_names_its_holder(tmp_path: Path) -> None:
    folder = ckpt(tmp_path / "m", "step3p5", layout="a")
    with FolderLock(folder):
        holder = json.loads((folder / LOCK_NAME).read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    assert "start" in holder


def test_full_disk_while_writing_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 4: writing the lock fails (ENOSPC): one line naming the lock's path, exit 2,
    and no lock file left behind."""
    model = ckpt(tmp_path / "m", "deepseek_v3", layout="a")
    before = digest(model)
    real = os.write

    def full(fd: int, data: bytes) -> int:
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")) == LOCK_NAME:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", full)
    code, out, err = run_cli(capsys, "fix", model, "--write")
    monkeypatch.setattr(os, "write", real)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and str(model / LOCK_NAME) in err and "disk space" in err
    assert digest(model) == before


@pytest.mark.parametrize("flock", ["fcntl-missing", "ENOLCK"])
def test_stale_lock_without_flock(flock: str, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Where flock is unavailable, the holder line decides: a dead pid (or a pid reused by
    a process started at another time) on this host is stale and cleared; a live holder,
    or one on another host, is not."""
    if flock == "fcntl-missing":
        monkeypatch.setattr(lock_mod, "fcntl", None)
    else:
        import fcntl

        def no_flock(fd: int, op: int) -> None:
            raise OSError(errno.ENOLCK, "No locks available")

        monkeypatch.setattr(fcntl, "flock", no_flock)
    folder = ckpt(tmp_path / "m", "step3p5", layout="a")
    path = folder / LOCK_NAME
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    host = socket.gethostname()
    for holder in ({"pid": int(dead), "host": host, "start": None},
                   {"pid": os.getpid(), "host": host, "start": "1"}):  # a reused pid
        path.write_text(json.dumps(holder))
        with FolderLock(folder):
            assert json.loads(path.read_text())["pid"] == os.getpid()
        assert not path.exists()
    for holder in ({"pid": os.getppid(), "host": host, "start": lock_mod._start_time(
                        os.getppid())},
                   {"pid": int(dead), "host": "elsewhere", "start": None}):
        path.write_text(json.dumps(holder))
        with pytest.raises(FolderBusyError, match="in progress") as e:
            FolderLock(folder).acquire()
        assert str(path) in str(e.value) and f"process {holder['pid']}" in str(e.value)
        assert json.loads(path.read_text()) == holder  # left alone
    path.unlink()


def test_lock_released_when_recovery_fails(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A damaged journal: one line naming it, exit 2, and the lock is not left behind."""
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    (model / JOURNAL_NAME).write_text("{not json")
    code, _, err = run_cli(capsys, "fix", model, "--write")
    assert code == 2 and err.count("\n") == 1 and JOURNAL_NAME in err
    assert not (model / LOCK_NAME).exists()
