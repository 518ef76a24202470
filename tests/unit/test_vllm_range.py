"""The supported vLLM range is one constant, and pyproject's requirement says the same."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tomllib

from vllm_draft_quant.core.vllm_range import SUPPORTED_VLLM, bounds, measured_on

ROOT = Path(__file__).resolve().parents[2]


def test_pyproject_requires_exactly_the_supported_range() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    vllm = [d for d in deps if re.match(r"vllm\b", d)]
    assert vllm == [f"vllm{SUPPORTED_VLLM}"]


def test_bounds_and_measured_release() -> None:
    low, below = bounds()
    assert low < below
    assert measured_on() == ".".join(map(str, low))


def _version_literals(path: Path) -> list[str]:
    """String literals in code (not docstrings or comments) that name a vLLM release."""
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr)}
    low = ".".join(map(str, bounds()[0][:2]))
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and id(n) not in docs
            and re.search(rf"(?<![\d.]){re.escape(low)}(?![\d])", n.value)]


def test_the_range_is_written_only_once() -> None:
    hits = {str(p.relative_to(ROOT)): found for p in sorted((ROOT / "vllm_draft_quant").rglob("*.py"))
            if (found := _version_literals(p))}
    assert list(hits) == ["vllm_draft_quant/core/vllm_range.py"], hits
