"""The build service's own promises (``support/harness.py``), on a stand-in worker.

The stand-in speaks the worker's protocol (``vllm_draft_quant/demo/worker.py --serve``)
without vLLM, so these checks take seconds: a worker that dies or hangs costs only its
case (``WorkerDied`` / ``WorkerTimeout``) and is restarted for the next one; the cache
answers an exact repeat, with the requested folder, and a build with a dump serves one
without.
"""

from __future__ import annotations

import sys
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from support import harness
from support.harness import BuildRequest

pytestmark = pytest.mark.integration

STAND_IN = """
import json, os, sys, time
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    what = os.path.basename(req["case"]["model_dir"])
    if what == "die":
        os._exit(3)
    if what == "hang":
        time.sleep(600)
    result = {"ok": True, "timings": {"total": 0.0}, "worker_pid": os.getpid()}
    print(json.dumps({"id": req["id"], "result": result}), flush=True)
"""


def _run(pool: Any, model_dir: str, timeout: float = 30) -> tuple[str | None, Any]:
    future: Future[Any] = Future()
    pool.submit(harness._Job(0, {"model_dir": model_dir}, {}, timeout, future), 0)
    return future.result(timeout=120)


def test_a_dead_or_stuck_worker_costs_only_its_case() -> None:
    pool = harness._Pool(command=[sys.executable, "-c", STAND_IN], size=1)
    try:
        error, first = _run(pool, "/x/ok")
        assert error is None and first["ok"]
        error, message = _run(pool, "/x/die")
        assert error == "WorkerDied" and "exit 3" in message
        error, again = _run(pool, "/x/ok")  # a new worker
        assert error is None and again["worker_pid"] != first["worker_pid"]
        error, message = _run(pool, "/x/hang", timeout=1)
        assert error == "WorkerTimeout" and "killed after 1 s" in message
        error, last = _run(pool, "/x/ok")
        assert error is None and last["worker_pid"] not in (
            first["worker_pid"],
            again["worker_pid"],
        )
    finally:
        pool.shutdown()


def test_cache_key_is_the_content(tmp_path: Path) -> None:
    """Same bytes in another folder: same key; another mode, plugin setting or byte: not."""
    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        (folder / "config.json").write_text("{}")
    off = harness._case_env(False, None)
    on = harness._case_env(True, None)
    assert harness._cache_key(BuildRequest(a), off) == harness._cache_key(BuildRequest(b), off)
    assert harness._case_env(True, {"VLLM_DRAFT_QUANT": "off"}) == off
    assert harness._case_env(True, {"VLLM_DRAFT_QUANT": "auto"}) == on
    assert harness._cache_key(BuildRequest(a), off) != harness._cache_key(BuildRequest(a), on)
    assert harness._cache_key(BuildRequest(a), on) != harness._cache_key(
        BuildRequest(a, "draft"), on
    )
    (b / "config.json").write_text("{ }")
    assert harness._cache_key(BuildRequest(a), off) != harness._cache_key(BuildRequest(b), off)
    # a speculative config naming a folder: its content counts, and whether it is the target
    spec_a = {"speculative_config": {"method": "mtp", "model": str(a)}}
    spec_b = {"speculative_config": {"method": "mtp", "model": str(b)}}
    assert harness._cache_key(BuildRequest(a, engine_args=spec_a), on) != harness._cache_key(
        BuildRequest(a, engine_args=spec_b), on
    )
