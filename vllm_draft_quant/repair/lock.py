"""The folder lock: one writer per model folder, released on every way out.

``.vllm-draft-quant.lock`` is created with ``O_EXCL`` and locked with
``fcntl.flock``; it holds one JSON line naming its holder (``pid``, ``host``, the
process ``start`` time), so an error can say who holds it. A second writer gets
`FolderBusyError` ("in progress", naming the lock's path and holder).

Stale locks: a lock file whose flock is free belongs to a dead process (the kernel
drops a flock when its holder dies, SIGKILL included) and is taken over. Where
flock is unavailable (no ``fcntl``, or a filesystem answering ``ENOLCK``), the
holder line decides: on this host, a pid that no longer runs, or runs with another
start time (a reused pid), is stale; the file is renamed aside, checked to be the
same stale holder, and removed. A holder on another host is never second-guessed.

While held, SIGTERM and SIGHUP raise `TerminatedBySignal` in the main thread (SIGINT
raises ``KeyboardInterrupt`` as usual), so ``finally`` blocks roll back and the
lock is released; `reraise` then ends the process by that signal, as it would have
ended without us. A second signal during the rollback is deferred, not raised.

`repair.writer.FolderLock`, the one the commands use, also finishes what an
interrupted run left once it holds the lock (`writer.recover`, then
`writer.clean_leftovers`); their notes are in ``FolderLock.notes``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from vllm_draft_quant.errors import CheckpointError, FolderBusyError

try:  # POSIX only; elsewhere the holder line alone decides
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "FolderBusyError", "FolderLock", "TerminatedBySignal", "os_error",
           "reraise"]

LOCK_NAME = ".vllm-draft-quant.lock"
_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n))
_NO_FLOCK = (errno.ENOLCK, errno.ENOTSUP, getattr(errno, "EOPNOTSUPP", errno.ENOTSUP),
             errno.EINVAL)

#: test hook: called with a point name at each step of a lock's life and of a commit
#: (``repair.writer``); the kill sweep sets it to SIGKILL the process at one of them
fault_hook: Callable[[str], None] | None = None


def point(name: str) -> None:
    """A named step where a test may inject a fault (no-op unless `fault_hook` is set)."""
    if fault_hook is not None:
        fault_hook(name)


class TerminatedBySignal(BaseException):
    """SIGTERM/SIGHUP arrived while a folder was locked; ``finally`` blocks still run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


def reraise(e: TerminatedBySignal) -> None:
    """End the process by ``e``'s signal with the default action (after cleanup)."""
    signal.signal(e.signum, signal.SIG_DFL)
    os.kill(os.getpid(), e.signum)


