"""Shared test configuration: hypothesis settings profiles.

``dev`` (the default) keeps the property tests quick while editing; ``ci`` runs
more examples with no per-example deadline (shared CI machines are slow and
noisy). Select one with ``HYPOTHESIS_PROFILE=ci`` (the default when ``CI`` is set,
as in ``.ci/run``) or hypothesis'
own ``--hypothesis-profile ci``. A test that sets ``max_examples`` itself keeps
its own count under either profile.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings

# ``tests/support`` (the checkpoint factory and the drafter build service, never
# installed) is imported as ``support`` by every tier.
sys.path.insert(0, str(Path(__file__).resolve().parent))

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
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


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
