"""Integration tier: real vLLM on the CPU platform, each build in a worker subprocess.

The workers get ``VLLM_TARGET_DEVICE=cpu`` from the harness; it is also set here
for anything a test imports in-process. ``VDQ_INTEGRATION_JOBS`` sets how many
worker processes run at once (default: 2, capped by the CPU count).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def integration_jobs() -> int:
    return max(1, int(os.environ.get("VDQ_INTEGRATION_JOBS", min(2, os.cpu_count() or 1))))


@pytest.fixture(scope="session")
def jobs() -> int:
    return integration_jobs()
