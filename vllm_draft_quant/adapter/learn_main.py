"""Learn a drafter's mapping outside a vLLM engine: ``python -m vllm_draft_quant.adapter.learn_main``.

The narrow door through which layers that must not import vLLM (the CLI's ``plan``, the
coverage table's generator) reach `adapter.learn`: they start this module in a
subprocess and read back one JSON file::

    python -m vllm_draft_quant.adapter.learn_main MODEL OUT.json ['{"trust_remote_code": true}']
    python -m vllm_draft_quant.adapter.learn_main --batch REQUEST.json

``OUT.json`` is written atomically: ``{"observation": <core.learned.Observation>,
"seconds": ...}`` or ``{"error": "<one line>", "error_type": "..."}``. A batch
(``{"cases": [{"model": ..., "out": ..., "engine_args": {...}}, ...]}``) learns every
case in one process, paying vLLM's import once. What it runs is what P1 runs inside a
vLLM engine (`adapter.learn.observe`), after the steps vLLM itself takes before any model
is built: ``EngineArgs(...).create_engine_config()`` for MODEL as an MTP target (vLLM
resolves the draft architecture and its config), a world-size-1 distributed state
(gloo), and the speculative config's draft ``ModelConfig``. No weights are read, no
model is built on a real device. On a machine without a GPU set ``VLLM_TARGET_DEVICE=cpu``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["learn_folder", "learn_result", "main"]


def learn_folder(model_dir: str, engine_args: dict[str, Any] | None = None) -> Any:
    """The `Observation` of the drafter vLLM loads for the target in ``model_dir``."""
    from vllm.config import set_current_vllm_config
    from vllm.distributed import ensure_model_parallel_initialized, init_distributed_environment
    from vllm.distributed.parallel_state import (
        destroy_model_parallel,
        model_parallel_is_initialized,
    )
    from vllm.engine.arg_utils import EngineArgs
    from vllm.utils.network_utils import get_distributed_init_method, get_open_port

    from vllm_draft_quant.adapter.learn import observe
    from vllm_draft_quant.adapter.patches import apply_layer_patches
    from vllm_draft_quant.errors import UnknownDrafterError

    args: dict[str, Any] = {
        "model": model_dir,
        "speculative_config": {"method": "mtp", "num_speculative_tokens": 1},
        "skip_tokenizer_init": True,
        "enforce_eager": True,
        "load_format": "safetensors",
        "max_model_len": 256,
        **(engine_args or {}),
    }
    cfg = EngineArgs(**args).create_engine_config()
    spec = cfg.speculative_config
    if spec is None or spec.draft_model_config is None:
        raise UnknownDrafterError(f"{model_dir}: vLLM sets up no draft model for it")
    draft = spec.draft_model_config
    arch = draft.architectures[0]
    with set_current_vllm_config(cfg):
        # the model-parallel groups depend on the config (an expert group only with
        # experts): rebuilt per model, the world-size-1 gloo state made once
        if model_parallel_is_initialized():  # type: ignore[no-untyped-call]
            destroy_model_parallel()  # type: ignore[no-untyped-call]
        else:
            init_distributed_environment(
                world_size=1, rank=0, local_rank=0, backend="gloo",
                distributed_init_method=get_distributed_init_method("127.0.0.1",
                                                                    get_open_port()))
        ensure_model_parallel_initialized(1, 1)
        return observe(cfg, draft, "", arch, Path(draft.model), apply_layer_patches)


def _write(path: str, body: dict[str, Any]) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        json.dump(body, fh)
    os.replace(tmp, path)


def learn_result(model: str, engine_args: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON body this door writes for ``model`` (see the module docstring)."""
    import time

    t0 = time.perf_counter()
    try:
        obs = learn_folder(model, engine_args)
        return {"observation": obs.model_dump(mode="json"), "seconds": time.perf_counter() - t0}
    except Exception as e:
        first = str(e).strip().splitlines()[0][:2000] if str(e).strip() else ""
        return {"error": first, "error_type": type(e).__name__}


def _one(model: str, out: str, engine_args: dict[str, Any] | None) -> int:
    body = learn_result(model, engine_args)
    _write(out, body)
    return 0 if "observation" in body else 1


def main(argv: list[str]) -> int:
    if argv[1] == "--batch":
        with open(argv[2]) as fh:
            cases = json.load(fh)["cases"]
        code = max([_one(c["model"], c["out"], c.get("engine_args")) for c in cases] or [0])
    else:
        code = _one(argv[1], argv[2], json.loads(argv[3]) if len(argv) > 3 else None)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # gloo teardown can hang at interpreter exit (FINDINGS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
