"""The build service's worker: ``demo/worker.py --serve`` plus the mode ``learn``.

And the mode ``call``: a function run in a worker (``harness.call_in_worker``) where
a test needs vLLM imported but no fresh process of its own.

Started by ``harness._Pool`` as ``python tests/support/pool_worker.py --serve LOG_DIR``.
A ``learn`` case runs the adapter's mapping learner in this process
(``adapter/learn_main.py:learn_result``: what ``python -m vllm_draft_quant.adapter.learn_main``
writes), under the same CPU shims as the builds (``demo/cpu_shims.py``), so the tests'
learning pays no vLLM import of its own. The package's layers stay as they are: the demo
never imports the adapter; this test-only module joins them.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from vllm_draft_quant.demo import worker


def learn_case(case: dict[str, Any]) -> dict[str, Any]:
    from vllm_draft_quant.adapter.learn_main import learn_result

    t0 = time.perf_counter()
    body = learn_result(case["model_dir"], case.get("engine_args"))
    seconds = time.perf_counter() - t0
    return {
        "ok": "observation" in body,
        "mode": "learn",
        "learn": body,
        "draft_architecture": "(mapping learner)",
        "timings": {"learn": seconds, "total": seconds},
    }


def call_case(case: dict[str, Any]) -> dict[str, Any]:
    """Mode ``call``: ``module:function(*args)`` in this process; its JSON-able value (what
    it prints goes to the case's log, ``raw["worker_log"]``)."""
    import importlib

    t0 = time.perf_counter()
    module, _, name = case["call"].partition(":")
    value, error_type, message = None, None, None
    try:
        value = getattr(importlib.import_module(module), name)(*case.get("args", ()))
    except Exception as e:  # the worker stays up; the caller gets the error
        error_type, message = type(e).__name__, str(e).strip()[:500]
    seconds = time.perf_counter() - t0
    return {
        "ok": error_type is None,
        "error_type": error_type,
        "error_message": message,
        "mode": "call",
        "value": value,
        "draft_architecture": f"({case['call']})",
        "timings": {"call": seconds, "total": seconds},
    }


def fresh_and_reused(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For `harness.call_in_worker`: build each of ``cases`` (``run_case``'s case plus
    ``env``, the plugin's variables for it), in order, first with what this worker keeps
    between cases (``demo/worker.py``: the model-parallel groups, the frozen heap) as
    the previous case left it, then again with all of it made afresh; per case
    ``{"reused": result, "fresh": result}`` (the raw results, ``timings`` removed)."""
    out = []
    observer = worker.OBSERVER[0]
    for case in cases:
        pair = {}
        for how in ("reused", "fresh"):
            if how == "fresh":
                worker._GROUPS_FOR = None  # destroyed and made again for this case
            saved = worker._with_env(case.get("env") or {})
            try:
                result = worker.run_case(case, observer)
            finally:
                worker._with_env(saved)
            result.pop("timings", None)
            pair[how] = result
        out.append(pair)
    return out


worker.EXTRA_MODES["learn"] = learn_case
worker.EXTRA_MODES["call"] = call_case

if __name__ == "__main__":
    sys.exit(worker.main(sys.argv))
