"""``plan MODEL``: the precision every draft module will be built with, and why."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from vllm_draft_quant.checkpoint.locate import is_hub_snapshot
from vllm_draft_quant.cli._model_args import (
    add_learn_option,
    add_model_options,
    local_copy_command,
    model_dir,
)
from vllm_draft_quant.cli._output import highlight, json_document, wrap
from vllm_draft_quant.cli.fix import note
from vllm_draft_quant.core.overrides import ENV_OVERRIDES
from vllm_draft_quant.errors import ConflictError

if TYPE_CHECKING:  # the rest is imported when the command runs (a fast --help)
    from vllm_draft_quant.checkpoint.facts import CheckpointFacts
    from vllm_draft_quant.checkpoint.speculative import DraftSource
    from vllm_draft_quant.core.plan import Conflict, ModuleDecision, Plan
    from vllm_draft_quant.core.profile import DrafterProfile

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "overrides_path", "render", "run"]

HELP = "explain the plan for a checkpoint's draft layers"
DESCRIPTION = """\
Show one row per module vLLM builds for the drafter: its draft layer, how its tensors
are stored and the precision it will be built with (BF16, FP8, FP8-block, NVFP4,
MXFP4, INT4 w/ group), and which rule or evidence decided. Each root cause of a
conflict between the quantization config and the stored tensors is explained once
below the table; in auto mode the ones the plugin resolves are marked "handled"
(--verbose: the reasons per module). Exit code 1 when there are conflicts; in strict
mode a conflict is an error (the table or --json is printed first).

With --speculative-config (vLLM's JSON, or its dotted form), MODEL is the target and
the plan is the one of the drafter that config loads: from the draft checkpoint named
by "model" when it is another folder (its own tensors and config, never the target's
quantization config), e.g. MTP layers from a BF16 original next to a quantized target,
or an EAGLE3 draft. The table then says which checkpoint folder and file each draft
module's weights are read from.

The plan says which name mapping it used: a hand profile (vllm_draft_quant/profiles/),
or, with --learn for a drafter without one, the mapping learned from the installed
vLLM's own drafter code, as the plugin learns it at load time (this imports vLLM in a
subprocess, tens of seconds; without --learn such a drafter is an error naming it)."""
EXAMPLES = """\
  vllm-draft-quant plan /models/Step-3.7-Flash-NVFP4
  vllm-draft-quant plan stepfun-ai/Step-3.7-Flash-NVFP4 --revision main --json > plan.json
  vllm-draft-quant plan ./ckpt --mode strict --verbose
  vllm-draft-quant plan /models/ERNIE-4.5-21B-A3B-NVFP4 --learn   # no hand profile
  vllm-draft-quant plan ./ckpt --overrides overrides.yaml --drafter Step3p5MTP
  vllm-draft-quant plan /models/Qwen3-Next-NVFP4 \\
      --speculative-config '{"method": "mtp", "model": "/models/Qwen3-Next-BF16"}'
  vllm-draft-quant plan /models/Qwen3-Next-NVFP4 \\
      --speculative-config.method mtp --speculative-config.model /models/Qwen3-Next-BF16
  vllm-draft-quant plan /models/Llama-3.1-8B-Instruct \\
      --speculative-config '{"method": "eagle3", "model": "/models/EAGLE3-LLaMA3.1-8B"}'"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="model folder, or a Hugging Face repo id in the local cache")
    add_model_options(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--verbose", "-v", action="store_true",
                   help="add each module's reason and conflict under its row")
    p.add_argument("--mode", choices=("auto", "strict"), default="auto",
                   help="auto: the stored tensors win (default); strict: a conflict is an error")
    p.add_argument("--overrides", metavar="FILE",
                   help="JSON/YAML file of per-module schemes (default: the file named by "
                        "VLLM_DRAFT_QUANT_OVERRIDES, which vLLM reads too)")
    p.add_argument("--drafter", metavar="ARCH",
                   help="force the vLLM draft architecture (e.g. Step3p5MTP)")
    add_learn_option(p)
    p.add_argument("--speculative-config", metavar="JSON",
                   help="vLLM's speculative config (same JSON as its flag, or its dotted form "
                        "--speculative-config.KEY VALUE); MODEL is then the target and the "
                        "draft is planned from the checkpoint it names")


