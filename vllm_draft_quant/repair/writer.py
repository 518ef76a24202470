"""Changing a model folder safely: all-or-nothing transactions with a journal.

A model folder is the user's most expensive artifact, so every change goes
through `Transaction`:

1. *stage*: each new file is written to a hidden temporary file in the same
   folder and fsynced; each file that will be replaced gets a rollback link (a
   hard link to its current inode, or a copy where links are unsupported); a
   backup (``config.json.bak``, or ``config.json.bak.1``, ... when that name is
   taken: a file the user owns is never overwritten) is staged the same way.
   Nothing visible has changed yet.
2. *journal*: ``.vllm-draft-quant.journal`` lists every step (target, staged
   temporary and its inode, rollback link) and every temporary; it is written to a
   temporary, fsynced and renamed into place, and the folder fsynced, before the
   first rename. A killed commit therefore always leaves either no journal (nothing
   visible changed) or a complete one.
3. *commit*: renames only (``os.replace`` over a replaced file; a hard link, which
   refuses to overwrite, for a file that did not exist), an fsync of the folder,
   then the journal is removed.
4. *rollback* on any failure (including Ctrl-C and SIGTERM): the renames already
   done are undone with renames, new files are unlinked, temporaries removed, the
   journal last. Because rollback writes no data, a full disk cannot stop it.

`recover` is the rollback of a commit whose process died (SIGKILL, power loss): a
step is known done when the target's inode is the staged file's (recorded in the
journal), so it can be run again after being killed itself. Every later run of
``fix``, ``graft`` and ``plan`` calls it (through `FolderLock`) before reading the
folder, and `checkpoint.facts.load_facts` refuses a folder with a journal, so a
half-committed folder is never read as consistent. `clean_leftovers` then removes
the temporaries of runs killed before their journal existed (staged configs, a
partial shard).

`FolderLock` (`repair.lock`) is held around recover-read-decide-write.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from vllm_draft_quant.checkpoint.facts import JOURNAL_NAME
from vllm_draft_quant.errors import CheckpointError, FolderBusyError
from vllm_draft_quant.repair import lock as _lock
from vllm_draft_quant.repair.lock import LOCK_NAME, TerminatedBySignal, os_error, point

__all__ = [
    "JOURNAL_NAME",
    "LOCK_NAME",
    "FolderBusyError",
    "FolderLock",
    "TerminatedBySignal",
    "Transaction",
    "clean_leftovers",
    "fsync_dir",
    "last_outcome",
    "recover",
    "reset_outcome",
    "settle",
]

_TMP_TAG = ".vdq-tmp-"
_TMP_NAME = re.compile(r"\..+" + re.escape(_TMP_TAG) + r"[0-9a-f]{8}\Z", re.S)
_MAX_JOURNAL = 1 << 20
_BACKUP_TRIES = 1000

#: what the last transaction of this process did (for the CLI's interrupt message)
_outcome: str | None = None


def last_outcome() -> str | None:
    """``"committed: ..."``, ``"rolled back: ..."`` or None (no transaction ran)."""
    return _outcome


def reset_outcome() -> None:
    """Forget the last transaction's outcome (the CLI does, at the start of a command)."""
    _set_outcome(None)


def _set_outcome(text: str | None) -> None:
    global _outcome
    _outcome = text


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


_LINK_UNSUPPORTED = (errno.EPERM, errno.EXDEV, errno.ENOTSUP, errno.EMLINK,
                     getattr(errno, "EOPNOTSUPP", errno.ENOTSUP))


@dataclass
class _Step:
    target: Path
    staged: Path | None  # temporary holding the new content; None: delete the target
    rollback: Path | None = None  # link/copy of the replaced file
    existed: bool = False
    ino: int | None = None  # the staged file's inode: the target's once the step is done
    done: bool = False


