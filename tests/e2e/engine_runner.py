"""One long-lived process that runs several generation cases with vLLM's ``LLM``, in turn.

Usage: ``python tests/e2e/engine_runner.py CASES.json RESULTS.jsonl``. ``CASES.json`` is
a list of ``{"name", "model", "k", "plugin": bool, "prompts": [[ids]], "max_tokens",
"engine_args": {...}, "method": "mtp" | "eagle3" | "draft_model", "draft": path?}``;
one JSON line per case is appended to ``RESULTS.jsonl`` as soon as it finishes:
``{"name", "ok", "tokens", "drafts", "draft_tokens", "accepted", "accepted_per_pos",
"seconds", "output_tokens", "wall_seconds", "error_type", "error"}`` (``seconds``: the
generation; ``wall_seconds``: the whole run, engine start to teardown).

Importing vLLM costs 10-30 s here, so one process runs every case: the engine core
runs in this process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``), the CPU stand-ins
(``vllm_draft_quant/demo/cpu_forward.py`` and the construction shims of
``cpu_shims.py`` that a quantized target needs) are installed once, and vLLM's
distributed state is torn down between cases. The plugin is switched per case with
``VLLM_DRAFT_QUANT`` (``off``: stock vLLM; the plugin reads it at every drafter load).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
# thread binding per NUMA node refuses two CPU workers on a one-node machine (TP 2)
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")


def install_stand_ins() -> list[str]:
    from vllm_draft_quant.demo import cpu_forward

    return cpu_forward.install()


def _metrics(llm: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in llm.get_metrics():
        if m.name.startswith("vllm:spec_decode"):
            key = m.name.removeprefix("vllm:spec_decode_")
            out[key] = list(m.values) if hasattr(m, "values") else m.value
    return out


def _cleanup() -> None:
    gc.collect()
    try:
        from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
    except Exception:  # nothing was initialised (the engine failed before its workers)
        pass


def speculative_config(case: dict[str, Any]) -> dict[str, Any]:
    method = case.get("method", "mtp")
    spec: dict[str, Any] = {"method": method, "num_speculative_tokens": case["k"]}
    if case.get("draft"):
        spec["model"] = case["draft"]
    return spec


def probe_drafter(worker: Any, path: str) -> list[str]:
    """Run every linear of the drafter and its logits on fixed inputs; save them to ``path``
    with the drafter's own parameters (``<weights>``: an MTP drafter's ``mtp_layers``, or
    all but the embedding an EAGLE3 drafter shares with its target).

    Called in each worker (``LLM.collective_rpc``). Inputs are seeded per module shape,
    so two drafters with the same module names see the same inputs. Returns the names.
    """
    import torch

    model = worker.model_runner.drafter.model
    out: dict[str, Any] = {}
    with torch.no_grad():
        for name, module in model.named_modules():
            quant_method = getattr(module, "quant_method", None)
            if isinstance(module, torch.nn.Linear):
                size = module.in_features
            elif quant_method is not None and hasattr(module, "input_size_per_partition"):
                size = module.input_size_per_partition
            else:
                continue
            if type(module).__name__.endswith(("Embedding", "LMHead")):
                continue
            g = torch.Generator().manual_seed(size)
            x = torch.randn(5, size, generator=g).to(torch.bfloat16)
            y = module(x)
            out[name] = (y[0] if isinstance(y, tuple) else y).float().clone()
        hidden = model.config.hidden_size
        g = torch.Generator().manual_seed(7)
        h = torch.randn(5, hidden, generator=g).to(torch.bfloat16)
        out["<logits>"] = model.compute_logits(h).float().clone()
        out["<weights>"] = _draft_parameters(model)
        out["<plans>"] = _plan_digests(worker)
    torch.save(out, path)
    return sorted(out)


def _plan_digests(worker: Any) -> dict[str, str]:
    """``{drafter: Plan.digest()}`` of the plans the plugin made in this process for the
    draft's folder (its per-process plan cache, ``adapter/draft_load.py:plan_for``)."""
    from vllm_draft_quant.adapter import draft_load

    spec = worker.vllm_config.speculative_config
    folder = str(Path(spec.draft_model_config.model).resolve())
    return {key[1]: plan.digest() for key, plan in draft_load._PLANS.items() if key[0] == folder}


def _draft_parameters(model: Any) -> dict[str, Any]:
    mtp = any("mtp_layers" in n for n, _ in model.named_parameters())
    return {
        n: p.detach().clone()
        for n, p in model.named_parameters()
        if ("mtp_layers" in n if mtp else "embed_tokens" not in n)
    }


