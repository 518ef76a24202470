"""Subprocess worker: build vLLM models from tiny checkpoints exactly as V1 does.

Two ways to run it (``VLLM_TARGET_DEVICE=cpu`` in its environment):

- one batch: ``python -m vllm_draft_quant.demo.worker '<json>'`` where the JSON is::

      {"cases": [{"model_dir": ..., "mode": "draft"|"target"|"target+draft",
                  "result_path": ..., "dump_path": ... or null,
                  "engine_args": {...}}, ...]}

  Cases run one after another (the ~15 s vLLM import is paid once) and each writes
  its own result JSON to ``result_path``; then the process exits. This is what
  ``launcher.py`` (the demo) starts.
- a service: ``python -m vllm_draft_quant.demo.worker --serve LOG_DIR`` (the test
  suite's build service, ``tests/support/harness.py``). It imports vLLM, applies the
  CPU shims, loads vLLM's general plugins (so vllm-draft-quant registers, with
  ``VLLM_DRAFT_QUANT`` as the process was started with), prints one line
  ``{"ready": true, ...}`` and then reads one JSON request per line on stdin::

      {"id": ..., "case": {<as above, without result_path>}, "env": {NAME: value|null}}

  For each it sets ``env`` (``null`` unsets a variable) for the duration of the case,
  builds it with everything the case prints going to ``LOG_DIR/case-<id>.log``, and
  answers one JSON line ``{"id": ..., "result": {...}}`` on stdout. The plugin reads
  its settings at every drafter load (``adapter/draft_load.py:wrap_load_model``) and
  its layer patches pass through when no drafter build is active
  (``adapter/patches.py``), so a case with ``{"VLLM_DRAFT_QUANT": "off"}`` is built
  exactly as stock vLLM builds it. EOF on stdin ends the process.

A case that raises is recorded and the next case starts from fresh configs. The
distributed state (world size 1, gloo, a free port) is created once and shared:
nothing in it depends on the model; the model-parallel groups are made again only when
what vLLM makes them from changes (`_groups_key`: experts or not, the parallel sizes).
After each case its garbage is collected and the heap frozen (`_settle`), so vLLM's own
``gc.collect()`` calls scan only the next case's objects. ``raw["reused"]["groups"]``
says whether a case kept the groups (``tests/integration/test_build_reuse.py`` holds
such builds equal to builds made afresh).

What one case does (mirroring ``v1/worker/gpu_model_runner.py:load_model`` and
``v1/spec_decode/llm_base_proposer.py:SpecDecodeBaseProposer._get_model``):

1. ``EngineArgs(..., speculative_config={"method": "mtp", ...}).create_engine_config()``
   (this also runs ``load_general_plugins()``: our plugin is active unless disabled).
2. "target": ``get_model(vllm_config=cfg)``, as the runner loads the target.
   The target runs first in "target+draft" because, as in a real engine, it
   mutates the quant config object that Qwen3-Next/DeepSeek drafters share.
3. "draft": picks the proposer class the runner would pick
   (``Gemma4Proposer`` if ``speculative_config.use_gemma4_mtp()``,
   ``Step3p5MTPProposer`` if ``speculative_config.use_step3p5_mtp()``, else
   ``EagleProposer``), creates an instance *without* ``__init__`` (which needs a
   device and a runner), sets the three attributes ``__init__`` sets and that
   ``_create_draft_vllm_config`` reads, and calls vLLM's own
   ``_create_draft_vllm_config()``; then ``get_model(vllm_config=draft_cfg,
   model_config=speculative_config.draft_model_config,
   load_config=get_draft_load_config(draft_cfg))`` under ``set_model_tag("eagle_head")``.

Observation (nothing here changes what vLLM does):
- every module carrying a quant method (LinearBase, RoutedExperts -- 0.33's holder
  of MoE expert weights --, VocabParallelEmbedding/ParallelLMHead, and attention
  layers' KV-cache methods): the prefix vLLM passed when it resolved the quant
  method (``layer.prefix`` for linears and embeddings, ``layer.layer_name`` for
  routed experts and attention: the attributes vLLM stores from the same argument
  it gives to ``resolve_quant_method``), the quant method class, and each
  parameter's dtype and shape *as loaded* (after ``load_weights``, before post-load
  processing);
- the same parameters are dumped to a safetensors file (torch) for bit-exact checks.

Result JSON (one per case): ``ok``, ``error_type``, ``error_message`` (first line,
plus ``[while loading <name>]`` when it names no module), ``error_module``,
``error_stage``, ``post_load_error`` / ``post_load_errors`` (tolerated CPU-only
failures, see cpu_shims.py), ``modules`` (draft) and ``target_modules``:
``{prefix: {module_path, layer_class, quant_method, params: {name: {dtype, shape,
has_sentinel?}}}}``, ``*_quant_configs``, ``proposer``, ``draft_architecture``,
``quantization``, ``dump_path``, ``timings``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

SENTINEL = -3.0e38  # vLLM initialises unloaded scales to -3.4e38 (torch.finfo(float32).min)


def _first_line(exc: BaseException) -> str:
    """The error's first line, whole up to 2000 characters: the plugin's one-line errors
    name a folder (whose path may be long) before the fix they end with."""
    text = str(exc).strip()
    return text.splitlines()[0][:2000] if text else ""


def _error_module(exc: BaseException) -> str:
    """Best effort: the checkpoint/parameter name vLLM was loading when ``exc`` rose."""
    tb = exc.__traceback__
    found = ""
    while tb is not None:
        loc = tb.tb_frame.f_locals
        for key in ("name", "weight_name", "param_name", "prefix", "layer_name"):
            val = loc.get(key)
            if isinstance(val, str) and "." in val and " " not in val:
                found = val
                break
        tb = tb.tb_next
    return found


def _quant_modules(model: Any) -> dict[str, Any]:
    from vllm.model_executor.layers.fused_moe import RoutedExperts
    from vllm.model_executor.layers.linear import LinearBase
    from vllm.model_executor.layers.vocab_parallel_embedding import (
        ParallelLMHead,
        VocabParallelEmbedding,
    )

    out: dict[str, Any] = {}
    for path, module in model.named_modules():
        if isinstance(module, RoutedExperts):
            prefix, kind = module.layer_name, "experts"
        elif isinstance(module, LinearBase):
            prefix, kind = module.prefix, "linear"
        elif isinstance(module, VocabParallelEmbedding):
            kind = "lm_head" if isinstance(module, ParallelLMHead) else "embedding"
            prefix = module.prefix
        elif getattr(module, "quant_method", None) is not None:  # attention: KV-cache method
            prefix, kind = getattr(module, "layer_name", None) or path, "attention"
        else:
            continue
        qm = getattr(module, "quant_method", None)
        params = {}
        for pname, p in module.named_parameters(recurse=False):
            info: dict[str, Any] = {
                "dtype": str(p.dtype).removeprefix("torch."),
                "shape": list(p.shape),
            }
            if p.dtype.is_floating_point and p.numel() and ("scale" in pname):
                info["has_sentinel"] = bool((p.detach().float() < SENTINEL).any())
            params[pname] = info
        key = prefix if prefix not in out else f"{prefix}#{path}"
        out[key] = {
            "module_path": path,
            "layer_class": type(module).__name__,
            "kind": kind,
            "quant_method": type(qm).__name__ if qm is not None else None,
            "params": params,
        }
    return out


def _quant_config_info(model: Any) -> list[dict[str, Any]]:
    """Every distinct quant config object the model's modules hold."""
    seen: dict[int, dict[str, Any]] = {}
    for module in model.modules():
        qc = getattr(module, "quant_config", None)
        if qc is None or id(qc) in seen or not hasattr(qc, "get_name"):
            continue
        seen[id(qc)] = {**_describe_config(qc), "name": str(qc.get_name())}
    return list(seen.values())