def os_error(path: Path, what: str, e: OSError, *, changed: str = "nothing was changed"
             ) -> CheckpointError:
    """One line for a failed file operation: the path, the OS's reason and the fix."""
    hint = ("free some disk space" if e.errno in (errno.ENOSPC, errno.EDQUOT)
            else "check the folder's permissions and free space")
    return CheckpointError(f"{path}: cannot {what} ({e.strerror or e}); {changed}; {hint}")


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read().decode(errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _alive(pid: int, start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, another user's
    now = _start_time(pid)
    return start is None or now is None or now == start


def holder_line() -> str:
    pid = os.getpid()
    return json.dumps({"pid": pid, "host": socket.gethostname(), "start": _start_time(pid)})


def read_holder(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(4096)
        value = json.loads(raw.decode("utf-8", "replace") or "null")
    except (OSError, ValueError):
        return None
    if isinstance(value, int):  # written by an older release: a bare pid
        return {"pid": value}
    return value if isinstance(value, dict) else None


class FolderLock:
    """Advisory lock on a model folder; use as a context manager."""

    def __init__(self, folder: str | os.PathLike[str], *, recover: bool = True) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.notes: list[str] = []
        self._recover = recover
        self._fd: int | None = None
        self._old_handlers: dict[int, Any] = {}
        self._signalled: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- taking the lock ---------------------------------------------------------------
    def acquire(self) -> None:
        for _ in range(5):
            opened = self._create_or_open()
            if opened is None:
                continue  # a stale lock was cleared: try again
            fd, created = opened
            got = self._flock(fd)
            if got is None and not created:  # no flock here: the holder line decides
                os.close(fd)
                if self._clear_if_stale():
                    continue
                raise self._busy()
            if got is not False and self._still_at_path(fd):
                self._take(fd)
                return
            os.close(fd)
            if not self._held_elsewhere():
                continue
            raise self._busy()
        raise self._busy()  # pragma: no cover - lost five races in a row

    def _still_at_path(self, fd: int) -> bool:
        """The file we locked is still the one at the path (not unlinked by a finishing
        holder between our open and our flock)."""
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def _take(self, fd: int) -> None:
        try:
            os.ftruncate(fd, 0)
            data = (holder_line() + "\n").encode()
            if os.write(fd, data) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            os.fsync(fd)
            point("lock-written")
        except BaseException as e:
            with contextlib.suppress(OSError):
                os.unlink(self.path)  # ours: we hold its flock
            os.close(fd)
            if isinstance(e, OSError):
                raise os_error(self.path, "write the lock file", e) from e
            raise
        self._fd = fd
        self._install_handlers()
        if self._recover:
            try:
                self._settle()
            except BaseException:
                self.release()
                raise

    def _settle(self) -> None:
        """Run once the lock is taken (``recover``); `repair.writer.FolderLock` finishes
        there what an interrupted run left."""

    def _create_or_open(self) -> tuple[int, bool] | None:
        """(fd, newly created) of the lock file; None: try again."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644), True
        except FileExistsError:
            pass
        except OSError as e:
            raise os_error(self.path, "create the lock file", e) from e
        try:
            return os.open(self.path, os.O_RDWR), False
        except FileNotFoundError:  # released meanwhile: try again
            return None
        except OSError as e:
            raise os_error(self.path, "open the lock file", e) from e

    def _flock(self, fd: int) -> bool | None:
        """True: locked; False: held elsewhere; None: this filesystem has no flock."""
        if fcntl is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            if e.errno in _NO_FLOCK:
                return None
            raise os_error(self.path, "lock the lock file", e) from e

    def _held_elsewhere(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            got = self._flock(fd)
            if got is None:  # no flock here: the holder line decides
                return not self._clear_if_stale()
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            return True
        finally:
            os.close(fd)

    def _clear_if_stale(self) -> bool:
        """Without flock: remove the lock if its holder is a dead process on this host."""
        holder = read_holder(self.path)
        if not holder or holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        if not isinstance(pid, int) or _alive(pid, holder.get("start")):
            return False
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return True  # someone else cleared it
        if read_holder(aside) == holder:
            os.unlink(aside)
            return True
        with contextlib.suppress(OSError):  # a new holder's lock: put it back unless replaced
            os.link(aside, self.path)
        with contextlib.suppress(OSError):
            os.unlink(aside)
        return False

    def _busy(self) -> FolderBusyError:
        holder = read_holder(self.path) or {}
        who = ""
        if isinstance(holder.get("pid"), int):
            who = f" (process {holder['pid']}"
            if holder.get("host") and holder["host"] != socket.gethostname():
                who += f" on {holder['host']}"
            who += ")"
        return FolderBusyError(
            f"{self.folder}: another vllm-draft-quant fix/graft is in progress{who}; "
            f"wait for it to finish (if none is running, delete {self.path})"
        )

    # -- signals -----------------------------------------------------------------------
    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in _SIGNALS:
            with contextlib.suppress(ValueError, OSError):
                self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._signalled is None:
            self._signalled = signum
            raise TerminatedBySignal(signum)
        # a second signal while rolling back: deferred (re-raised after the release)

    def _restore_handlers(self) -> None:
        for sig, old in self._old_handlers.items():
            with contextlib.suppress(ValueError, OSError):
                signal.signal(sig, old)
        self._old_handlers.clear()

    # -- releasing ---------------------------------------------------------------------
    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # unlink while still holding the flock
        os.close(self._fd)
        self._fd = None
        self._restore_handlers()
        point("lock-released")