def _facts(args: argparse.Namespace) -> tuple[CheckpointFacts, DraftSource | None]:
    """The facts of the drafter to plan: with its hand profile, else with the mapping
    learned from vLLM (`cli._learn`: a subprocess; only then is vLLM imported)."""
    from pathlib import Path

    from vllm_draft_quant.checkpoint.facts import load_facts
    from vllm_draft_quant.checkpoint.speculative import draft_source
    from vllm_draft_quant.cli._learn import learn_or_explain
    from vllm_draft_quant.core.speculative import parse_speculative_config
    from vllm_draft_quant.errors import UnknownDrafterError
    from vllm_draft_quant.repair.writer import settle

    spec = getattr(args, "speculative_config", None)
    model = model_dir(args)
    try:
        if spec is not None:
            source = draft_source(model, spec)
            for folder in dict.fromkeys((source.target_dir, source.draft_dir)):
                note(settle(folder))
            return load_facts(source.draft_dir, drafter=args.drafter or source.drafter,
                              target_layers=source.target_layers), source
        note(settle(model))
        return load_facts(model, drafter=args.drafter), None
    except UnknownDrafterError as e:
        engine_args = {"speculative_config": parse_speculative_config(spec)} if spec else None
        profile = learn_or_explain(e, learn=getattr(args, "learn", False), model=str(model),
                                   origin=str(args.model), engine_args=engine_args)
        draft = Path(profile_source_dir(str(model), spec))
        return load_facts(draft, profile=profile), None


def profile_source_dir(model: str, spec: str | None) -> str:
    """The folder a learned drafter's weights come from (its ``model``, else the target)."""
    from vllm_draft_quant.core.speculative import parse_speculative_config

    if spec:
        parsed = parse_speculative_config(spec)
        if isinstance(parsed.get("model"), str):
            return str(parsed["model"])
    return model


def mapping_origin(profile: DrafterProfile) -> str:
    """Which mapping the plan used: a hand profile's file, or the one learned from vLLM."""
    from vllm_draft_quant.profiles import FAMILY_MODULES

    if not profile.target_architectures and profile.notes.startswith("learned"):
        return f"mapping: {profile.notes} (no hand profile)"
    module = next((m.__name__ for m in FAMILY_MODULES if profile in m.PROFILES), "?")
    return f"mapping: hand profile {module.replace('.', '/')}.py"


def overrides_path(args: argparse.Namespace) -> tuple[str | None, str]:
    """The overrides file vLLM would read, and where its name came from: ``--overrides``
    wins over ``VLLM_DRAFT_QUANT_OVERRIDES`` (the variable every vLLM process reads)."""
    if getattr(args, "overrides", None):
        return args.overrides, "--overrides"
    env = os.environ.get(ENV_OVERRIDES) or None
    return env, ENV_OVERRIDES


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from vllm_draft_quant.checkpoint.facts import plan_from_facts
    from vllm_draft_quant.checkpoint.overrides_file import load_overrides
    from vllm_draft_quant.core.resolver import strict_error

    out = out or sys.stdout
    path, origin = overrides_path(args)
    overrides = load_overrides(path) if path else None
    facts, source = _facts(args)
    plan = plan_from_facts(facts, mode=args.mode, overrides=overrides, raise_conflicts=False)
    said = f"overrides: {path} (from {origin})" if path else ""
    if args.json:
        if said:
            sys.stderr.write(f"note: {said}\n")
        if facts.profile.notes.startswith("learned"):
            sys.stderr.write(mapping_origin(facts.profile) + "\n")
        out.write(json_document("plan", plan.model_dump(mode="json")) + "\n")
    else:
        if said:
            out.write(said + "\n")
        render(facts, plan, out, source, verbose=getattr(args, "verbose", False))
    if plan.mode == "strict" and plan.conflicts:
        raise ConflictError(strict_error(plan, str(facts.model_dir)))
    return 1 if plan.conflicts else 0


def _layer_lines(facts: CheckpointFacts, plan: Plan) -> list[str]:
    """Where each draft layer that has modules sits (checkpoint and runtime names)."""
    used = {d.layer for d in plan.modules}
    out = []
    for layer in facts.names.layers:
        if layer.k in used:
            line = f"layer {layer.k} = checkpoint {layer.checkpoint_root}"
            if layer.runtime_root != layer.checkpoint_root:
                line += f", runtime {layer.runtime_root}"
            out.append(line)
    return out


def _short(facts: CheckpointFacts, d: ModuleDecision) -> str:
    """The module's name relative to its draft layer (full prefix for shared modules)."""
    if d.layer is None:
        return d.module
    for layer in facts.names.layers:
        if layer.k == d.layer:
            return d.module.removeprefix(layer.runtime_root + ".")
    return d.module


def _origin(source: DraftSource) -> str:
    """Where the drafter's weights are read from, as the header says it."""
    if source.separate:
        return (f"draft weights from {source.draft_dir} (speculative_config.model), not from "
                f"the target {source.target_dir}:\n  planned from that checkpoint's own "
                "tensors and config; the target's quantization config is not used for it")
    return f"draft weights from the target's own folder {source.target_dir}"


