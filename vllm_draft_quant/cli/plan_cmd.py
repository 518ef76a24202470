"""``plan MODEL``: the precision every draft module will be built with, and why."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from vllm_draft_quant.cli._output import highlight
from vllm_draft_quant.core.overrides import load_overrides
from vllm_draft_quant.core.plan import ModuleDecision, Plan
from vllm_draft_quant.core.resolver import CheckpointFacts, load_facts, plan_from_facts

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "render", "run"]

HELP = "explain the plan for a checkpoint's draft layers"
DESCRIPTION = """\
Show, per draft layer, each module vLLM builds for the drafter: how its tensors are
stored, the precision it will be built with, and which rule or evidence decided.
Conflicts between the quantization config and the stored tensors are highlighted.
Exit code 1 when there are conflicts (in strict mode a conflict is an error)."""
EXAMPLES = """\
  vllm-draft-quant plan /models/Step-3.7-Flash-NVFP4
  vllm-draft-quant plan stepfun-ai/Step-3.7-Flash-NVFP4 --json > plan.json
  vllm-draft-quant plan ./ckpt --mode strict
  vllm-draft-quant plan ./ckpt --overrides overrides.yaml --drafter Step3p5MTP"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", metavar="MODEL",
                   help="model folder, or a Hugging Face repo id in the local cache")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--mode", choices=("auto", "strict"), default="auto",
                   help="auto: the stored tensors win (default); strict: a conflict is an error")
    p.add_argument("--overrides", metavar="FILE", help="JSON/YAML file of per-module schemes")
    p.add_argument("--drafter", metavar="ARCH",
                   help="force the vLLM draft architecture (e.g. Step3p5MTP)")


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    overrides = load_overrides(args.overrides) if args.overrides else None
    facts = load_facts(args.model, drafter=args.drafter)
    plan = plan_from_facts(facts, mode=args.mode, overrides=overrides)
    if args.json:
        out.write(plan.to_json() + "\n")
    else:
        render(facts, plan, out)
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


def render(facts: CheckpointFacts, plan: Plan, out: TextIO) -> None:
    """The human table: one block per draft layer, conflicts highlighted, a summary line."""
    by_module: dict[str, list[str]] = {}
    for c in plan.conflicts:
        by_module.setdefault(c.module, []).append(c.message)
    out.write(f"{plan.drafter} ({plan.mode} mode) for {facts.model_dir}\n")
    for title, strip, decisions in _group(facts, plan):
        rows = [(d.module.removeprefix(strip), d.stored or "-", d.scheme.value, d.source)
                for d in decisions]
        widths = [max(len(h), *(len(r[i]) for r in rows))
                  for i, h in enumerate(("MODULE", "STORED", "DECISION", "SOURCE"))]
        out.write(f"\n{title}\n")
        out.write("  " + "  ".join(h.ljust(w) for h, w in zip(
            ("MODULE", "STORED", "DECISION", "SOURCE"), widths, strict=True)).rstrip() + "\n")
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
    if plan.conflicts:
        out.write(f"To make the config truthful: vllm-draft-quant fix {facts.model_dir} "
                  "(with the plugin installed, vLLM already follows the stored tensors)\n")