def _describe_config(qc: Any) -> dict[str, Any]:
    """A quant config object's class, exclusion lists and packed-module mapping."""
    info: dict[str, Any] = {"class": type(qc).__name__}
    for attr in ("exclude_modules", "ignore"):
        if isinstance(getattr(qc, attr, None), list):
            info[attr] = list(getattr(qc, attr))
    pmm = getattr(qc, "packed_modules_mapping", None)
    if isinstance(pmm, dict):
        info["packed_modules_mapping"] = {k: list(v) for k, v in pmm.items()}
    return info


def _target_config(vllm_config: Any) -> dict[str, Any] | None:
    """The target's quant config object: what a drafter build must not change."""
    qc = vllm_config.quant_config
    return None if qc is None else _describe_config(qc)


def _dump(model: Any, path: str) -> None:
    from safetensors.torch import save_file

    # every name of a shared parameter (a head tied to the embedding is dumped as both)
    tensors = {n: p.detach().to("cpu").contiguous().clone()
               for n, p in model.named_parameters(remove_duplicate=False)}
    save_file(tensors, path)


class _Observer:
    """Called by cpu_shims right before post-load processing of each model built."""

    def __init__(self) -> None:
        self.snapshots: list[tuple[Any, dict[str, Any]]] = []
        self.dump_path: str | None = None

    def __call__(self, model: Any) -> None:
        self.snapshots.append((model, _quant_modules(model)))
        if self.dump_path:
            _dump(model, self.dump_path)


