"""What a cold start imports: the CLI's --version/--help, vLLM's plugin register(), and
a whole ``graft`` / ``fix`` run.

vLLM imports the plugin in every process it starts, and users wait for the CLI's
--help, so neither may import pydantic (most of a cold start), yaml, numpy,
safetensors, torch or vllm. ``graft`` is measured against ``cp`` (its start-up is
part of its time, `benchmarks/bench_graft.py`), so a graft or fix run imports none of
them either, nor the pydantic plan model, nor the ``email`` package that
``importlib.metadata`` pulls in. Each case runs in a fresh interpreter and lists
sys.modules; the CLI's own modules are pinned exactly.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pydantic", "pydantic_core", "yaml", "numpy", "safetensors", "torch", "vllm")
#: the project's modules that make a plan or a fix (and pull in pydantic): never at start-up
PLANNING = ("vllm_draft_quant.core.plan", "vllm_draft_quant.core.resolver",
            "vllm_draft_quant.core.overrides_model", "vllm_draft_quant.repair.fixer",
            "vllm_draft_quant.repair.graft", "vllm_draft_quant.checkpoint.planner",
            "vllm_draft_quant.adapter")


def _modules(code: str, env: dict[str, str] | None = None,
             heavy: tuple[str, ...] = HEAVY) -> tuple[list[str], list[str]]:
    """(``heavy`` top-level packages, vllm_draft_quant modules) imported by ``code``."""
    probe = (code + "\nimport json, sys\nmods = sorted(sys.modules)\n"
             f"print(json.dumps([sorted({{m.split('.')[0] for m in mods}} & set({heavy!r})),"
             " [m for m in mods if m.split('.')[0] == 'vllm_draft_quant']]))\n")
    run_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=ROOT, env=run_env).stdout
    heavy, ours = json.loads(out.strip().splitlines()[-1])
    return heavy, ours


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["fix", "--help"],
                                  ["graft", "--help"], ["plan", "--help"]])
def test_cli_help_and_version_import_only_the_cli(argv: list[str]) -> None:
    code = ("import contextlib, io\nfrom vllm_draft_quant.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            f"    main({argv!r})\n")
    heavy, ours = _modules(code)
    assert heavy == []
    assert not [m for m in ours if m.startswith(PLANNING)], ours


def test_package_import_is_light_and_the_api_still_resolves() -> None:
    heavy, ours = _modules("import vllm_draft_quant")
    assert heavy == []
    assert ours == ["vllm_draft_quant", "vllm_draft_quant._version", "vllm_draft_quant.errors"]
    heavy, _ = _modules("from vllm_draft_quant import Overrides, plan\nassert callable(plan)")
    assert "pydantic" in heavy  # imported on first use, not at package import


def test_plugin_register_imports_nothing_heavy() -> None:
    """What ``register()`` adds to a vLLM process (vLLM, torch and numpy are loaded there
    already; its logger and env registration come from vLLM itself, so they are not run
    here, where no vLLM may be imported): the settings, the supported-range check and
    the lazy loader hook. None of it may import pydantic or the planner."""
    code = ("from vllm_draft_quant.adapter import compat, patches, settings\n"
            "settings.from_env()\ncompat.check_supported()\n"
            "patches.apply_loader_patch_lazily()\n")
    heavy, ours = _modules(code, env={"VLLM_DRAFT_QUANT": "auto"})
    assert heavy == []
    assert not any(m.startswith(("vllm_draft_quant.checkpoint", "vllm_draft_quant.repair",
                                 "vllm_draft_quant.core.plan", "vllm_draft_quant.core.resolver"))
                   for m in ours), ours


#: what a graft or fix run must not import: the pydantic models and what only they,
#: ``plan``, the learner, the demo or vLLM need
NOT_FOR_REPAIR = ("vllm_draft_quant.core.plan", "vllm_draft_quant.core.overrides_model",
                  "vllm_draft_quant.core.learned", "vllm_draft_quant.checkpoint.planner",
                  "vllm_draft_quant.checkpoint.overrides_file", "vllm_draft_quant.cli._learn",
                  "vllm_draft_quant.adapter", "vllm_draft_quant.demo")


@pytest.mark.parametrize("argv", [["graft", "{target}", "--from", "{source}"],
                                  ["graft", "{target}", "--from", "{source}", "--dry-run"],
                                  ["fix", "{source}"], ["fix", "{source}", "--write"]])
def test_graft_and_fix_runs_import_nothing_heavy(tmp_path: Path, argv: list[str]) -> None:
    from _cli_support import pair

    target, source = pair(tmp_path, "deepseek_v3")
    argv = [a.format(target=target, source=source) for a in argv]
    code = ("import contextlib, io\nfrom vllm_draft_quant.cli.main import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out, "
            "contextlib.redirect_stderr(out):\n"
            f"    code = main({argv!r})\n"
            "assert code in (0, 1), out.getvalue()\n")
    heavy, ours = _modules(code, heavy=(*HEAVY, "email"))
    assert heavy == []
    assert not [m for m in ours if m.startswith(NOT_FOR_REPAIR)], ours
    assert "vllm_draft_quant.repair.graft" in ours or argv[0] == "fix"
