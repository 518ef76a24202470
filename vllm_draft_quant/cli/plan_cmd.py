"""``plan MODEL``: the precision every draft module will be built with, and why."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, TextIO

from vllm_draft_quant.cli._output import highlight
from vllm_draft_quant.cli.fix import note
from vllm_draft_quant.core.overrides import ENV_OVERRIDES

if TYPE_CHECKING:  # the rest is imported when the command runs (a fast --help)
    from vllm_draft_quant.checkpoint.facts import CheckpointFacts
    from vllm_draft_quant.checkpoint.speculative import DraftSource
    from vllm_draft_quant.core.plan import ModuleDecision, Plan

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "overrides_path", "render", "run"]

HELP = "explain the plan for a checkpoint's draft layers"
DESCRIPTION = """\
Show, per draft layer, each module vLLM builds for the drafter: how its tensors are
stored, the precision it will be built with, and which rule or evidence decided.
Conflicts between the quantization config and the stored tensors are highlighted.
Exit code 1 when there are conflicts (in strict mode a conflict is an error).

With --speculative-config (the same JSON as vLLM's flag), MODEL is the target and the
plan is the one of the drafter that config loads: from the draft checkpoint named by
"model" when it is another folder (its own tensors and config, never the target's
quantization config), e.g. MTP layers from a BF16 original next to a quantized target,
or an EAGLE3 draft. The table then says which checkpoint folder and file each draft
module's weights are read from (--json prints the plan JSON unchanged)."""
EXAMPLES = """\
  vllm-draft-quant plan /models/Step-3.7-Flash-NVFP4
  vllm-draft-quant plan stepfun-ai/Step-3.7-Flash-NVFP4 --json > plan.json
  vllm-draft-quant plan ./ckpt --mode strict
  vllm-draft-quant plan ./ckpt --overrides overrides.yaml --drafter Step3p5MTP
  vllm-draft-quant plan /models/Qwen3-Next-NVFP4 \\
      --speculative-config '{"method": "mtp", "model": "/models/Qwen3-Next-BF16"}'
  vllm-draft-quant plan /models/Llama-3.1-8B-Instruct \\
      --speculative-config '{"method": "eagle3", "model": "/models/EAGLE3-LLaMA3.1-8B"}'"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="model folder, or a Hugging Face repo id in the local cache")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--mode", choices=("auto", "strict"), default="auto",
                   help="auto: the stored tensors win (default); strict: a conflict is an error")
    p.add_argument("--overrides", metavar="FILE",
                   help="JSON/YAML file of per-module schemes (default: the file named by "
                        "VLLM_DRAFT_QUANT_OVERRIDES, which vLLM reads too)")
    p.add_argument("--drafter", metavar="ARCH",
                   help="force the vLLM draft architecture (e.g. Step3p5MTP)")
    p.add_argument("--speculative-config", metavar="JSON",
                   help="vLLM's speculative config (same JSON as its flag); MODEL is then the "
                        "target and the draft is planned from the checkpoint it names")


def overrides_path(args: argparse.Namespace) -> tuple[str | None, str]:
    """The overrides file vLLM would read, and where its name came from: ``--overrides``
    wins over ``VLLM_DRAFT_QUANT_OVERRIDES`` (the variable every vLLM process reads)."""
    if getattr(args, "overrides", None):
        return args.overrides, "--overrides"
    env = os.environ.get(ENV_OVERRIDES) or None
    return env, ENV_OVERRIDES


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
    from vllm_draft_quant.checkpoint.locate import locate_model
    from vllm_draft_quant.checkpoint.overrides_file import load_overrides
    from vllm_draft_quant.checkpoint.speculative import draft_source
    from vllm_draft_quant.repair.writer import settle

    out = out or sys.stdout
    path, origin = overrides_path(args)
    overrides = load_overrides(path) if path else None
    source: DraftSource | None = None
    if getattr(args, "speculative_config", None) is not None:
        source = draft_source(args.model, args.speculative_config)
        for folder in dict.fromkeys((source.target_dir, source.draft_dir)):
            note(settle(folder))
        facts = load_facts(source.draft_dir, drafter=args.drafter or source.drafter,
                           target_layers=source.target_layers)
    else:
        note(settle(locate_model(args.model)))
        facts = load_facts(args.model, drafter=args.drafter)
    plan = plan_from_facts(facts, mode=args.mode, overrides=overrides)
    said = f"overrides: {path} (from {origin})" if path else ""
    if args.json:
        if said:
            sys.stderr.write(f"note: {said}\n")
        out.write(plan.to_json() + "\n")
    else:
        if said:
            out.write(said + "\n")
        render(facts, plan, out, source)
    return 1 if plan.conflicts else 0


def _group(facts: CheckpointFacts, plan: Plan) -> list[tuple[str, str, list[ModuleDecision]]]:
    """(title, runtime root to strip, decisions) per draft layer, then shared modules."""
    groups: dict[int | None, list[ModuleDecision]] = {}
    for d in plan.modules:
        rm = facts.names.module(d.module)
        groups.setdefault(rm.layer.k if rm and rm.layer else None, []).append(d)
    out = []
    for layer in facts.names.layers:
        if layer.k in groups:
            title = f"draft layer {layer.k}: checkpoint {layer.checkpoint_root}"
            if layer.runtime_root != layer.checkpoint_root:
                title += f", runtime {layer.runtime_root}"
            out.append((title, layer.runtime_root + ".", groups[layer.k]))
    if None in groups:
        out.append(("modules shared by all draft layers", "", groups[None]))
    return out


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


def render(facts: CheckpointFacts, plan: Plan, out: TextIO,
           source: DraftSource | None = None) -> None:
    """The human table: one block per draft layer, conflicts highlighted, a summary line.

    With a ``source`` (``--speculative-config``) the header names the checkpoint the
    drafter loads from and a FROM column gives each module's file in it.
    """
    by_module: dict[str, list[str]] = {}
    for c in plan.conflicts:
        by_module.setdefault(c.module, []).append(c.message)
    out.write(f"{plan.drafter} ({plan.mode} mode) for {facts.model_dir}\n")
    heads: tuple[str, ...] = ("MODULE", "STORED", "DECISION", "SOURCE")
    if source is not None:
        out.write(_origin(source) + "\n")
        heads += ("FROM",)
        label = "draft" if source.separate else "target"
    for title, strip, decisions in _group(facts, plan):
        rows = [(d.module.removeprefix(strip), d.stored.value, d.scheme.value, d.source)
                + ((_files(facts, d, label),) if source is not None else ())
                for d in decisions]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(heads)]
        out.write(f"\n{title}\n")
        out.write("  " + "  ".join(h.ljust(w) for h, w in zip(
            heads, widths, strict=True)).rstrip() + "\n")
        for d, row in zip(decisions, rows, strict=True):
            line = "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
            if d.module in by_module:
                line = highlight(line + "  CONFLICT", out)
            out.write(line.rstrip() + "\n")
            out.write(f"      why: {d.reason}\n")
            for msg in by_module.get(d.module, []):
                out.write(highlight(f"      conflict: {msg}", out) + "\n")
    if not plan.modules:
        out.write("\n(no draft modules found)\n")
    out.write("\n" + plan.summary() + "\n")
    if plan.conflicts and facts.profile.hidden_layers_from == "draft":  # fix knows MTP folders
        out.write(f"To make the config truthful: vllm-draft-quant fix {facts.model_dir} "
                  "(with the plugin installed, vLLM already follows the stored tensors)\n")