def _engine_config(model_dir: str, extra: dict[str, Any] | None = None) -> Any:
    """vLLM's engine config; ``extra`` EngineArgs (e.g. ``trust_remote_code``) win."""
    from vllm.engine.arg_utils import EngineArgs

    args: dict[str, Any] = {
        "model": model_dir,
        "speculative_config": {"method": "mtp", "num_speculative_tokens": 1},
        "skip_tokenizer_init": True,
        "dtype": "bfloat16",
        "enforce_eager": True,
        "load_format": "safetensors",
        "max_model_len": 256,
        "max_num_batched_tokens": 256,
        "max_num_seqs": 4,
    }
    return EngineArgs(**{**args, **(extra or {})}).create_engine_config()


def _draft_vllm_config(vllm_config: Any) -> Any:
    from vllm.v1.spec_decode.eagle import EagleProposer
    from vllm.v1.spec_decode.gemma4 import Gemma4Proposer
    from vllm.v1.spec_decode.step3p5 import Step3p5MTPProposer

    spec = vllm_config.speculative_config
    # same choice as gpu_model_runner.py:GPUModelRunner.__init__ (Gemma4's assistant keeps
    # the target's attention backend: gemma4.py:Gemma4Proposer._create_draft_vllm_config)
    cls: type[Any] = (Gemma4Proposer if spec.use_gemma4_mtp()
                      else Step3p5MTPProposer if spec.use_step3p5_mtp() else EagleProposer)
    proposer = cls.__new__(cls)
    # the attributes SpecDecodeBaseProposer.__init__ sets and _create_draft_vllm_config reads
    proposer.vllm_config = vllm_config
    proposer.speculative_config = spec
    proposer.draft_model_config = spec.draft_model_config
    return cls.__name__, proposer._create_draft_vllm_config()


_DIST_READY = False
#: what the model-parallel groups standing now were made for (`_groups_key`); None: unknown
_GROUPS_FOR: tuple[Any, ...] | None = None


