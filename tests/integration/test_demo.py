"""``vllm-draft-quant demo`` end to end, as a user runs it: the command in a fresh Python,
its own two vLLM processes (``vllm_draft_quant.demo.launcher``), plugin off then on, on
its embedded checkpoint. Started right after collection, beside the build workers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest
from support.harness import early_fixture, run_aside

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = "from vllm_draft_quant.cli.main import main; raise SystemExit(main(['demo']))"


def start_demo(
    session: pytest.Session, root: Path
) -> Callable[[], Future[subprocess.CompletedProcess[str]]]:
    run = run_aside(
        subprocess.run, [sys.executable, "-c", DEMO], capture_output=True, text=True, timeout=900
    )
    return lambda: run


demo = early_fixture(start_demo)


def test_demo(demo: Future[subprocess.CompletedProcess[str]]) -> None:
    done = demo.result()
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "AssertionError" in out and "mtp_block.mlp.gate_up_proj" in out  # plugin off
    on = out.split("3. With vllm-draft-quant (plugin on)", 1)[1]
    assert "loaded; draft modules" in on and "UnquantizedLinearMethod" in on
