"""The plugin activates and applies the plan in a worker process started as vLLM starts them."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

import pytest
from support import CheckpointSpec, write_checkpoint
from support.harness import early_fixture, run_aside, worker_env

pytestmark = pytest.mark.integration


def start_spawned(
    session: pytest.Session, root: Path
) -> Callable[[], Future[subprocess.CompletedProcess[str]]]:
    """Run ``_spawn_worker.py`` on a Step-3.5 checkpoint, beside the build workers."""
    ckpt = write_checkpoint(root / "ckpt", CheckpointSpec("step3p5", "nvfp4", layout="a"))
    run = run_aside(
        subprocess.run,
        [sys.executable, str(Path(__file__).with_name("_spawn_worker.py")), str(ckpt.path)],
        env=worker_env(plugin=True),
        capture_output=True,
        text=True,
        timeout=900,
    )
    return lambda: run


spawned = early_fixture(start_spawned)


def test_spawned_worker_loads_the_drafter_with_the_same_plan(
    spawned: Future[subprocess.CompletedProcess[str]],
) -> None:
    out = spawned.result()
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout.strip().splitlines()[-1])
    assert r["start_method"] == "spawn"
    assert r["ok"], r.get("error")
    assert r["hooked_before_plugins"] is False
    # load_general_plugins() installed P1 (the layer patches come with the first drafter)
    assert r["hooked_after_plugins"] == ["P1 BaseModelLoader.load_model"]
    assert r["plan_digests"] == [r["parent_digest"]]
    assert r["modules"]["model.layers.2.mtp_block.mlp.gate_up_proj"] == "UnquantizedLinearMethod"
