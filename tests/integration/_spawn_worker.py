"""Run as a script: an "engine" process that starts a vLLM-style worker process.

The parent builds the engine config (as vLLM's engine core does) and starts a child
with vLLM's own ``get_mp_context()`` (``VLLM_WORKER_MULTIPROC_METHOD=spawn``, as on
CUDA). The child does what ``worker_base.py:WorkerWrapperBase.init_worker`` does
first, ``load_general_plugins()``, then builds the drafter from the pickled config.
Prints one JSON line: what the child saw, and the plan digest the parent computes.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def child(vllm_config: Any, queue: Any) -> None:
    out: dict[str, Any] = {}
    try:
        from vllm_draft_quant.adapter import patches
        from vllm_draft_quant.demo import cpu_shims
        from vllm_draft_quant.demo import worker as w

        out["hooked_before_plugins"] = bool(patches.ORIGINALS)
        from vllm.plugins import load_general_plugins

        load_general_plugins()
        from vllm.model_executor.model_loader.base_loader import BaseModelLoader  # noqa: F401

        out["hooked_after_plugins"] = sorted(patches.ORIGINALS)
        cpu_shims.apply_all()
        from vllm.config import set_current_vllm_config
        from vllm.model_executor.model_loader import get_model
        from vllm.model_executor.model_loader.utils import get_draft_load_config

        with set_current_vllm_config(vllm_config):
            w._ensure_distributed(vllm_config)
            _, draft_cfg = w._draft_vllm_config(vllm_config)
            spec = vllm_config.speculative_config
            draft = get_model(
                vllm_config=draft_cfg,
                model_config=spec.draft_model_config,
                load_config=get_draft_load_config(draft_cfg),
            )
        out["modules"] = {p: m["quant_method"] for p, m in w._quant_modules(draft).items()}
        from vllm_draft_quant.adapter import draft_load

        out["plan_digests"] = [p.digest() for p in draft_load._PLANS.values()]
        out["ok"] = True
    except BaseException as e:
        out["ok"] = False
        out["error"] = f"{type(e).__name__}: {e}"
    queue.put(out)
    queue.close()
    queue.join_thread()
    os._exit(0)  # gloo teardown can hang at exit


def main() -> None:
    model_dir = sys.argv[1]
    os.environ["VLLM_WORKER_MULTIPROC_METHOD"] = "spawn"
    from vllm.utils.system_utils import get_mp_context

    from vllm_draft_quant import plan
    from vllm_draft_quant.demo import worker as w

    vllm_config = w._engine_config(model_dir)
    ctx = get_mp_context()
    queue = ctx.Queue()
    proc = ctx.Process(target=child, args=(vllm_config, queue))
    proc.start()
    result = queue.get(timeout=600)
    proc.join(timeout=60)
    result["start_method"] = ctx.get_start_method()
    result["parent_digest"] = plan(
        model_dir, drafter=vllm_config.speculative_config.draft_model_config.architectures[0]
    ).digest()
    print(json.dumps(result))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
