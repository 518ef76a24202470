"""The core imports neither vllm nor torch; the public API is explicit and sorted."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import CheckpointSpec, write_checkpoint

import vllm_draft_quant

PURE_PACKAGES = ("vllm_draft_quant.core", "vllm_draft_quant.profiles",
                 "vllm_draft_quant.checkpoint")

# Runs in a fresh interpreter: vllm and torch cannot be imported at all, then the
# whole core is imported and plan() runs on a real checkpoint folder.
_SCRIPT = textwrap.dedent(
    """
    import importlib, importlib.abc, pkgutil, sys

    BLOCKED = ("vllm", "torch")
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, f"imported before the test began (a .pth file?): {loaded}"


    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is blocked: the pure core must not import it")
            return None


    sys.meta_path.insert(0, Blocker())
    for name in BLOCKED:  # the blocker itself works
        try:
            importlib.import_module(name)
        except ImportError:
            pass
        else:
            raise SystemExit(f"blocker failed: {name} imported")

    import vllm_draft_quant
    for pkg in PACKAGES:
        mod = importlib.import_module(pkg)
        for info in pkgutil.walk_packages(mod.__path__, pkg + "."):
            importlib.import_module(info.name)
    importlib.import_module("vllm_draft_quant.errors")

    p = vllm_draft_quant.plan(sys.argv[1], mode="strict")
    assert p.modules, "empty plan"
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not leaked, leaked
    print(p.drafter, len(p.modules))
    """
)


@pytest.mark.parametrize("family", ["step3p5", "qwen3_next", "deepseek_v3"])
def test_core_runs_with_vllm_and_torch_unimportable(tmp_path: Path, family: str) -> None:
    write_checkpoint(tmp_path / "m", CheckpointSpec(family, "nvfp4", layout="d", sharded=True))
    script = f"PACKAGES = {PURE_PACKAGES!r}\n" + _SCRIPT
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-4000:]
    drafter, n = proc.stdout.split()
    assert int(n) > 0 and drafter.endswith(("MTP", "MTPModel"))


def test_blocker_catches_a_core_module_importing_vllm(tmp_path: Path) -> None:
    """The check can fail: a pure package that imports vllm makes the script exit non-zero."""
    pkg = tmp_path / "impure_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "mod.py").write_text("import vllm  # noqa: F401\n")
    write_checkpoint(tmp_path / "m", CheckpointSpec("step3p5", "nvfp4", layout="d"))
    script = "PACKAGES = ('impure_pkg',)\n" + _SCRIPT
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "vllm is blocked" in proc.stderr


# ------------------------------------------------------------------ public API
def test_all_is_sorted_unique_and_resolves() -> None:
    names = vllm_draft_quant.__all__
    assert list(names) == sorted(names)
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(vllm_draft_quant, name) is not None, name


def test_star_import_gives_exactly_all() -> None:
    ns: dict[str, object] = {}
    exec("from vllm_draft_quant import *", ns)
    assert sorted(k for k in ns if k != "__builtins__") == sorted(vllm_draft_quant.__all__)


def test_public_api_objects() -> None:
    from vllm_draft_quant.checkpoint.planner import plan

    assert vllm_draft_quant.plan is plan
    assert issubclass(vllm_draft_quant.ConflictError, vllm_draft_quant.DraftQuantError)
    for name in vllm_draft_quant.__all__:
        obj = getattr(vllm_draft_quant, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, vllm_draft_quant.DraftQuantError), name


@pytest.mark.parametrize("package", ["vllm_draft_quant.errors", *PURE_PACKAGES])
def test_every_declared_all_in_the_core_resolves(package: str) -> None:
    """(Their order is ruff's RUF022; the top-level package is plainly sorted, above.)"""
    mod = importlib.import_module(package)
    modules = [mod]
    if hasattr(mod, "__path__"):
        modules += [importlib.import_module(i.name)
                    for i in pkgutil.walk_packages(mod.__path__, package + ".")]
    for m in modules:
        names = getattr(m, "__all__", ())
        assert len(names) == len(set(names)), m.__name__
        for name in names:
            assert hasattr(m, name), f"{m.__name__}.{name}"
