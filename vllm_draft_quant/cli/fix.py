"""``fix MODEL [--write]``: make the quantization config truthful about the draft layers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vllm_draft_quant.cli._model_args import (
    add_learn_option,
    add_model_options,
    refuse_hub_snapshot,
    with_learned,
)
from vllm_draft_quant.cli._model_args import model_dir as model_dir_of
from vllm_draft_quant.cli._output import json_document

if TYPE_CHECKING:  # the rest is imported when the command runs (a fast --help)
    from vllm_draft_quant.core.profile import DrafterProfile
    from vllm_draft_quant.repair.fixer import FixResult

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "fix_json", "note", "report_fix",
           "run"]

HELP = "make the config's exclusions tell the truth about the draft tensors"
DESCRIPTION = """\
Compute the exclusion entries (ModelOpt exclude_modules/ignore, compressed-tensors
ignore) that make the quantization config match the stored draft tensors, in forms
stock vLLM also follows. Without --write, print a unified diff (exit code 1 if a
change is pending); with --write, rewrite hf_quant_config.json and config.json
atomically and keep a .bak of each (config.json.bak, or config.json.bak.1, ... when a
.bak exists: an existing one is never overwritten). Also says which layouts stock vLLM
still cannot load even with a truthful config (then you need the plugin).