def _files(facts: CheckpointFacts, d: ModuleDecision, label: str) -> str:
    shards = sorted({facts.files.shard_of(t) for t in d.checkpoint_tensors})
    return f"{label}:{','.join(shards)}" if shards else "-"


def _causes(plan: Plan) -> tuple[dict[str, int], dict[str, list[Conflict]]]:
    """(cause -> its number, module -> its conflicts): each root cause numbered once."""
    numbers: dict[str, int] = {}
    per_module: dict[str, list[Conflict]] = {}
    for c in plan.conflicts:
        numbers.setdefault(c.cause or c.message, len(numbers) + 1)
        per_module.setdefault(c.module, []).append(c)
    return numbers, per_module


def render(facts: CheckpointFacts, plan: Plan, out: TextIO,
           source: DraftSource | None = None, *, verbose: bool = False) -> None:
    """The human table: one row per draft module, each conflict's cause once below it.

    With a ``source`` (``--speculative-config``) the header names the checkpoint the
    drafter loads from and a FROM column gives each module's file in it.
    """
    numbers, per_module = _causes(plan)
    out.write(f"{plan.drafter} draft plan ({plan.mode} mode): {facts.model_dir}\n")
    out.write(mapping_origin(facts.profile) + "\n")
    if source is not None:
        out.write(_origin(source) + "\n")
    for line in _layer_lines(facts, plan):
        out.write(line + "\n")
    heads: tuple[str, ...] = ("LAYER", "MODULE", "STORED", "DECIDED", "SOURCE")
    label = "draft" if source is not None and source.separate else "target"
    if source is not None:
        heads += ("FROM",)
    rows: list[tuple[str, ...]] = []
    for d in plan.modules:
        row: tuple[str, ...] = ("-" if d.layer is None else str(d.layer), _short(facts, d),
               d.stored_label,
               d.decided_label, d.source)
        rows.append(row + ((_files(facts, d, label),) if source is not None else ()))
    if rows:
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        out.write("\n" + "  ".join(h.ljust(w) for h, w in zip(
            heads, widths, strict=True)).rstrip() + "\n")
    for d, row in zip(plan.modules, rows, strict=True):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
        mine = per_module.get(d.module, [])
        refs = ",".join(str(numbers[c.cause or c.message]) for c in mine)
        if mine and all(c.handled for c in mine):
            line += f"  handled [{refs}]"
        elif mine:
            line = highlight(line + f"  CONFLICT [{refs}]", out)
        out.write(line.rstrip() + "\n")
        if verbose:
            out.write(wrap(f"why: {d.reason}", "      ", "        ") + "\n")
            for c in mine:
                out.write(wrap(f"conflict: {c.message}", "      ", "        ") + "\n")
    if not plan.modules:
        out.write("\n(no draft modules found)\n")
    _write_causes(plan, numbers, out)
    for w in plan.warnings:
        out.write(highlight(wrap(f"warning: {w}", "", "  "), out, code="1;33") + "\n")
    out.write("\n" + wrap(plan.summary(), "", "  ") + "\n")
    if plan.conflicts and facts.profile.hidden_layers_from == "draft":  # fix knows MTP folders
        out.write(_fix_hint(facts.model_dir) + "\n")


def _write_causes(plan: Plan, numbers: dict[str, int], out: TextIO) -> None:
    if not numbers:
        return
    count: dict[str, int] = {}
    handled: dict[str, bool] = {}
    for c in plan.conflicts:
        key = c.cause or c.message
        count[key] = count.get(key, 0) + 1
        handled[key] = handled.get(key, True) and c.handled
    out.write("\n")
    for cause, n in numbers.items():
        many = f"{count[cause]} modules" if count[cause] > 1 else "1 module"
        if handled[cause]:
            text = f"[{n}] handled ({many}, built as stored): {cause}"
            out.write(wrap(text, "", "    ") + "\n")
        else:
            text = f"[{n}] conflict ({many}): {cause}"
            out.write(highlight(wrap(text, "", "    "), out) + "\n")


def _fix_hint(folder: Path) -> str:
    if is_hub_snapshot(folder):
        return ("To make the config truthful, fix a local copy (the cache snapshot stays as "
                f"downloaded):\n  {local_copy_command(folder)}\n  then: vllm-draft-quant fix "
                "<that folder> --write\n(with the plugin installed, vLLM already follows the "
                "stored tensors)")
    return (f"To make the config truthful: vllm-draft-quant fix {folder}\n"
            "(with the plugin installed, vLLM already follows the stored tensors)")
