"""Bounded, strict reading of the JSON files in a model folder, and path checks.

`load_json_object` reads config.json, hf_quant_config.json and similar files;
every failure is one `ConfigError` (or the error class the caller names) that
says which file, what was wrong and how to fix it. `resolve_inside` refuses a
relative path from an untrusted file (a shard index) that would leave the model
folder.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, Literal, NoReturn, overload

from vllm_draft_quant.core.bounded import check_depth
from vllm_draft_quant.errors import CheckpointError, ConfigError, DraftQuantError

__all__ = [
    "DEFAULT_MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "load_json_object",
    "parse_json_object",
    "read_bounded",
    "resolve_inside",
]

DEFAULT_MAX_JSON_BYTES = 64 * 2**20
#: deepest nesting of a model folder's JSON files (real configs nest 3-5 levels; deeper
#: ones would make copying them, as graft does, recurse past Python's limit)
MAX_JSON_DEPTH = 64

_FIX = "repair the file or re-download it"


def read_bounded(
    path: Path,
    *,
    what: str,
    max_bytes: int,
    error: type[DraftQuantError] = ConfigError,
) -> bytes:
    """Return the bytes of the regular file `path`, refusing more than `max_bytes`."""

    def fail(problem: str, fix: str = _FIX) -> NoReturn:
        raise error(f"{path}: {what} {problem}; {fix}")

    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            fail("is not a regular file", f"replace it with the {what} file")
        if st.st_size > max_bytes:
            fail(f"is {st.st_size} bytes, more than the {max_bytes}-byte limit")
        with path.open("rb") as f:
            raw = f.read(max_bytes + 1)
    except FileNotFoundError as e:
        raise error(f"{path}: {what} not found; check the model folder path") from e
    except OSError as e:
        raise error(f"{path}: cannot read {what} ({e.strerror or e}); check its permissions") from e
    if len(raw) > max_bytes:
        fail(f"grew past the {max_bytes}-byte limit while being read")
    return raw


def parse_json_object(
    raw: bytes,
    path: Path,
    *,
    what: str,
    error: type[DraftQuantError] = ConfigError,
) -> dict[str, Any]:
    """Decode `raw` (UTF-8, optional BOM) as JSON holding an object."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(
            f"{path}: {what} is not UTF-8 (bad byte at offset {e.start}); "
            "save it as UTF-8 or re-download it"
        ) from e
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise error(
            f"{path}: {what} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); {_FIX}"
        ) from e
    except RecursionError as e:
        raise error(f"{path}: {what} is nested too deeply to parse; {_FIX}") from e
    except ValueError as e:  # e.g. an integer longer than Python's digit limit
        raise error(f"{path}: {what} is not valid JSON ({e}); {_FIX}") from e
    try:
        check_depth(value, origin=f"{path}: {what}", max_depth=MAX_JSON_DEPTH)
    except ConfigError as e:
        raise error(str(e)) from e
    if not isinstance(value, dict):
        raise error(
            f"{path}: {what} holds a JSON {type(value).__name__}, not an object; "
            f"the top level must be {{...}}"
        )
    return value


@overload
def load_json_object(
    path: Path,
    *,
    what: str,
    max_bytes: int = ...,
    required: Literal[True] = ...,
    error: type[DraftQuantError] = ...,
) -> dict[str, Any]: ...
@overload
def load_json_object(
    path: Path,
    *,
    what: str,
    max_bytes: int = ...,
    required: bool,
    error: type[DraftQuantError] = ...,
) -> dict[str, Any] | None: ...
def load_json_object(
    path: Path,
    *,
    what: str,
    max_bytes: int = DEFAULT_MAX_JSON_BYTES,
    required: bool = True,
    error: type[DraftQuantError] = ConfigError,
) -> dict[str, Any] | None:
    """Load the JSON object in `path`; None if it is missing and not `required`."""
    path = Path(path)
    if not required and not os.path.lexists(path):
        return None
    raw = read_bounded(path, what=what, max_bytes=max_bytes, error=error)
    return parse_json_object(raw, path, what=what, error=error)


def resolve_inside(model_dir: Path, relative: str, *, what: str) -> Path:
    """Return ``model_dir / relative`` if it stays inside `model_dir`.

    Refuses absolute paths, ``..``, backslashes and NUL, and anything that
    resolves (following symlinks) outside the folder. In a Hugging Face cache
    snapshot, symlinks into the repository's ``blobs`` folder are allowed.
    """

    def refuse(problem: str) -> NoReturn:
        raise CheckpointError(
            f"{model_dir}: {what} is {relative!r}, which {problem}; shards must be files "
            "inside the model folder named by relative paths (fix or re-download the index)"
        )

    if not isinstance(relative, str) or not relative:
        raise CheckpointError(
            f"{model_dir}: {what} is {relative!r}, not a file name; fix or re-download the index"
        )
    if "\x00" in relative:
        refuse("contains a NUL byte")
    if "\\" in relative:
        refuse("contains a backslash")
    posix = PurePosixPath(relative)
    if posix.is_absolute() or PureWindowsPath(relative).drive:
        refuse("is an absolute path")
    if ".." in posix.parts:
        refuse("contains a '..' component")
    candidate = model_dir / posix
    try:
        root = model_dir.resolve()
        target = candidate.resolve()
        roots = [root]
        if root.parent.name == "snapshots":  # huggingface_hub cache layout
            roots.append((root.parent.parent / "blobs").resolve())
    except (OSError, RuntimeError) as e:  # RuntimeError: symlink loop (Python < 3.13)
        raise CheckpointError(
            f"{candidate}: cannot resolve {what} ({e}); fix the symlink or re-download the shard"
        ) from e
    if target == root:
        refuse("names the model folder itself")
    if not any(target.is_relative_to(r) for r in roots):
        refuse(f"resolves to {target}, outside the model folder")
    return candidate
