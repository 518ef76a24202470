"""``env``: what is installed and in force, for bug reports (like ``vllm collect-env``,
``hf env``). Versions come from package metadata: vllm and torch are never imported."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any, TextIO

from vllm_draft_quant._version import __version__
from vllm_draft_quant.cli._output import dist_version
from vllm_draft_quant.core import settings
from vllm_draft_quant.core.vllm_range import SUPPORTED_VLLM, bounds
from vllm_draft_quant.errors import DraftQuantError

__all__ = ["DESCRIPTION", "EXAMPLES", "HELP", "add_arguments", "collect", "run"]

HELP = "show versions, the vLLM plugin registration and the settings in force"
DESCRIPTION = """\
Print what a bug report needs: the versions of vllm-draft-quant, vLLM, torch,
huggingface_hub and Python (from package metadata, nothing is imported), the vLLM
range this release supports, whether vLLM will load the plugin (its
vllm.general_plugins entry point, and VLLM_PLUGINS), and the plugin's settings."""
EXAMPLES = """\
  vllm-draft-quant env
  vllm-draft-quant env --json"""

ENTRY_POINT_GROUP = "vllm.general_plugins"
ENTRY_POINT_VALUE = "vllm_draft_quant.adapter:register"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the same facts as JSON")


def _release(v: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        rel = Version(v).release[:3]
    except InvalidVersion:
        return (0, 0, 0)
    return rel + (0,) * (3 - len(rel))


def collect() -> dict[str, Any]:
    from importlib import metadata  # not at start-up: it imports the email package

    vllm = dist_version("vllm")
    low, below = bounds()
    names = [ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)
             if ep.value == ENTRY_POINT_VALUE]
    allowed = os.environ.get("VLLM_PLUGINS")
    allow_list = None if allowed is None else allowed.split(",")
    enabled = bool(names) and (allow_list is None or any(n in allow_list for n in names))
    try:
        mode = settings.from_env().mode
    except DraftQuantError as e:
        mode = f"invalid ({e})"
    return {
        "vllm_draft_quant": __version__,
        "vllm": vllm,
        "torch": dist_version("torch"),
        "huggingface_hub": dist_version("huggingface_hub"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "supported_vllm": SUPPORTED_VLLM,
        "vllm_supported": vllm is not None and low <= _release(vllm) < below,
        "entry_point": {"group": ENTRY_POINT_GROUP, "names": names,
                        "registered": bool(names), "VLLM_PLUGINS": allowed,
                        "enabled": enabled},
        "settings": {name: os.environ.get(name) for name in settings.ENV_VARS},
        "mode": mode,
        "other_env": {k: os.environ.get(k) for k in (
            "VLLM_LOGGING_LEVEL", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME",
            "HF_HUB_OFFLINE")},
    }


def run(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    info = collect()
    if args.json:
        out.write(json.dumps(info, indent=2) + "\n")
        return 0
    ep = info["entry_point"]
    if not ep["registered"]:
        plugin = (f"NOT registered (no {ENTRY_POINT_GROUP} entry point {ENTRY_POINT_VALUE}); "
                  "reinstall: pip install vllm-draft-quant")
    elif not ep["enabled"]:
        plugin = (f"registered as {ep['names'][0]!r} but NOT enabled: VLLM_PLUGINS="
                  f"{ep['VLLM_PLUGINS']!r} does not name it (add {ep['names'][0]}, or unset it)")
    else:
        why = "VLLM_PLUGINS unset: all plugins load" if ep["VLLM_PLUGINS"] is None else \
            f"VLLM_PLUGINS={ep['VLLM_PLUGINS']!r} names it"
        plugin = f"registered as {ep['names'][0]!r} and enabled ({why})"
    support = "in range" if info["vllm_supported"] else (
        "NOT in range: the plugin stands aside" if info["vllm"] else "not installed")
    rows = [
        ("vllm-draft-quant", info["vllm_draft_quant"]),
        ("vLLM", f"{info['vllm'] or 'not installed'} (supported {SUPPORTED_VLLM}: {support})"),
        ("torch", info["torch"] or "not installed"),
        ("huggingface_hub", info["huggingface_hub"] or "not installed"),
        ("Python", f"{info['python']} on {info['platform']}"),
        ("vLLM plugin", plugin),
        ("mode", f"{info['mode']} ({settings.ENV_MODE})"),
    ]
    rows += [(name, value if value is not None else "(unset)")
             for name, value in {**info["settings"], **info["other_env"]}.items()]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        out.write(f"{k.ljust(width)}  {v}\n")
    return 0
