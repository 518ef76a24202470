"""Find a model folder: a local path, or a Hugging Face repo id in the local cache.

Never downloads: a repo id resolves only to a snapshot already in the cache
(``$HF_HUB_CACHE``, else ``$HF_HOME/hub``, else ``~/.cache/huggingface/hub``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vllm_draft_quant.errors import CheckpointError

__all__ = ["locate_model"]

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+\Z")


def _hub_cache() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


def locate_model(model: str | os.PathLike[str], revision: str | None = None) -> Path:
    """The local folder holding ``model``'s files."""
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
    repo = _hub_cache() / ("models--" + text.replace("/", "--"))
    snaps = repo / "snapshots"
    if not snaps.is_dir():
        raise CheckpointError(
            f"{text}: not a local folder and not in the Hugging Face cache ({repo}); "
            f"download it first (huggingface-cli download {text}) — this tool never downloads."
        )
    ref = revision or "main"
    ref_file = repo / "refs" / ref
    if ref_file.is_file():
        commit = ref_file.read_text().strip()
        if (snaps / commit).is_dir():
            return snaps / commit
    if revision and (snaps / revision).is_dir():
        return snaps / revision
    candidates = sorted((d for d in snaps.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    if not candidates:
        raise CheckpointError(f"{text}: the cache folder {snaps} has no snapshot; download it again.")
    return candidates[-1]
