"""README.md's drafter coverage table is the one the code generates from the installed vLLM.

``python -m vllm_draft_quant.adapter.coverage --check README.md`` (in its own process,
beside the build workers) regenerates the table from vLLM's drafter registry, the profile
registry and the drafters' source files and compares it with README.md's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.harness import run_aside, worker_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

README = Path(__file__).resolve().parents[2] / "README.md"


def _check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vllm_draft_quant.adapter.coverage", "--check", str(README)],
        env=worker_env(True), capture_output=True, text=True, timeout=1100, check=False)


def test_readme_coverage_table_is_current() -> None:
    proc = run_aside(_check).result()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_profiles_not_built_are_the_prefix_tests_static_only() -> None:
    """The table says "checked against the source only" for exactly the profiles the
    prefix test does not build."""
    from test_profile_prefixes import STATIC_ONLY

    from vllm_draft_quant.adapter.coverage import PROFILES_NOT_BUILT

    assert set(PROFILES_NOT_BUILT) == set(STATIC_ONLY)
