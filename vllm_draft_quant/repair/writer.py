"""Changing a model folder safely: an advisory lock and all-or-nothing transactions.

A model folder is the user's most expensive artifact, so every change goes
through `Transaction`:

1. *stage*: each new file is written to a hidden temporary file in the same
   folder and fsynced; each file that will be replaced gets a rollback link
   (a hard link to its current inode, or a copy where links are unsupported);
   a ``.bak`` is staged the same way. Nothing visible has changed yet.
2. *commit*: renames only (``os.replace``), then an fsync of the folder.
3. *rollback* on any failure (including Ctrl-C): the renames already done are
   undone with renames, new files are unlinked, temporaries removed. Because
   rollback writes no data, a full disk cannot stop it.

`FolderLock` is held around read-decide-write: ``.vllm-draft-quant.lock`` is
created with ``O_EXCL`` and locked with ``fcntl.flock``; a second writer gets
`FolderBusyError` ("in progress"). A lock left by a crashed process (file
present, flock free) is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from vllm_draft_quant.errors import CheckpointError, FolderBusyError

try:  # POSIX only; elsewhere the O_EXCL file alone is the lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "FolderBusyError", "FolderLock", "Transaction", "fsync_dir"]

LOCK_NAME = ".vllm-draft-quant.lock"
_TMP_TAG = ".vdq-tmp-"




def fsync_dir(folder: Path) -> None:
    """Make renames in ``folder`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError as e:  # some filesystems refuse fsync on a directory
        if e.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


def _os_error(path: Path, what: str, e: OSError) -> CheckpointError:
    hint = ("free some disk space" if e.errno == errno.ENOSPC
            else "check the folder's permissions and free space")
    return CheckpointError(f"{path}: cannot {what} ({e.strerror or e}); nothing was changed; {hint}")


class FolderLock:
    """Advisory lock on a model folder; use as a context manager."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        for _ in range(5):
            fd = self._create_or_open()
            if self._flock(fd):
                # the file we locked must still be the one at the path (not unlinked by
                # a finishing holder between our open and our flock)
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                    self._fd = fd
                    return
            os.close(fd)
            if fcntl is not None and not self._held_elsewhere():
                continue
            raise self._busy()
        raise self._busy()  # pragma: no cover - lost five races in a row

    def _create_or_open(self) -> int:
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            if fcntl is None:  # pragma: no cover - no way to tell a stale lock
                raise self._busy() from None
            try:
                return os.open(self.path, os.O_RDWR)
            except FileNotFoundError:  # released meanwhile: try again
                return self._create_or_open()
        except OSError as e:
            raise _os_error(self.path, "create the lock file", e) from e

    @staticmethod
    def _flock(fd: int) -> bool:
        if fcntl is None:  # pragma: no cover
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError as e:
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                return False
            raise

    def _held_elsewhere(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            if self._flock(fd):
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            return True
        finally:
            os.close(fd)

    def _busy(self) -> FolderBusyError:
        holder = ""
        with contextlib.suppress(OSError):
            pid = self.path.read_text().strip()
            holder = f" (process {pid})" if pid else ""
        return FolderBusyError(
            f"{self.folder}: another vllm-draft-quant fix/graft is in progress{holder}; "
            f"wait for it to finish (if none is running, delete {self.path})"
        )

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)  # unlink while still holding the flock
        os.close(self._fd)
        self._fd = None


@dataclass
class _Step:
    target: Path
    staged: Path | None  # temporary holding the new content; None: delete the target
    rollback: Path | None = None  # link/copy of the replaced file
    existed: bool = False
    done: bool = False


class Transaction:
    """Stage several file changes in one folder, then commit them all or none."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._steps: list[_Step] = []
        self._temps: list[Path] = []
        self._committed = False

    # -- staging ---------------------------------------------------------------

    def _temp(self, name: str) -> Path:
        path = self.folder / f".{name}{_TMP_TAG}{secrets.token_hex(4)}"
        self._temps.append(path)
        return path

    def write_bytes(self, name: str, data: bytes) -> None:
        """Stage ``name`` with content ``data``."""
        self.write_stream(name, lambda fh: fh.write(data))

    def write_stream(self, name: str, fill: Callable[[BinaryIO], object]) -> None:
        """Stage ``name``; ``fill`` writes its content to an open binary file."""
        tmp = self._temp(name)
        try:
            with open(tmp, "xb") as fh:
                fill(fh)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as e:
            raise _os_error(self.folder / name, "write", e) from e
        self._add(name, tmp)

    def backup(self, name: str) -> None:
        """Stage ``name.bak`` holding the current content of ``name`` (if it exists)."""
        src = self.folder / name
        if not os.path.lexists(src):
            return
        tmp = self._temp(name + ".bak")
        self._keep(src, tmp)
        self._add(name + ".bak", tmp)

    def remove(self, name: str) -> None:
        """Stage the deletion of ``name`` (undone by rollback like any other change)."""
        self._add(name, None)

    def _keep(self, src: Path, dst: Path) -> None:
        """Make ``dst`` a hard link to ``src`` (a copy where links are unsupported)."""
        try:
            os.link(src, dst, follow_symlinks=False)
            return
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK,
                               getattr(errno, "EOPNOTSUPP", errno.ENOTSUP)):
                raise _os_error(src, "link a rollback copy of", e) from e
        try:
            shutil.copy2(src, dst, follow_symlinks=False)
            with open(dst, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as e:
            raise _os_error(src, "copy a rollback copy of", e) from e

    def _add(self, name: str, staged: Path | None) -> None:
        target = self.folder / name
        if any(s.target == target for s in self._steps):
            raise ValueError(f"{target} staged twice")
        step = _Step(target, staged, existed=os.path.lexists(target))
        if staged is None and not step.existed:
            return
        if step.existed:
            step.rollback = self._temp(name + ".orig")
            self._keep(target, step.rollback)
        self._steps.append(step)

    @property
    def names(self) -> list[str]:
        """The file names this transaction changes, in commit order."""
        return [s.target.name for s in self._steps]

    # -- commit / rollback -----------------------------------------------------

    def commit(self) -> None:
        """Rename every staged file into place, or undo everything and raise."""
        try:
            for step in self._steps:
                if step.staged is None:
                    os.unlink(step.target)
                else:
                    os.replace(step.staged, step.target)
                step.done = True
            fsync_dir(self.folder)
        except BaseException as e:
            self.rollback()
            if isinstance(e, OSError):
                raise _os_error(self.folder, "commit the change", e) from e
            raise
        self._committed = True
        self._cleanup()

    def rollback(self) -> None:
        """Undo committed renames (renames and unlinks only) and drop temporaries.

        If an undo step itself fails, its rollback copy is kept and
        `CheckpointError` names the file to restore by hand.
        """
        stuck: list[str] = []
        for step in reversed(self._steps):
            if not step.done:
                continue
            try:
                if step.existed and step.rollback is not None:
                    os.replace(step.rollback, step.target)
                else:
                    os.unlink(step.target)
                step.done = False
            except OSError as e:
                if step.rollback is not None:
                    self._temps.remove(step.rollback)
                    stuck.append(f"move {step.rollback.name} back to {step.target.name}")
                else:
                    stuck.append(f"delete {step.target.name}")
                stuck[-1] += f" ({e.strerror or e})"
        self._cleanup()
        if stuck:
            raise CheckpointError(
                f"{self.folder}: could not undo a failed change; to restore the folder by "
                "hand: " + "; ".join(stuck)
            )

    def _cleanup(self) -> None:
        for tmp in self._temps:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        self._temps.clear()
        with contextlib.suppress(OSError):
            fsync_dir(self.folder)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self._committed:  # an error, or the caller chose not to commit
            self.rollback()