def _groups_key(vllm_config: Any) -> tuple[Any, ...]:
    """What ``parallel_state.py:initialize_model_parallel`` reads from the current config
    to decide which groups to make: the parallel sizes and switches, whether the model
    has experts (``model_config.is_moe``: the expert-parallel group) and the Engram
    config (with the architecture it is checked against)."""
    mc, pc = vllm_config.model_config, vllm_config.parallel_config
    engram = getattr(vllm_config, "engram_config", None)
    fields = (
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "data_parallel_size",
        "prefill_context_parallel_size",
        "decode_context_parallel_size",
        "enable_expert_parallel",
        "enable_eplb",
        "enable_elastic_ep",
        "use_all2all",
    )
    return (
        None if mc is None else bool(mc.is_moe),
        tuple(repr(getattr(pc, f, None)) for f in fields),
        None if engram is None else (repr(engram), getattr(mc, "architecture", None)),
    )


def _ensure_distributed(vllm_config: Any) -> bool:
    """World-size-1 gloo state, made once; the model-parallel groups made for this config.

    ``initialize_model_parallel`` creates the expert-parallel group only when the
    current config has experts, so groups made for a dense model (Llama/EAGLE3,
    MiMo) would break a MoE case that follows in the same worker: the groups are
    destroyed and made again whenever what they are made from (`_groups_key`)
    differs from the last case's, and kept otherwise (destroying and re-making the
    gloo groups costs ~0.07 s a case; a real engine makes them once per process).
    Returns whether the groups standing were kept.
    """
    global _DIST_READY, _GROUPS_FOR
    from vllm.distributed import ensure_model_parallel_initialized, init_distributed_environment
    from vllm.distributed.parallel_state import destroy_model_parallel
    from vllm.utils.network_utils import get_distributed_init_method, get_open_port

    key = _groups_key(vllm_config)
    if not _DIST_READY:
        init_distributed_environment(
            world_size=1,
            rank=0,
            local_rank=0,
            backend="gloo",
            distributed_init_method=get_distributed_init_method("127.0.0.1", get_open_port()),
        )
        _DIST_READY = True
    elif key != _GROUPS_FOR:  # None after a failure or another mode: always made again
        destroy_model_parallel()
    kept = _GROUPS_FOR is not None and key == _GROUPS_FOR
    _GROUPS_FOR = None  # until they are made
    ensure_model_parallel_initialized(1, 1)
    _GROUPS_FOR = key
    return kept


#: modes a process built on this worker adds (mode -> handler of the case, returning the
#: result dict); the tests' build service adds ``learn`` (``tests/support/pool_worker.py``)
EXTRA_MODES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {}


def _extra_mode(handler: Callable[[dict[str, Any]], dict[str, Any]],
                case: dict[str, Any]) -> dict[str, Any]:
    global _DIST_READY, _GROUPS_FOR
    import torch.distributed

    _GROUPS_FOR = None  # a handler may make the groups for its own config
    try:
        return handler(case)
    finally:  # a handler may have made the world-size-1 state (and groups) itself
        _DIST_READY = _DIST_READY or torch.distributed.is_initialized()
        _GROUPS_FOR = None


def run_case(case: dict[str, Any], observer: _Observer) -> dict[str, Any]:
    """Build one case (see the module docstring); then `_settle` (timed as ``settle``)."""
    result = _run_case(case, observer)
    t0 = time.perf_counter()
    _settle(observer)
    timings = result.setdefault("timings", {})
    timings["settle"] = time.perf_counter() - t0
    timings["total"] = timings.get("total", 0.0) + timings["settle"]
    return result


def _settle(observer: _Observer) -> None:
    """Drop the case's models and freeze what survives it, for the next case's collections.

    ``BaseModelLoader.load_model`` runs ``gc.collect()`` twice per model; each scans
    every object made since the heap was last frozen (`_start`), which includes every
    module vLLM imported lazily during earlier cases (model files, kernels): ~20 ms a
    collection on this machine. After a case, its own objects are garbage (the
    observer's snapshots hold its models until dropped here): one full collection
    frees them, and vLLM's ``freeze_gc_heap`` (the one `_start` uses) moves what is
    left (imports, caches) out of later scans. It changes no object and no step vLLM
    takes; an object frozen while alive is never collected if it later becomes
    cyclic garbage (a small leak, bounded by what caches drop).
    """
    from vllm.utils.gc_utils import freeze_gc_heap

    observer.snapshots.clear()
    observer.dump_path = None
    freeze_gc_heap()


