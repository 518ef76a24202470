"""The build service's worker: ``demo/worker.py --serve`` plus the mode ``learn``.

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


worker.EXTRA_MODES["learn"] = learn_case

if __name__ == "__main__":
    sys.exit(worker.main(sys.argv))
