"""Shared test configuration: ``tests/`` on ``sys.path``, hypothesis profiles, and the
drafter build service's session summary.

Hypothesis: ``dev`` (the default) keeps the property tests quick while editing; ``ci``
runs more examples with no per-example deadline (shared CI machines are slow and noisy).
Select one with ``HYPOTHESIS_PROFILE=ci`` (the default when ``CI`` is set) or
hypothesis' own ``--hypothesis-profile ci``. A test that sets ``max_examples`` itself
keeps its own count under either profile.

The ``fuzz``-marked tests run ``VDQ_FUZZ_EXAMPLES`` examples each
(``tests/unit/strategies.py:FUZZ_EXAMPLES``). Unless it is set, the profile decides:
``FUZZ_EXAMPLES_BY_PROFILE`` (sized so that the README's one test command, every tier,
stays within 10 minutes on a 2-core machine); ``.ci/run`` sets both variables
explicitly. A deep run: ``VDQ_FUZZ_EXAMPLES=10000 pytest -m fuzz``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# ``tests/support`` (the checkpoint factory and the drafter build service, never
# installed) is imported as ``support`` by every tier.
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Every vLLM 0.33 import starts two background Python processes that try to JIT-build
# the CUDA-only ``humming`` kernels (``humming/ops/utils.py:build_humming_launcher_in_bg``
# and its nvrtc twin): about 13 CPU-seconds per vLLM process, wasted on a machine
# without CUDA. Its own switch turns them off for every process the tests start (build
# workers, scripts, engines, servers); nothing the tests run uses those kernels.
os.environ.setdefault("HUMMING_DISABLE_PARALLEL_BUILD", "1")

settings.register_profile(
    "dev",
    max_examples=25,
    deadline=None,  # examples that write a checkpoint take ~50 ms, with jitter
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci",
    max_examples=300,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)

#: examples per fuzz test when ``VDQ_FUZZ_EXAMPLES`` is not set
FUZZ_EXAMPLES_BY_PROFILE = {"dev": 200, "ci": 500}
os.environ.setdefault("VDQ_FUZZ_EXAMPLES", str(FUZZ_EXAMPLES_BY_PROFILE.get(PROFILE, 200)))


#: per-test timeout of the e2e tier: its first test's setup runs every engine of the tier
#: (5-8 min on 2 quiet cores, more under load); pytest-timeout's default is per test
E2E_TIMEOUT = float(os.environ.get("VDQ_E2E_TIMEOUT", 1500))


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Every folder this process makes with ``tempfile`` (the build service's logs and
    per-case folders, the early builds' checkpoints, the e2e tier's engine folder) lives
    in ``scratch/`` under pytest's own basetemp, so pytest's retention removes it with
    the rest (``tmp_path_retention_policy = "failed"`` in ``pyproject.toml``: the whole
    basetemp goes after a passing run, a failing run keeps it for reading). Before,
    each run left its ``/tmp/vdq-*`` folders behind (about 50 a run, up to 370 MB each)
    until the disk filled. ``trylast``: pytest's tmpdir plugin sets the factory up first.
    Processes the tests start keep the system's temporary folder (``TMPDIR`` is not
    changed): they get their folders by path."""
    factory = getattr(config, "_tmp_path_factory", None)  # _pytest/tmpdir.py:pytest_configure
    if factory is None or hasattr(config, "workerinput"):  # tmpdir off; an xdist worker
        return
    config.stash[_SYSTEM_TEMPDIR] = tempfile.tempdir
    tempfile.tempdir = str(factory.mktemp("scratch", numbered=False))


def pytest_unconfigure(config: pytest.Config) -> None:
    if _SYSTEM_TEMPDIR in config.stash:
        tempfile.tempdir = config.stash[_SYSTEM_TEMPDIR]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish() -> None:
    """Stop the build workers before pytest removes the basetemp their folders are in."""
    harness = sys.modules.get("support.harness")
    if harness is not None:
        harness.shutdown()


_SYSTEM_TEMPDIR = pytest.StashKey[str | None]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[Any]) -> None:
    """Mark the e2e tier and set the run order: the unit tier, then the integration
    modules with nothing started early (vLLM imported in-process, a few builds on demand),
    then those whose builds and fresh processes were started right after collection
    (``EARLY_BUILDS``, ``tests/integration/conftest.py``): the workers get through that
    queue while the tests before them run, so both cores stay busy. The e2e tier goes last.

    ``tryfirst``: the ``e2e`` marker must be on the items before ``-m`` deselects
    (``_pytest/mark/__init__.py:pytest_collection_modifyitems``), or ``-m "not e2e"``
    would keep the tier and ``-m e2e`` would select nothing."""

    def order(item: Any) -> int:
        path = str(getattr(item, "path", ""))
        if "/e2e/" in path:
            return 3
        if "/integration/" not in path:
            return 0
        return 2 if hasattr(getattr(item, "module", None), "EARLY_BUILDS") else 1

    for item in items:
        if order(item) == 3:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.timeout(E2E_TIMEOUT))
    items.sort(key=order)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """How many drafters the session's build service built, and how many came from its cache."""
    harness = sys.modules.get("support.harness")
    if harness is None:
        return
    harness.shutdown()
    st = harness.stats
    if st.builds or st.cache_hits or st.isolated:
        terminalreporter.section("drafter build service")
        for line in st.lines():
            terminalreporter.write_line(line)
