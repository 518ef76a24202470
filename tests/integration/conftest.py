"""Integration tier: real vLLM on the CPU platform, every build on the session's workers.

Builds go through ``support.harness`` (a pool of long-lived worker processes, see its
docstring); ``VDQ_INTEGRATION_JOBS`` sets how many (default: 2, capped by the CPU
count). ``VLLM_TARGET_DEVICE=cpu`` is also set here for anything a test imports
in-process.

Right after collection, every selected module's ``EARLY_BUILDS`` (``{fixture: start}``, with
``start(session, root)`` writing checkpoints under ``root`` and queueing their builds) are
started, in test order, for the fixtures the selected tests use, so the workers build
while pytest runs the tests before them (``tests/conftest.py`` runs the unit tier first);
each module fixture then takes its builds with ``support.harness.early`` (or starts them
itself, e.g. when ``VDQ_EARLY_BUILDS=0``).
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
import warnings
from pathlib import Path

import pytest
from support import harness
from support.harness import pool_size

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def jobs() -> int:
    return pool_size()


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly or os.environ.get("VDQ_EARLY_BUILDS", "1") == "0":
        return
    wanted: dict[object, set[str]] = {}  # module -> the fixtures its selected tests use
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None:
            wanted.setdefault(module, set()).update(getattr(item, "fixturenames", ()))
    for module, fixtures in wanted.items():
        for name, start in getattr(module, "EARLY_BUILDS", {}).items():
            if name not in fixtures:
                continue
            root = Path(tempfile.mkdtemp(prefix=f"vdq-{module.__name__}-{name}-"))
            try:
                harness.start_early(
                    f"{module.__name__}:{name}", functools.partial(start, session, root)
                )
            except Exception as e:  # the module fixture starts them again and fails visibly
                warnings.warn(f"{module.__name__}:{name} not started early: {e!r}", stacklevel=1)