def _run_case(case: dict[str, Any], observer: _Observer) -> dict[str, Any]:
    from vllm.compilation.backends import set_model_tag
    from vllm.config import set_current_vllm_config
    from vllm.model_executor.model_loader import get_model
    from vllm.model_executor.model_loader.utils import get_draft_load_config

    from vllm_draft_quant.demo import cpu_shims

    mode = case.get("mode", "draft")
    if mode in EXTRA_MODES:
        return _extra_mode(EXTRA_MODES[mode], case)
    result: dict[str, Any] = {
        "ok": False,
        "mode": mode,
        "error_type": None,
        "error_message": None,
        "error_module": None,
        "post_load_error": None,
        "modules": {},
        "target_modules": {},
        "dump_path": None,
        "timings": {},
    }
    cpu_shims.POST_LOAD_ERRORS.clear()
    observer.snapshots.clear()
    observer.dump_path = None
    stage = "engine_config"
    t0 = time.perf_counter()
    try:
        vllm_config = _engine_config(case["model_dir"], case.get("engine_args"))
        spec = vllm_config.speculative_config
        result["draft_architecture"] = spec.draft_model_config.architectures[0]
        result["quantization"] = vllm_config.model_config.quantization
        result["timings"]["engine_config"] = time.perf_counter() - t0
        with set_current_vllm_config(vllm_config):
            result["reused"] = {"groups": _ensure_distributed(vllm_config)}
            if "target" in mode:
                stage = "target"
                t1 = time.perf_counter()
                observer.snapshots.clear()
                cpu_shims.TOLERATE_ANY_POST_LOAD[0] = True
                try:
                    target = get_model(vllm_config=vllm_config)
                finally:
                    cpu_shims.TOLERATE_ANY_POST_LOAD[0] = False
                result["target_modules"] = (
                    observer.snapshots[-1][1] if observer.snapshots else _quant_modules(target)
                )
                result["target_quant_configs"] = _quant_config_info(target)
                result["target_config_before_draft"] = _target_config(vllm_config)
                result["target_post_load_errors"] = list(cpu_shims.POST_LOAD_ERRORS)
                cpu_shims.POST_LOAD_ERRORS.clear()
                observer.snapshots.clear()
                del target
                result["timings"]["target"] = time.perf_counter() - t1
            if "draft" in mode:
                stage = "draft_config"
                t2 = time.perf_counter()
                proposer_cls, draft_cfg = _draft_vllm_config(vllm_config)
                result["proposer"] = proposer_cls
                observer.snapshots.clear()
                observer.dump_path = case.get("dump_path")
                stage = "draft"
                with set_model_tag("eagle_head"):
                    draft = get_model(
                        vllm_config=draft_cfg,
                        model_config=spec.draft_model_config,
                        load_config=get_draft_load_config(draft_cfg),
                    )
                result["modules"] = (
                    observer.snapshots[-1][1] if observer.snapshots else (_quant_modules(draft))
                )
                result["draft_quant_configs"] = _quant_config_info(draft)
                result["target_config_after_draft"] = _target_config(vllm_config)
                result["dump_path"] = observer.dump_path
                result["timings"]["draft"] = time.perf_counter() - t2
        result["ok"] = True
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["error_stage"] = stage
        result["error_type"] = type(exc).__name__
        module = _error_module(exc)
        message = _first_line(exc)
        if module and not re.search(r"\w+\.\w+\.\w+", message):  # names no module yet
            message = f"{message} [while loading {module}]".lstrip()
        result["error_message"] = message
        result["error_module"] = module
        result["traceback_tail"] = traceback.format_exception(exc)[-3:]
        if observer.snapshots:  # the draft loaded, something after loading failed
            result["modules"] = observer.snapshots[-1][1]
    result["post_load_errors"] = list(cpu_shims.POST_LOAD_ERRORS)
    if cpu_shims.POST_LOAD_ERRORS:
        result["post_load_error"] = dict(cpu_shims.POST_LOAD_ERRORS[0])
    result["timings"]["total"] = time.perf_counter() - t0
    return result