With --speculative-config (the same JSON as vLLM's flag, or its dotted form), MODEL is
the target and the configs fixed are those of the checkpoint the drafter loads from:
the folder named by "model" when it is another one (an EAGLE3 draft, MTP layers in a
separate checkpoint), whose own quantization config vLLM reads for the draft.

With --learn, a drafter without a hand profile is fixed from the mapping learned from
the installed vLLM (as 'plan --learn': vLLM imported in a subprocess): the entries name
the prefixes vLLM was seen to build its layers with, and a layer it builds with no
prefix (which no entry can name) is reported as a stock limit.

--write refuses a snapshot of the Hugging Face cache (its files are links into the
shared blob store): it names the 'hf download --local-dir' command that makes a local
copy to fix instead. The diff (without --write) works anywhere."""
EXAMPLES = """\
  vllm-draft-quant fix /models/Step-3.7-Flash-NVFP4            # show the diff
  vllm-draft-quant fix /models/Step-3.7-Flash-NVFP4 --write    # apply it (keeps .bak)
  vllm-draft-quant fix ./ckpt --json                           # the same as JSON
  vllm-draft-quant fix /models/Llama-3.1-8B-Instruct --write \\
      --speculative-config '{"method": "eagle3", "model": "/models/EAGLE3-NVFP4"}'
  vllm-draft-quant fix /models/ERNIE-4.5-21B-A3B-NVFP4 --learn    # no hand profile"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="model folder, or a Hugging Face repo id in the local cache")
    add_model_options(p)
    p.add_argument("--write", action="store_true",
                   help="rewrite the config files (atomically, keeping a .bak)")
    p.add_argument("--speculative-config", metavar="JSON",
                   help="vLLM's speculative config (same JSON as its flag); MODEL is then the "
                        "target and the draft checkpoint it names is the one fixed")
    p.add_argument("--json", action="store_true",
                   help="print what changes (or changed) as JSON instead of a diff")
    add_learn_option(p)


def fix_json(model_dir: Path, res: FixResult, texts: dict[str, tuple[str, str]], *,
             written: bool) -> dict[str, Any]:
    """The ``fix --json`` body (README "JSON output")."""
    from vllm_draft_quant.repair.fixer import unified_diff

    return {"model": str(model_dir), "producer": res.producer, "changed": res.changed,
            "written": sorted(texts) if written else [], "added": list(res.added),
            "removed": list(res.removed), "notes": list(res.notes),
            "remaining": list(res.remaining), "stock_limits": list(res.stock_limits),
            "diff": {name: unified_diff(name, old, new) for name, (old, new) in texts.items()}}


def _texts(model_dir: Path, res: FixResult, objects: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """{file: (old text, new text)} for each file the fix changes."""
    from vllm_draft_quant.repair.fixer import render_json

    out = {}
    for name, obj in res.new_objects(objects).items():
        old = (model_dir / name).read_text(encoding="utf-8-sig")
        out[name] = (old, render_json(old, obj))
    return out


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from vllm_draft_quant.repair.fixer import HF_QUANT, unified_diff
    from vllm_draft_quant.repair.writer import FolderLock, Transaction, settle

    out = out or sys.stdout
    as_json = getattr(args, "json", False)
    drafter: str | None = None
    target_layers: int | None = None
    separate_from: Path | None = None
    if getattr(args, "speculative_config", None) is not None:
        from vllm_draft_quant.checkpoint.speculative import draft_source

        src = draft_source(model_dir_of(args), args.speculative_config)
        model_dir, drafter, target_layers = src.draft_dir, src.drafter, src.target_layers
        if src.separate:
            separate_from = src.target_dir
            if not as_json:
                out.write(f"the drafter loads from {model_dir} (speculative_config.model), "
                          "with that checkpoint's own quantization config under the plugin: "
                          "fixing it\n")
    else:
        model_dir = model_dir_of(args)
    def compute() -> tuple[FixResult, dict[str, tuple[str, str]]]:
        from vllm_draft_quant.core.speculative import parse_speculative_config

        spec = getattr(args, "speculative_config", None)
        return with_learned(
            lambda profile: _compute(model_dir, drafter, target_layers, profile,
                                     separate_from=separate_from),
            learn=getattr(args, "learn", False), model=str(model_dir_of(args)),
            origin=str(args.model),
            engine_args={"speculative_config": parse_speculative_config(spec)} if spec else None)

    if not args.write:
        note(settle(model_dir))
        res, texts = compute()
        if as_json:
            out.write(json_document("fix", fix_json(model_dir, res, texts, written=False)) + "\n")
            return 1 if res.changed or res.remaining else 0
        for name, (old, new) in texts.items():
            out.write(unified_diff(name, old, new))
        report_fix(res, out, written=False)
        return 1 if res.changed or res.remaining else 0
    refuse_hub_snapshot(model_dir, "fix --write")
    with FolderLock(model_dir) as lock:
        note(lock.notes)
        res, texts = compute()
        if texts:
            backups: dict[str, str | None] = {}
            with Transaction(model_dir) as tx:
                for name in texts:
                    backups[name] = tx.backup(name)
                for name in sorted(texts, key=lambda n: n != HF_QUANT):
                    tx.write_bytes(name, texts[name][1].encode("utf-8"))
                tx.commit()
            if not as_json:
                for name in texts:
                    bak = backups[name]
                    kept = f"; the existing {name}.bak was kept" if bak != f"{name}.bak" else ""
                    out.write(f"wrote {model_dir / name} (previous version: {bak}{kept})\n")
    if as_json:
        out.write(json_document("fix", fix_json(model_dir, res, texts, written=True)) + "\n")
        return 1 if res.remaining else 0
    report_fix(res, out, written=True)
    return 1 if res.remaining else 0


def note(lines: list[str]) -> None:
    """Notes on what a run found and repaired first (an interrupted commit rolled back,
    leftover temporaries removed), on stderr so stdout stays the command's own output."""
    for line in lines:
        sys.stderr.write(f"note: {line}\n")


def _compute(model_dir: Path, drafter: str | None = None, target_layers: int | None = None,
             profile: DrafterProfile | None = None, *, separate_from: Path | None = None
             ) -> tuple[FixResult, dict[str, tuple[str, str]]]:
    """The fix of ``model_dir``'s config (``separate_from``: the target folder, when the
    draft is read from another folder than the target's)."""
    from vllm_draft_quant.checkpoint.facts import decisions_from_facts, load_facts
    from vllm_draft_quant.repair.fixer import CONFIG, HF_QUANT, compute_fix

    facts = load_facts(model_dir, drafter=drafter, target_layers=target_layers, profile=profile)
    res = compute_fix(facts, decisions_from_facts(facts))
    stock = facts.profile.stock
    if separate_from is not None and stock is not None and stock.quant_config == "target":
        res.stock_limits.append(
            f"stock vLLM builds {facts.profile.architecture} with the target's quantization "
            f"config ({separate_from}), not this folder's: no entry here changes what it builds")
    objects: dict[str, Any] = {CONFIG: facts.config}
    if facts.hf_quant_config is not None:
        objects[HF_QUANT] = facts.hf_quant_config
    return res, _texts(facts.model_dir, res, objects)


def _few(entries: list[str], limit: int = 12) -> list[str]:
    if len(entries) <= limit:
        return entries
    return [*entries[: limit - 2], f"... and {len(entries) - limit + 2} more (see the diff)"]


def report_fix(res: FixResult, out: TextIO, *, written: bool,
               hint: str = "run again with --write to apply") -> None:
    """What the fix adds/removes, what it could not fix, and what stock vLLM still fails."""
    if res.added or res.removed:
        verb = "" if written else "would be "
        for e in _few(res.added):
            out.write(f"exclusion {verb}added: {e}\n")
        for e in _few(res.removed):
            out.write(f"exclusion {verb}removed (it covered a quantized draft module): {e}\n")
        if not written and hint:
            out.write(hint + "\n")
    elif res.remaining:
        out.write("nothing can be changed safely; by hand:\n")
    else:
        out.write("the exclusions already match the stored draft tensors: nothing to change\n")
    for note in res.notes:
        out.write(f"note: {note}\n")
    for note in res.remaining:
        out.write(f"not fixed: {note}\n")
    config = "the fixed config" if res.changed else "this config"
    if res.stock_limits:
        out.write(f"even with {config}, stock vLLM cannot load the drafter correctly; use "
                  "the plugin (pip install vllm-draft-quant, on by default):\n")
        for line in res.stock_limits:
            out.write(f"  - {line}\n")
    elif res.remaining:
        out.write("stock vLLM will mis-load the modules above until their entries are fixed; "
                  "the plugin follows the stored tensors regardless\n")
    elif res.producer != "none":
        out.write(f"with {config}, stock vLLM (without the plugin) builds every draft module "
                  "in its stored precision\n")
