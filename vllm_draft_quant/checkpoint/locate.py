"""Find a model folder: a local path, or a Hugging Face repo id in the local cache.

Never downloads. A repo id resolves through huggingface_hub's own cache API
(``snapshot_download(..., local_files_only=True)``), so the cache location
(``--cache-dir``, else ``HF_HUB_CACHE`` / ``HUGGINGFACE_HUB_CACHE`` / ``HF_HOME``),
``refs/<revision>`` and commit hashes are read exactly as huggingface_hub and vLLM
read them: a cache without ``refs/main`` is an error, as it is for huggingface_hub.
The vLLM plugin never calls this: it plans the folder vLLM's loader resolved.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vllm_draft_quant.errors import CheckpointError

__all__ = ["download_command", "is_hub_snapshot", "locate_model"]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+\Z")


def download_command(repo_id: str, revision: str | None = None,
                     cache_dir: str | os.PathLike[str] | None = None) -> str:
    """The huggingface_hub command that puts ``repo_id`` in the cache this tool reads."""
    cmd = f"hf download {repo_id}"
    if revision:
        cmd += f" --revision {revision}"
    if cache_dir:
        cmd += f" --cache-dir {cache_dir}"
    return cmd


def locate_model(model: str | os.PathLike[str], revision: str | None = None,
                 cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local folder holding ``model``'s files.

    ``revision`` (branch, tag or commit) and ``cache_dir`` apply to a repo id only, as in
    huggingface_hub (``None``: ``main`` in the default cache).
    """
    p = Path(model)
    if p.is_dir():
        return p
    text = str(model)
    if p.exists():
        raise CheckpointError(f"{p}: is a file, not a model folder; pass the folder that "
                              "holds config.json and the *.safetensors files.")
    if not _REPO_ID.match(text) or ".." in text:
        raise CheckpointError(f"{text}: no such model folder; pass a local folder or a "
                              "Hugging Face repo id that is in the local cache.")
    from huggingface_hub import constants, snapshot_download

    where = cache_dir or constants.HF_HUB_CACHE
    try:
        folder = snapshot_download(text, revision=revision,
                                   cache_dir=None if cache_dir is None else str(cache_dir),
                                   local_files_only=True)
    except Exception as e:  # huggingface_hub's LocalEntryNotFoundError, bad revision, ...
        raise CheckpointError(
            f"{text}: no snapshot of revision {revision or 'main'} in the Hugging Face cache "
            f"{where} (huggingface_hub: {' '.join(str(e).split())[:160]}); download it first "
            f"({download_command(text, revision, cache_dir)}); this tool never downloads."
        ) from e
    return Path(str(folder))


def is_hub_snapshot(folder: Path) -> bool:
    """Whether ``folder`` is a snapshot of a huggingface_hub cache
    (``models--org--name/snapshots/<rev>``, files symlinked into ``blobs/``)."""
    try:
        real = folder.absolute()
    except OSError:
        return False
    repo = real.parent.parent
    return (real.parent.name == "snapshots" and repo.name.startswith("models--")
            and (repo / "blobs").is_dir())
