"""The import contract: layers import only the layers before them, and nothing cycles.

    errors <- core <- profiles <- checkpoint <- repair <- cli
    adapter: core, profiles, checkpoint (only vLLM's entry point imports it)
    demo:    core, profiles, checkpoint (only ``cli.demo`` imports it)

Only ``adapter`` and ``demo`` (the CPU demonstration, run in its own subprocess) may
import vllm or torch; ``demo`` alone imports numpy. Every import counts, at module
level or inside a function. The checker reads the source with `ast` (nothing is
imported), so it also runs on a planted copy of the package: the tests below plant a
forbidden import and a cycle and show the checker catches both.
"""

from __future__ import annotations

import ast
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vllm_draft_quant"
ROOT = "vllm_draft_quant"

#: layer -> the package layers it may import (itself always allowed)
ALLOWED: dict[str, frozenset[str]] = {
    "errors": frozenset(),
    "_version": frozenset(),
    "core": frozenset({"errors"}),
    "profiles": frozenset({"errors", "core"}),
    "checkpoint": frozenset({"errors", "core", "profiles"}),
    "repair": frozenset({"errors", "core", "profiles", "checkpoint"}),
    "cli": frozenset({"errors", "core", "profiles", "checkpoint", "repair", "demo", "_version"}),
    "adapter": frozenset({"errors", "core", "profiles", "checkpoint"}),
    "demo": frozenset({"errors", "core", "profiles", "checkpoint"}),
    "__init__": frozenset({"errors", "core", "checkpoint", "_version"}),
}
#: third-party roots only some layers may import
RESTRICTED: dict[str, frozenset[str]] = {
    "vllm": frozenset({"adapter", "demo"}),
    "torch": frozenset({"adapter", "demo"}),
    "numpy": frozenset({"demo"}),
    "transformers": frozenset({"adapter", "demo"}),
}
#: importers allowed per (importer module prefix, imported layer) beyond ALLOWED's rule
ONLY_FROM: dict[str, tuple[str, ...]] = {
    "demo": ("vllm_draft_quant.cli.demo",),
    "adapter": (),
}


def _modules(root: Path) -> Iterator[tuple[str, Path]]:
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    is_pkg = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            yield target, node.lineno
            if target.split(".")[0] == ROOT:
                for alias in node.names:  # `from pkg import submodule`
                    yield f"{target}.{alias.name}", node.lineno


def violations(root: Path = PACKAGE) -> list[str]:
    """Every broken rule of the contract in the package at ``root``, one line each."""
    mods = dict(_modules(root))
    out: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for module, path in mods.items():
        layer = _layer(module)
        where = f"{path.relative_to(root.parent)}"
        for target, line in _imports(module, path):
            top = target.split(".")[0]
            if top == ROOT and target not in mods and target.rpartition(".")[0] in mods:
                continue  # `from module import name`: the module's own line counts
            if top in RESTRICTED and layer not in RESTRICTED[top]:
                out.append(f"{where}:{line}: layer {layer!r} imports {target} "
                           f"(only {sorted(RESTRICTED[top])} may)")
            if top != ROOT:
                continue
            # a package's own parents are imported before it anyway: not an edge
            if target in mods and target != module and not module.startswith(target + "."):
                graph[module].add(target)
            to = _layer(target) if target != ROOT else "__init__"
            if target == ROOT or to == layer:
                continue
            if to not in ALLOWED.get(layer, frozenset()):
                out.append(f"{where}:{line}: layer {layer!r} imports {target} "
                           f"(layer {to!r}; allowed: {sorted(ALLOWED.get(layer, ()))})")
            elif to in ONLY_FROM and not module.startswith(ONLY_FROM[to]):
                out.append(f"{where}:{line}: {module} imports {target}; only "
                           f"{list(ONLY_FROM[to]) or 'vLLM entry point'} may import {to!r}")
    out.extend(f"import cycle: {' -> '.join(c)}" for c in _cycles(graph))
    return sorted(set(out))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append([*sorted(comp), sorted(comp)[0]])

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_package_keeps_the_contract() -> None:
    assert violations() == []


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    copy = tmp_path / ROOT
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert violations(copy) == []  # the copy is clean before planting
    return copy


@pytest.mark.parametrize(
    ("file", "line", "expected"),
    [
        ("core/rules.py", "from vllm_draft_quant.checkpoint import configs", "layer 'core' imports"),
        ("core/names.py", "import vllm", "layer 'core' imports vllm"),
        ("checkpoint/index.py", "from vllm_draft_quant.repair import writer", "layer 'checkpoint'"),
        ("repair/fixer.py", "import vllm_draft_quant.adapter.compat", "layer 'repair'"),
        ("cli/main.py", "from vllm_draft_quant.adapter import register", "layer 'cli'"),
        ("checkpoint/facts.py", "from vllm_draft_quant.demo import cpu_shims", "layer 'checkpoint'"),
        ("profiles/__init__.py", "import torch", "layer 'profiles' imports torch"),
    ],
)
def test_a_planted_forbidden_import_fails(planted: Path, file: str, line: str, expected: str) -> None:
    path = planted / file
    path.write_text(path.read_text() + f"\n{line}\n")
    found = violations(planted)
    assert any(expected in v and file in v for v in found), found


def test_a_planted_cycle_fails(planted: Path) -> None:
    path = planted / "core" / "schemes.py"
    path.write_text(path.read_text() + "\nfrom vllm_draft_quant.core import plan\n")
    found = violations(planted)
    assert any(v.startswith("import cycle:") and "vllm_draft_quant.core.schemes" in v
               for v in found), found
