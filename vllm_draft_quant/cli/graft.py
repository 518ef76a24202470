"""``graft TARGET --from SOURCE``: copy missing draft layers from the unquantized original."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any, TextIO

from vllm_draft_quant.cli._model_args import (
    add_learn_option,
    add_model_options,
    model_dir,
    refuse_hub_snapshot,
    with_learned,
)
from vllm_draft_quant.cli._output import Progress, json_document
from vllm_draft_quant.cli.fix import fix_json, note, report_fix
from vllm_draft_quant.errors import ConfigError, DraftQuantError

if TYPE_CHECKING:  # the rest is imported when the command runs (a fast --help)
    from vllm_draft_quant.repair.graft import GraftPlan

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "graft_json", "parse_layers", "run"]

HELP = "copy missing draft (MTP/NextN) layers from the unquantized original"
DESCRIPTION = """\
Copy the draft layers' tensors from SOURCE (e.g. the BF16 original) into TARGET (a
quantized export that dropped them): a new shard model-mtp-graft.safetensors streamed
with bounded memory, an updated (or new) model.safetensors.index.json, the draft
layers' entries of config.json's per-layer lists restored from SOURCE when TARGET's
were truncated, and the same exclusions 'fix' would write. Hidden size, vocabulary,
layer indices and tensor shapes must agree (every tensor written is also checked
against the shapes TARGET's config implies). Draft tensors TARGET already has are left
alone when identical and refused otherwise (unless --force). All or nothing: on any
failure TARGET is left byte-identical, and what was done is printed only once it is
done; a second run changes nothing. TARGET must not be a snapshot of the Hugging Face
cache (graft names the 'hf download --local-dir' command that makes a local copy);
SOURCE may be a cached repo id.

With --learn, a drafter without a hand profile is grafted from the mapping learned from
the installed vLLM on SOURCE (as 'plan --learn': vLLM imported in a subprocess): the
tensors its load_weights reads that TARGET lacks are copied (--layers does not apply:
such a mapping numbers no draft layers)."""
EXAMPLES = """\
  vllm-draft-quant graft /models/Step-3.7-Flash-NVFP4 --from /models/Step-3.7-Flash --dry-run
  vllm-draft-quant graft /models/Step-3.7-Flash-NVFP4 --from stepfun-ai/Step-3.7-Flash
  vllm-draft-quant graft ./nvfp4 --from ./bf16 --layers 45,46 --force
  vllm-draft-quant graft ./ernie-nvfp4 --from ./ernie-bf16 --learn   # no hand profile"""


def parse_layers(text: str) -> str | list[int]:
    """``auto`` or a comma-separated list of draft layer numbers (as in tensor names)."""
    if text.strip() == "auto":
        return "auto"
    try:
        layers = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(
            f"--layers {text!r}: expected 'auto' or layer numbers such as 45,46") from None
    if not layers or any(n < 0 for n in layers):
        raise ConfigError(f"--layers {text!r}: expected 'auto' or layer numbers >= 0")
    return layers


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", metavar="TARGET", help="the quantized checkpoint to complete")
    p.add_argument("--from", dest="source", metavar="SOURCE", required=True,
                   help="the unquantized checkpoint holding the draft layers")
    p.add_argument("--layers", default="auto", metavar="auto|N,...",
                   help="draft layers to copy, numbered as in tensor names (model.layers.45 -> "
                        "45; mtp.layers.0 -> 0); default: all of SOURCE's")
    p.add_argument("--dry-run", action="store_true",
                   help="show what would be written, write nothing")
    p.add_argument("--force", action="store_true",
                   help="replace draft tensors TARGET already has when they differ")
    p.add_argument("--json", action="store_true",
                   help="print what is (or would be) written as JSON")
    add_learn_option(p)
    add_model_options(p)


def graft_json(plan: GraftPlan, *, dry_run: bool) -> dict[str, Any]:
    """The ``graft --json`` body (README "JSON output")."""
    return {
        "target": str(plan.target), "source": str(plan.source), "dry_run": dry_run,
        "changed": plan.changed, "written": plan.changed and not dry_run,
        "units": [{"label": u.label, "action": u.action, "tensors": len(u.source),
                   "bytes": sum(t.nbytes for t in u.source)} for u in plan.units],
        "shard": plan.shard, "rewrites": sorted(plan.rewrites), "deletes": list(plan.deletes),
        "files": sorted(plan.texts()), "notes": list(plan.notes),
        "fix": fix_json(plan.target, plan.fix, {}, written=not dry_run) if plan.fix else None,
    }


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from vllm_draft_quant.checkpoint.locate import locate_model
    from vllm_draft_quant.repair.graft import apply_graft, plan_graft
    from vllm_draft_quant.repair.writer import FolderLock, settle

    out = out or sys.stdout
    layers = parse_layers(args.layers)
    target = model_dir(args, "target")
    as_json = getattr(args, "json", False)
    note(settle(locate_model(args.source)))  # SOURCE is only read, but never half-committed

    def comparing(total: int) -> Progress:
        return Progress(total, "comparing the draft tensors TARGET already has",
                        done_verb="compared")

    def planned() -> GraftPlan:

        # SOURCE holds the draft tensors the learner must see the drafter read
        return with_learned(
            lambda profile: plan_graft(target, args.source, layers=layers, force=args.force,
                                       compare_progress=comparing, profile=profile),
            learn=getattr(args, "learn", False), model=str(locate_model(args.source)),
            origin=str(args.source))

    if args.dry_run:
        note(settle(target))
        plan = planned()
        if as_json:
            out.write(json_document("graft", graft_json(plan, dry_run=True)) + "\n")
        else:
            describe(plan, out, dry_run=True)
        return 0
    refuse_hub_snapshot(target, "graft")
    with FolderLock(target) as lock:
        note(lock.notes)
        plan = planned()
        if plan.changed:
            try:
                with Progress(plan.bytes_to_write, "copying draft tensors",
                              done_verb="copied") as progress:
                    apply_graft(plan, progress=progress)
            except DraftQuantError as e:
                raise type(e)(f"{e}; graft rolled back: {plan.target} is as before") from e
        if as_json:
            out.write(json_document("graft", graft_json(plan, dry_run=False)) + "\n")
            return 0
        describe(plan, out, dry_run=False)  # after the fact: what was done
        if plan.changed:
            out.write(f"grafted into {plan.target}\n")
    return 0


def describe(plan: GraftPlan, out: TextIO, *, dry_run: bool) -> None:
    """What the graft copies, skips or replaces, and how the JSON files change.

    With ``dry_run`` it says what would be done; otherwise it is called after the
    commit and says what was done (in the past tense).
    """
    from vllm_draft_quant.checkpoint.index import INDEX_FILE
    from vllm_draft_quant.repair.fixer import unified_diff

    would = "would " if dry_run else ""
    for u in plan.units:
        size = sum(t.nbytes for t in u.source) / 2**20
        what = {"copy": f"{would}{'copy' if dry_run else 'copied'} {len(u.source)} tensors "
                        f"({size:.1f} MiB)",
                "skip": "already present and identical: skipped",
                "replace": f"{would}{'replace' if dry_run else 'replaced'} {len(u.existing)} "
                           f"tensors with {len(u.source)} ({size:.1f} MiB, --force)"}[u.action]
        out.write(f"{u.label}: {what}\n")
    if not plan.changed:
        out.write(f"{plan.target}: already grafted, nothing to change\n")
        return
    if plan.shard:
        out.write(f"new shard: {plan.shard}\n")
    for name in plan.rewrites:
        out.write(f"{would}{'rewrite' if dry_run else 'rewrote'} shard without the replaced "
                  f"tensors: {name}\n")
    for name in plan.deletes:
        out.write(f"{would}{'delete' if dry_run else 'deleted'} shard holding only replaced "
                  f"tensors: {name}\n")
    for line in plan.notes:
        out.write(f"{line}\n")
    for name, bak in plan.backups.items():
        if bak is not None and bak != f"{name}.bak":
            out.write(f"previous {name} kept as {bak} (the existing {name}.bak was kept)\n")
    if plan.index is not None:
        verb = ("update" if dry_run else "updated") if INDEX_FILE in plan.originals else (
            "create" if dry_run else "created")
        out.write(f"{would}{verb} {INDEX_FILE}: {len(plan.index['weight_map'])} tensors\n")
    if dry_run:
        for name, text in plan.texts().items():
            if name != INDEX_FILE:
                out.write(unified_diff(name, plan.originals.get(name, ""), text))
    if plan.fix is not None:
        report_fix(plan.fix, out, written=not dry_run, hint="")
    if dry_run:
        out.write("dry run: nothing was written\n")
