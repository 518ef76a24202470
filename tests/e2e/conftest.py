"""End-to-end tier: speculative decoding generates on vLLM's CPU platform.

Every test here is marked ``e2e`` (``pytest -m e2e`` runs the tier, ``-m "not e2e"``
everything else) and runs after every other tier: ``tests/conftest.py`` marks and orders
the items before ``-m`` deselects. The engines of the whole tier run in
one long-lived subprocess (``engine_runner.py``, started by the session fixture
``generation``), with the CPU stand-ins of ``vllm_draft_quant/demo/cpu_forward.py``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")


@pytest.fixture(scope="session")
def e2e_root() -> Path:
    """Where the tier's checkpoints, engine log and drafter probes are written."""
    return Path(tempfile.mkdtemp(prefix="vdq-e2e-"))


@pytest.fixture(scope="session")
def server_launch(e2e_root: Path, request: pytest.FixtureRequest) -> Any:
    """The tier's ``vllm serve`` (``serving.py``), started once, stopped at session end."""
    import serving

    server = serving.start(e2e_root / "serve")
    request.addfinalizer(server.stop)
    return server


@pytest.fixture(scope="session")
def generation(e2e_root: Path, request: pytest.FixtureRequest) -> dict[str, Any]:
    """``{run name: result}`` of every case of ``cases.py`` (one engine process)."""
    import cases

    if any(str(i.path).endswith("test_serve.py") for i in request.session.items):
        request.getfixturevalue("server_launch")  # starts beside the engine process

    root = e2e_root
    got = cases.run([*cases.CASES, *cases.CONTROLS], root)
    if not got:
        log = (root / "engine_runner.log").read_text()[-4000:]
        pytest.fail(f"the e2e engine process produced no result; its log ends:\n{log}")
    return got