class Transaction:
    """Stage several file changes in one folder, then commit them all or none."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._steps: list[_Step] = []
        self._temps: list[Path] = []
        self._committed = False
        self._journal = False

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
                point("stage-open")
                fill(fh)
                fh.flush()
                point("stage-written")
                os.fsync(fh.fileno())
        except OSError as e:
            raise os_error(self.folder / name, "write", e) from e
        point("stage-fsynced")
        self._add(name, tmp)

    def backup(self, name: str) -> str | None:
        """Stage a backup of ``name``'s current content; returns its file name.

        The backup is ``name.bak``, or ``name.bak.1``, ``name.bak.2``, ... when that
        name is taken: an existing backup (the user's) is kept. None if ``name`` does
        not exist.
        """
        src = self.folder / name
        if not os.path.lexists(src):
            return None
        staged = {s.target.name for s in self._steps}
        bak = f"{name}.bak"
        for i in range(1, _BACKUP_TRIES + 1):
            if bak not in staged and not os.path.lexists(self.folder / bak):
                break
            bak = f"{name}.bak.{i}"
        else:
            raise CheckpointError(f"{self.folder}: {name}.bak and {_BACKUP_TRIES} numbered "
                                  f"backups exist already; move some of them away")
        tmp = self._temp(bak)
        self._keep(src, tmp)
        point("backup-staged")
        self._add(bak, tmp)
        return bak

    def remove(self, name: str) -> None:
        """Stage the deletion of ``name`` (undone by rollback like any other change)."""
        self._add(name, None)

    def _keep(self, src: Path, dst: Path) -> None:
        """Make ``dst`` a hard link to ``src`` (a copy where links are unsupported)."""
        try:
            os.link(src, dst, follow_symlinks=False)
            return
        except OSError as e:
            if e.errno not in _LINK_UNSUPPORTED:
                raise os_error(src, "link a rollback copy of", e) from e
        try:
            shutil.copy2(src, dst, follow_symlinks=False)
            if not os.path.islink(dst):
                with open(dst, "rb+") as fh:
                    os.fsync(fh.fileno())
        except OSError as e:
            raise os_error(src, "copy a rollback copy of", e) from e

    def _add(self, name: str, staged: Path | None) -> None:
        target = self.folder / name
        if any(s.target == target for s in self._steps):
            raise ValueError(f"{target} staged twice")
        step = _Step(target, staged, existed=os.path.lexists(target))
        if staged is None and not step.existed:
            return
        if staged is not None:
            step.ino = os.lstat(staged).st_ino
        if step.existed:
            step.rollback = self._temp(name + ".orig")
            self._keep(target, step.rollback)
            point("rollback-linked")
        self._steps.append(step)

    @property
    def names(self) -> list[str]:
        """The file names this transaction changes, in commit order."""
        return [s.target.name for s in self._steps]

    # -- journal -----------------------------------------------------------------
    def _journal_data(self) -> bytes:
        steps = [{"target": s.target.name,
                  "staged": s.staged.name if s.staged else None,
                  "ino": s.ino,
                  "rollback": s.rollback.name if s.rollback else None,
                  "existed": s.existed} for s in self._steps]
        doc = {"version": 1, "pid": os.getpid(), "steps": steps,
               "temps": [t.name for t in self._temps]}
        return (json.dumps(doc, indent=1) + "\n").encode()

    def _write_journal(self) -> None:
        tmp = self._temp(JOURNAL_NAME)
        with open(tmp, "xb") as fh:
            fh.write(self._journal_data())
            fh.flush()
            point("journal-staged")
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / JOURNAL_NAME)
        self._temps.remove(tmp)
        self._journal = True
        fsync_dir(self.folder)
        point("journal-written")

    def _drop_journal(self) -> None:
        if self._journal:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.folder / JOURNAL_NAME)
            self._journal = False
            point("journal-removed")

    # -- commit / rollback -----------------------------------------------------
    def commit(self) -> None:
        """Rename every staged file into place, or undo everything and raise."""
        try:
            self._write_journal()
            for step in self._steps:
                point("before-rename")
                if step.staged is None:
                    os.unlink(step.target)
                elif step.existed:
                    os.replace(step.staged, step.target)
                else:
                    self._place_new(step)
                step.done = True
                point("after-rename")
            fsync_dir(self.folder)
            point("renames-synced")
            self._drop_journal()
        except BaseException as e:
            self.rollback()
            if isinstance(e, OSError):
                raise os_error(self.folder, "commit the change", e,
                               changed="the change was rolled back, nothing was changed") from e
            raise
        self._committed = True
        _set_outcome(f"committed: {', '.join(self.names)} in {self.folder}")
        self._cleanup()

    def _place_new(self, step: _Step) -> None:
        """Put a file that did not exist into place without ever overwriting one."""
        assert step.staged is not None
        try:
            os.link(step.staged, step.target, follow_symlinks=False)
        except FileExistsError:
            raise CheckpointError(
                f"{step.target}: this file appeared while the change was being written; it "
                "was kept and the change was rolled back: move it away and run again") from None
        except OSError as e:
            if e.errno not in _LINK_UNSUPPORTED:
                raise
            if os.path.lexists(step.target):
                raise CheckpointError(
                    f"{step.target}: this file appeared while the change was being written; "
                    "it was kept and the change was rolled back") from None
            os.replace(step.staged, step.target)
            return
        step.done = True
        point("linked")
        os.unlink(step.staged)

    def rollback(self) -> None:
        """Undo committed renames (renames and unlinks only) and drop temporaries.

        If an undo step itself fails, its rollback copy and the journal are kept and
        `CheckpointError` names the file to restore by hand.
        """
        stuck: list[str] = []
        for step in reversed(self._steps):
            if not step.done:
                continue
            point("before-undo")
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
        if not stuck:
            with contextlib.suppress(OSError):
                fsync_dir(self.folder)
            self._drop_journal()
        self._cleanup()
        _set_outcome(f"rolled back: {self.folder} is as before" if not stuck else None)
        if stuck:
            raise CheckpointError(
                f"{self.folder}: could not undo a failed change; to restore the folder by "
                "hand: " + "; ".join(stuck)
            )

    def _cleanup(self) -> None:
        for tmp in self._temps:
            point("cleanup")
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


# ------------------------------------------------------------------------------ recovery
def _plain(name: Any, journal: Path) -> str:
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or "\x00" in name \
            or name in (".", ".."):
        raise CheckpointError(f"{journal}: names {name!r}, not a file of this folder; the "
                              "journal is damaged: restore the files named in it by hand "
                              "(.orig temporaries hold the previous versions), then delete it")
    return name


def _read_journal(folder: Path) -> Transaction | None:
    path = folder / JOURNAL_NAME
    if not os.path.lexists(path):
        return None
    try:
        if not path.is_file() or path.stat().st_size > _MAX_JOURNAL:
            raise ValueError("not a small regular file")
        doc = json.loads(path.read_bytes().decode("utf-8"))
        if not isinstance(doc, dict) or doc.get("version") != 1:
            raise ValueError("unknown version")
        tx = Transaction(folder)
        tx._journal = True
        for s in doc["steps"]:
            staged = s["staged"]
            rollback = s["rollback"]
            ino = s["ino"]
            if not isinstance(s["existed"], bool) or (ino is not None and not isinstance(ino, int)):
                raise ValueError("bad step")
            tx._steps.append(_Step(
                folder / _plain(s["target"], path),
                folder / _plain(staged, path) if staged is not None else None,
                folder / _plain(rollback, path) if rollback is not None else None,
                s["existed"], ino))
        tx._temps = [folder / _plain(t, path) for t in doc["temps"]]
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise CheckpointError(
            f"{path}: the journal of an interrupted change cannot be read ({e}); restore the "
            "files it names by hand (.orig temporaries hold the previous versions), then "
            "delete it") from e
    for step in tx._steps:
        step.done = _done(step)
    return tx


def _done(step: _Step) -> bool:
    """Whether the interrupted commit got as far as this step (by inode, so a second
    interrupted recovery still reads right)."""
    try:
        st = os.lstat(step.target)
    except FileNotFoundError:
        return step.staged is None  # a deletion is done once the target is gone
    if step.staged is None:
        return False
    return st.st_ino == step.ino


def recover(folder: str | os.PathLike[str]) -> list[str]:
    """Roll back a commit interrupted by a killed process; notes on what was done.

    Call with the folder's lock held (`FolderLock` does). Running it again after it was
    itself interrupted finishes the job.
    """
    folder = Path(folder)
    tx = _read_journal(folder)
    if tx is None:
        return []
    point("recover")
    undone = [s.target.name for s in tx._steps if s.done]
    tx.rollback()
    _set_outcome(None)
    what = (f"rolled back {', '.join(undone)}" if undone
            else "it had renamed nothing yet")
    return [f"{folder}: an earlier fix/graft was interrupted while committing; {what}, "
            "the folder is as it was before that run"]


def clean_leftovers(folder: str | os.PathLike[str]) -> list[str]:
    """Remove temporaries of interrupted runs (hidden ``.<name>.vdq-tmp-<hex>`` files).

    Call with the folder's lock held and no journal present (after `recover`).
    """
    folder = Path(folder)
    if os.path.lexists(folder / JOURNAL_NAME):
        return []
    removed: list[str] = []
    size = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        if not _TMP_NAME.match(entry.name):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False):
                size += entry.stat(follow_symlinks=False).st_size
            os.unlink(entry.path)
            removed.append(entry.name)
    if not removed:
        return []
    with contextlib.suppress(OSError):
        fsync_dir(folder)
    return [f"{folder}: removed {len(removed)} temporary file(s) left by an interrupted run "
            f"({size / 2**20:.1f} MiB)"]


class FolderLock(_lock.FolderLock):
    """The folder lock (`repair.lock.FolderLock`) that, once taken, rolls back a commit
    interrupted by a killed process (`recover`) and removes leftover temporaries
    (`clean_leftovers`), noting what it did in ``notes``."""

    def _settle(self) -> None:
        self.notes += recover(self.folder)
        self.notes += clean_leftovers(self.folder)


def settle(folder: str | os.PathLike[str]) -> list[str]:
    """Before a read-only command reads ``folder``: finish an interrupted commit.

    Takes the folder lock only when a journal is present (so a read-only folder
    without one is never written); a lock held by a live writer is `FolderBusyError`.
    """
    folder = Path(folder)
    if not os.path.lexists(folder / JOURNAL_NAME):
        return []
    with FolderLock(folder) as lock:
        return lock.notes