def report_rank(worker: Any, path: str) -> tuple[int, int, dict[str, str]]:
    """What this tensor-parallel rank loaded, saved to ``path.rank<r>.pt``: its rank and
    world size, the digests of the plans the plugin applied here (``<plans>``), and every
    drafter parameter with how vLLM shards it (``output_dim``/``input_dim`` of the
    parameter, the fused shards' ``output_sizes`` of its layer). Called on every rank
    (``LLM.collective_rpc``); returns ``(rank, world size, digests)``."""
    import torch
    from vllm.distributed import (
        get_tensor_model_parallel_rank,
        get_tensor_model_parallel_world_size,
    )
    from vllm.model_executor.layers.linear import ColumnParallelLinear, RowParallelLinear

    model = worker.model_runner.drafter.model
    rank, world = get_tensor_model_parallel_rank(), get_tensor_model_parallel_world_size()
    layout: dict[str, Any] = {}
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        owner = modules.get(name.rsplit(".", 1)[0])
        sizes = getattr(owner, "output_sizes", None)
        parallel = None
        if isinstance(owner, ColumnParallelLinear):
            parallel = "column"
        elif isinstance(owner, RowParallelLinear):
            parallel = "row"
        layout[name] = {
            "parallel": parallel,
            "output_dim": getattr(p, "output_dim", None),
            "input_dim": getattr(p, "input_dim", None),
            "output_sizes": list(sizes) if sizes is not None else None,
            "tp_size": getattr(owner, "tp_size", None),
        }
    digests = _plan_digests(worker)
    out = {
        "rank": rank,
        "world": world,
        "<plans>": digests,
        "<weights>": _draft_parameters(model),
        "<layout>": layout,
    }
    torch.save(out, f"{path}.rank{rank}.pt")
    return rank, world, digests


def run_case(case: dict[str, Any]) -> dict[str, Any]:
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from vllm_draft_quant.demo.cpu_forward import ENGINE_ARGS

    os.environ["VLLM_DRAFT_QUANT"] = "auto" if case["plugin"] else "off"
    result: dict[str, Any] = {"name": case["name"], "ok": False}
    llm = None
    start = time.perf_counter()
    try:
        args: dict[str, Any] = {
            "model": case["model"],
            "speculative_config": speculative_config(case),
            "skip_tokenizer_init": True,
            "dtype": "bfloat16",
            "max_model_len": 256,
            "max_num_seqs": 4,
            "max_num_batched_tokens": 256,
            "block_size": 32,
            "disable_log_stats": False,
            "load_format": "safetensors",
            "seed": 0,
            **ENGINE_ARGS,
            **case.get("engine_args", {}),
        }
        llm = LLM(**args)
        params = SamplingParams(
            temperature=0.0, max_tokens=case["max_tokens"], ignore_eos=True, detokenize=False
        )
        prompts = [TokensPrompt(prompt_token_ids=p) for p in case["prompts"]]
        t0 = time.perf_counter()
        outs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - t0
        tokens = [list(o.outputs[0].token_ids) for o in outs]
        m = _metrics(llm)
        if case.get("probe"):
            result["probe"] = llm.collective_rpc(probe_drafter, args=(case["probe"],))[0]
        if case.get("rank_report"):
            result["ranks"] = llm.collective_rpc(report_rank, args=(case["rank_report"],))
        result.update(
            ok=True,
            tokens=tokens,
            seconds=seconds,
            output_tokens=sum(len(t) for t in tokens),
            drafts=m.get("num_drafts", 0),
            draft_tokens=m.get("num_draft_tokens", 0),
            accepted=m.get("num_accepted_tokens", 0),
            accepted_per_pos=m.get("num_accepted_tokens_per_pos", []),
        )
    except Exception as e:
        result.update(
            error_type=type(e).__name__,
            error=(str(e).splitlines() or [""])[0][:500],
            where=traceback.format_exc().splitlines()[-3:],
        )
    finally:
        del llm
        _cleanup()
        result["wall_seconds"] = time.perf_counter() - start  # engine start to teardown
    return result


def main(argv: list[str]) -> int:
    cases = json.loads(Path(argv[1]).read_text())
    results = Path(argv[2])
    installed = install_stand_ins()
    # the plugin registers once per process, as the process' environment says: register
    # it switched on, then switch it per case (its patches pass through when off)
    os.environ["VLLM_DRAFT_QUANT"] = "auto"
    from vllm.plugins import load_general_plugins

    load_general_plugins()
    print(f"engine_runner: stand-ins installed: {installed}", file=sys.stderr, flush=True)
    for case in cases:
        res = run_case(case)
        with results.open("a") as f:
            f.write(json.dumps(res) + "\n")
        print(
            f"engine_runner: {case['name']}: ok={res['ok']} {res.get('error_type', '')}",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