#: the observer `_start` installed (for code a test runs in this process)
OBSERVER: list[_Observer] = []


def _start(*, load_plugins: bool) -> tuple[_Observer, float]:
    """Import vLLM, apply the CPU shims, observe every model built; the import's seconds.

    ``load_plugins``: load vLLM's general plugins now (the service) instead of in the
    first case's ``create_engine_config``. Then the heap is frozen with vLLM's own
    ``utils/gc_utils.py:freeze_gc_heap`` (what its engine core does once it is up): the
    objects of the imports leave the collector's scans, so each ``gc.collect()`` in
    ``BaseModelLoader.load_model`` (two per model) costs ~0.1 s instead of ~1.7 s. It
    changes no object and no step vLLM takes.
    """
    t0 = time.perf_counter()
    import vllm  # noqa: F401 - the import is the expensive part; time it
    from vllm.utils.gc_utils import freeze_gc_heap

    from vllm_draft_quant.demo import cpu_shims

    cpu_shims.apply_all()
    if load_plugins:
        from vllm.plugins import load_general_plugins

        load_general_plugins()  # once per process: cases must not be the first to load them
    observer = _Observer()
    cpu_shims.BEFORE_POST_LOAD.append(observer)
    OBSERVER[:] = [observer]
    freeze_gc_heap()
    return observer, time.perf_counter() - t0


def main(argv: list[str]) -> int:
    if len(argv) > 1 and argv[1] == "--serve":
        return serve(Path(argv[2]))
    args = json.loads(argv[1])
    observer, import_s = _start(load_plugins=False)
    for i, case in enumerate(args["cases"]):
        result = run_case(case, observer)
        result["timings"]["vllm_import"] = import_s if i == 0 else 0.0
        result["plugins_env"] = os.environ.get("VLLM_PLUGINS")
        tmp = case["result_path"] + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(result, fh, indent=1, default=str)
        os.replace(tmp, case["result_path"])
    sys.stdout.flush()
    # gloo teardown can hang at interpreter exit (FINDINGS): skip it.
    os._exit(0)


def _redirect(path: Path) -> None:
    """Send this process's stdout and stderr (file descriptors 1 and 2) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _with_env(env: dict[str, str | None]) -> dict[str, str | None]:
    """Apply ``env`` (None unsets); return what it replaced, for the restore."""
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    return saved


def serve(log_dir: Path) -> int:
    """The service mode (see the module docstring)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    answers = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol keeps the real stdout
    _redirect(log_dir / "worker.log")
    observer, import_s = _start(load_plugins=True)
    answers.write(json.dumps({"ready": True, "pid": os.getpid(), "vllm_import": import_s}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        case_log = log_dir / f"case-{request['id']}.log"
        _redirect(case_log)
        saved = _with_env(request.get("env") or {})
        try:
            result = run_case(request["case"], observer)
        finally:
            _with_env(saved)
            _redirect(log_dir / "worker.log")
        result["timings"]["vllm_import"] = 0.0
        result["plugins_env"] = os.environ.get("VLLM_PLUGINS")
        result["worker_pid"] = os.getpid()
        result["worker_log"] = str(case_log)
        answers.write(json.dumps({"id": request["id"], "result": result}, default=str) + "\n")
    answers.flush()
    os._exit(0)  # gloo teardown can hang at interpreter exit (FINDINGS)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
