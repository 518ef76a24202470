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

from hypothesis import HealthCheck, settings

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
