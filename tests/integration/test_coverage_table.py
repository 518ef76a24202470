"""README.md's drafter coverage table is the one the code generates from the installed vLLM.

``python -m vllm_draft_quant.adapter.coverage --check README.md``'s ``main`` (run in a
build worker, which has vLLM imported already: ``harness.call_in_worker``) regenerates the
table from vLLM's drafter registry, the profile registry and the drafters' source files
and compares it with README.md's.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support.harness import call_in_worker, run_aside

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_coverage_table_is_current() -> None:
    code, printed = run_aside(
        call_in_worker,
        "vllm_draft_quant.adapter.coverage:main",
        ["--check", str(README)],
        timeout=1100,
    ).result()
    assert code == 0, printed


def test_profiles_not_built_are_the_prefix_tests_static_only() -> None:
    """The table says "checked against the source only" for exactly the profiles the
    prefix test does not build."""
    from test_profile_prefixes import STATIC_ONLY

    from vllm_draft_quant.adapter.coverage import PROFILES_NOT_BUILT

    assert set(PROFILES_NOT_BUILT) == set(STATIC_ONLY)


def test_rows_built_by_the_prefix_test_name_an_architecture_it_builds() -> None:
    """A row may say "built by test_profile_prefixes" only if that test builds one of the
    row's draft architectures (an alias in a profile is not built by it)."""
    import re

    from test_profile_prefixes import CASES

    built = {arch for arch, _ in CASES}
    text = README.read_text()
    table = text[text.index("<!-- coverage:start"):text.index("<!-- coverage:end")]
    claimed = [line for line in table.splitlines()
               if "built by `tests/integration/test_profile_prefixes.py` and held" in line]
    assert claimed
    for line in claimed:
        names = set(re.findall(r"`([^`]+)`", line.split(" | ")[1]))
        assert names & built, line[:160]
