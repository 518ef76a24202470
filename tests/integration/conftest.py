"""Integration tier: real vLLM on the CPU platform, every build on the session's workers.

Builds go through ``support.harness`` (a pool of long-lived worker processes, see its
docstring); ``VDQ_INTEGRATION_JOBS`` sets how many (default: 2, capped by the CPU
count). ``VLLM_TARGET_DEVICE=cpu`` is also set here for anything a test imports
in-process.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from support.harness import pool_size

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def jobs() -> int:
    return pool_size()
