"""MODEL arguments shared by the subcommands: a folder, or a repo id in the Hugging Face
cache with ``--revision`` and ``--cache-dir`` (as ``hf download`` takes them)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from vllm_draft_quant.checkpoint.locate import is_hub_snapshot, locate_model
from vllm_draft_quant.errors import CheckpointError, UnknownDrafterError

if TYPE_CHECKING:
    from vllm_draft_quant.core.profile import DrafterProfile

__all__ = ["add_learn_option", "add_model_options", "model_dir", "refuse_hub_snapshot",
           "with_learned"]

T = TypeVar("T")


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--revision", metavar="REV",
                   help="branch, tag or commit of a repo id (default: main)")
    p.add_argument("--cache-dir", metavar="DIR",
                   help="the Hugging Face cache to read a repo id from (default: HF_HUB_CACHE, "
                        "else HF_HOME/hub, else ~/.cache/huggingface/hub)")


def add_learn_option(p: argparse.ArgumentParser) -> None:
    """``--learn``, the same for plan, fix and graft (`cli._learn`)."""
    p.add_argument("--learn", action="store_true",
                   help="for a drafter without a hand profile, learn its name mapping from the "
                        "installed vLLM's drafter code (imports vLLM in a subprocess, tens of "
                        "seconds; the plugin does the same in-process at load time)")


def model_dir(args: argparse.Namespace, attr: str = "model") -> Path:
    """The folder of ``args.<attr>``: the path itself, or the cached snapshot of a repo id."""
    return locate_model(getattr(args, attr), getattr(args, "revision", None),
                        getattr(args, "cache_dir", None))


def local_copy_command(folder: Path) -> str:
    """``hf download`` making an editable copy of the cache snapshot ``folder``."""
    repo = folder.absolute().parent.parent.name.removeprefix("models--").replace("--", "/")
    return (f"hf download {repo} --revision {folder.name} "
            f"--local-dir ./{repo.rsplit('/', 1)[-1]}")


def refuse_hub_snapshot(folder: Path, command: str) -> None:
    """Refuse to write into a Hugging Face cache snapshot: its files are symlinks into the
    blob store, shared with every other snapshot (and what ``hf`` verifies)."""
    if not is_hub_snapshot(folder):
        return
    name = folder.absolute().parent.parent.name.removeprefix("models--").replace("--", "/")
    raise CheckpointError(
        f"{folder}: is a snapshot of the Hugging Face cache (its files are links into the "
        f"shared blob store), so {command} does not write there; make a local copy and "
        f"run it on that: {local_copy_command(folder)} && vllm-draft-quant {command} "
        f"./{name.rsplit('/', 1)[-1]}"
    )


def with_learned(run: Callable[[DrafterProfile | None], T], *, learn: bool, model: str,
                 origin: str, engine_args: Mapping[str, Any] | None = None) -> T:
    """``run(None)`` (the hand profiles); when it finds none for the drafter, ``run``
    once more with the profile ``cli._learn.learn_or_explain`` gives for ``model``
    (imported only then: graft and fix runs with a hand profile stay free of it)."""
    try:
        return run(None)
    except UnknownDrafterError as e:
        from vllm_draft_quant.cli._learn import learn_or_explain

        profile = learn_or_explain(e, learn=learn, model=model, origin=origin,
                                   engine_args=engine_args)
    return run(profile)
