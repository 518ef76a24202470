"""``demo``: the bug and the fix on a tiny Step-3.7-Flash-shaped NVFP4 checkpoint.

Writes the checkpoint with `vllm_draft_quant.demo` (numpy only, no download), prints
its plan, then builds the drafter through real vLLM on the CPU twice (each in its own
process, via `vllm_draft_quant.demo.build_drafter`): with the plugin off, stock vLLM's
error in one line; with it on, the loaded draft modules and their formats. The
`vllm_draft_quant.demo` package is imported only here, inside functions.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from vllm_draft_quant.errors import DraftQuantError

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "run", "write_demo_checkpoint"]

HELP = "show the bug and the fix on a tiny NVFP4 model (real vLLM on CPU)"
DESCRIPTION = """\
Write a tiny Step-3.7-Flash-shaped NVFP4 checkpoint whose MTP block was grafted in
BF16 (its own shard, exclusions that do not mention it: the reported bug), print its
plan, then load the drafter through real vLLM on the CPU twice: plugin off (stock
vLLM's error) and plugin on (the draft modules, each in its stored format)."""
EXAMPLES = """\
  vllm-draft-quant demo
  vllm-draft-quant demo --keep ./demo-ckpt     # keep the checkpoint to try plan/fix on"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep", metavar="DIR",
                   help="write the checkpoint into DIR and keep it (default: a temp folder)")


def write_demo_checkpoint(folder: Path) -> Path:
    """The demo checkpoint: Step-3.5/3.7 NVFP4, BF16 MTP in its own shard, layout 'a'."""
    path: Path = _demo_package().write_demo_checkpoint(folder)
    return path


def _demo_package() -> Any:
    try:
        return importlib.import_module("vllm_draft_quant.demo")
    except ImportError as e:
        raise DraftQuantError(
            f"the demo needs vllm_draft_quant.demo ({e}); reinstall vllm-draft-quant"
        ) from e


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    demo = _demo_package()
    if args.keep:
        return _demo(Path(args.keep), demo, out)
    with tempfile.TemporaryDirectory(prefix="vllm-draft-quant-demo-") as tmp:
        return _demo(Path(tmp) / "step3p7-flash-nvfp4-tiny", demo, out)


def _demo(folder: Path, demo: Any, out: TextIO) -> int:
    model = demo.write_demo_checkpoint(folder)
    out.write(f"1. A tiny Step-3.7-Flash-shaped NVFP4 checkpoint with a grafted BF16 MTP block: "
              f"{model}\n\n")
    from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
    from vllm_draft_quant.cli.plan_cmd import render

    facts = load_facts(model)
    render(facts, plan_from_facts(facts), out)
    out.write("\n2. Stock vLLM (plugin off) loads the drafter on the CPU...\n")
    out.flush()
    off = demo.build_drafter(model, plugin=False)
    if off.ok:
        out.write("   it loaded (unexpected for this vLLM version)\n")
    else:
        out.write(f"   {off.error_type}: {_first_line(off.error_message)}\n")
    out.write("\n3. With vllm-draft-quant (plugin on)...\n")
    out.flush()
    on = demo.build_drafter(model, plugin=True)
    if not on.ok:
        out.write(f"   failed: {on.error_type}: {_first_line(on.error_message)}\n")
        return 1
    out.write("   loaded; draft modules and their formats:\n")
    for prefix, module in sorted(on.modules.items()):
        name = prefix.split("#", 1)[0] or _get(module, "module_path") or "(no prefix)"
        out.write(f"   {name:<48} {_describe(module)}\n")
    return 0


def _first_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)


def _describe(module: Any) -> str:
    """``QuantMethod: weight uint8[256, 64], weight_scale float8_e4m3fn[...]``."""
    params = _get(module, "params") or {}
    parts = []
    for name, p in sorted(params.items()):
        shape = _get(p, "shape") or ()
        parts.append(f"{name} {_get(p, 'dtype')}[{', '.join(map(str, shape))}]")
    method = _get(module, "quant_method") or "-"
    return f"{method}: {', '.join(parts)}"
