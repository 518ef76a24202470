"""Build real vLLM drafters (and targets) from tiny checkpoints, on CPU, out of process.

`build_many` starts ``worker.py`` in a fresh Python (``VLLM_TARGET_DEVICE=cpu``) and
reads back one JSON result per case; the cases run in that one process, paying vLLM's
import (~10-30 s) once; a case that raises does not affect the next one (fresh
configs, shared world-size-1 distributed state). A worker that outlives ``timeout``
is killed; cases without a result come back with ``error_type="WorkerTimeout"`` /
``"WorkerDied"``. The demo calls `build_drafter` twice; the test suite runs the same
worker as a long-lived service instead (``tests/support/harness.py``) and uses this
module's result types.

``plugin=False`` disables vllm-draft-quant entirely: ``VLLM_PLUGINS`` is set to a
name that matches no entry point (``vllm/plugins/__init__.py:load_plugins_by_group``
loads only the listed names) and ``VLLM_DRAFT_QUANT=off``.

By default the target model is loaded before the drafter, as
``gpu_model_runner.py:GPUModelRunner.load_model`` does: the Qwen3-Next and
DeepSeek drafters share the target's quant config object, which the target's
construction mutates (packed-module mapping, name mapper).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

WORKER_MODULE = "vllm_draft_quant.demo.worker"
NO_PLUGIN = "vllm_draft_quant_disabled"  # matches no vllm.general_plugins entry point
QUANTIZED_DTYPES = ("float8_e4m3fn", "uint8")

#: what a case builds; ``learn`` is a mode the tests' workers add (``worker.EXTRA_MODES``)
Mode = Literal["draft", "target", "target+draft", "learn"]


@dataclass(frozen=True)
class ParamInfo:
    dtype: str
    shape: tuple[int, ...]
    has_sentinel: bool | None = None  # scale params: still holds vLLM's -3.4e38 init


@dataclass(frozen=True)
class ModuleInfo:
    """A module that carries a quant method, keyed by the prefix vLLM resolved it with."""

    prefix: str
    module_path: str
    layer_class: str
    quant_method: str | None
    params: dict[str, ParamInfo]
    kind: str | None = None  # linear | experts | lm_head | embedding | attention

    @property
    def quantized(self) -> bool:
        """True when some weight parameter is stored in a quantized dtype."""
        return any(
            p.dtype in QUANTIZED_DTYPES
            for n, p in self.params.items()
            if "weight" in n and "scale" not in n
        )

    @property
    def has_sentinel(self) -> bool:
        return any(p.has_sentinel for p in self.params.values())


def _modules(raw: Mapping[str, Any]) -> dict[str, ModuleInfo]:
    return {
        prefix: ModuleInfo(
            prefix=prefix.split("#", 1)[0],
            module_path=m["module_path"],
            layer_class=m["layer_class"],
            quant_method=m["quant_method"],
            params={
                n: ParamInfo(p["dtype"], tuple(p["shape"]), p.get("has_sentinel"))
                for n, p in m["params"].items()
            },
            kind=m.get("kind"),
        )
        for prefix, m in raw.items()
    }


@dataclass
class DraftResult:
    """The outcome of one build; ``raw`` is the worker's JSON."""

    model_dir: Path
    ok: bool
    error_type: str | None
    error_message: str | None
    error_module: str | None
    post_load_error: dict[str, str] | None
    modules: dict[str, ModuleInfo]
    target_modules: dict[str, ModuleInfo]
    dump_path: Path | None
    raw: dict[str, Any] = field(repr=False)

    @property
    def error_text(self) -> str:
        """Error type, first message line and the module being loaded, for assertions."""
        return f"{self.error_type}: {self.error_message}"

    def sentinel_modules(self) -> list[str]:
        return [p for p, m in self.modules.items() if m.has_sentinel]

    def quantized_modules(self) -> list[str]:
        return [p for p, m in self.modules.items() if m.quantized]

    def load_dump(self) -> dict[str, Any]:
        """The draft's parameters as loaded (before post-load processing), as torch tensors."""
        if self.dump_path is None:
            raise FileNotFoundError(f"no parameter dump for {self.model_dir}: {self.error_text}")
        from safetensors.torch import load_file

        return load_file(str(self.dump_path))


@dataclass(frozen=True)
class BuildRequest:
    model_dir: Path
    mode: Mode = "target+draft"
    dump: bool = True
    # extra EngineArgs for this case, e.g. {"trust_remote_code": True} (MiMo)
    engine_args: Mapping[str, Any] | None = None


def worker_env(plugin: bool, env: Mapping[str, str] | None = None) -> dict[str, str]:
    out = dict(os.environ)
    out["VLLM_TARGET_DEVICE"] = "cpu"
    out.setdefault("PYTHONHASHSEED", "0")  # vLLM names "some" missing param from a set
    # no background JIT builds of the CUDA-only humming kernels on this CPU-only worker
    # (humming/ops/utils.py:build_humming_launcher_in_bg: two processes per vLLM import)
    out.setdefault("HUMMING_DISABLE_PARALLEL_BUILD", "1")
    if plugin:
        out.pop("VLLM_PLUGINS", None)
        out.pop("VLLM_DRAFT_QUANT", None)
    else:
        out["VLLM_PLUGINS"] = NO_PLUGIN
        out["VLLM_DRAFT_QUANT"] = "off"
    out.update(env or {})
    return out


def missing_result(req: BuildRequest, error_type: str, message: str) -> DraftResult:
    """The result of a case the worker never answered (``WorkerDied``/``WorkerTimeout``)."""
    raw = {"ok": False, "error_type": error_type, "error_message": message}
    return result_from_raw(req.model_dir, raw)


def build_many(
    requests: Sequence[BuildRequest],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> list[DraftResult]:
    """Run ``requests`` in one worker process, in order; one DraftResult each.

    ``timeout`` (seconds, whole process) defaults to 300 + 60 per request: a
    loaded 2-core machine has been seen to need ~300 s for vLLM's first import.
    """
    if timeout is None:
        timeout = 300.0 + 60.0 * len(requests)
    work = Path(workdir or tempfile.mkdtemp(prefix="vdq-harness-"))
    work.mkdir(parents=True, exist_ok=True)
    cases: list[dict[str, Any]] = []
    for i, req in enumerate(requests):
        cases.append(
            {
                "model_dir": str(req.model_dir),
                "mode": req.mode,
                "result_path": str(work / f"result-{i}.json"),
                "dump_path": str(work / f"dump-{i}.safetensors") if req.dump else None,
                "engine_args": dict(req.engine_args or {}),
            }
        )
    log_path = work / "worker.log"
    t0 = time.perf_counter()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", WORKER_MODULE, json.dumps({"cases": cases})],
            env=worker_env(plugin, env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            proc.wait(timeout=timeout)
            died = proc.returncode != 0
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the worker's own session: it and its children
            proc.wait()
            died = None
    elapsed = time.perf_counter() - t0
    results = []
    for req, case in zip(requests, cases, strict=True):
        path = Path(case["result_path"])
        if not path.exists():
            if died is None:
                results.append(
                    missing_result(req, "WorkerTimeout", f"killed after {timeout:.0f} s")
                )
            else:
                tail = log_path.read_text(errors="replace")[-2000:]
                results.append(missing_result(req, "WorkerDied", f"exit {proc.returncode}: {tail}"))
            continue
        raw = json.loads(path.read_text())
        raw["worker_log"] = str(log_path)
        raw["worker_elapsed"] = elapsed
        results.append(result_from_raw(req.model_dir, raw))
    return results


def result_from_raw(model_dir: str | os.PathLike[str], raw: dict[str, Any]) -> DraftResult:
    """The DraftResult of one worker result JSON (``raw``), for the case of ``model_dir``."""
    return DraftResult(
        model_dir=Path(model_dir),
        ok=bool(raw["ok"]),
        error_type=raw.get("error_type"),
        error_message=raw.get("error_message"),
        error_module=raw.get("error_module"),
        post_load_error=raw.get("post_load_error"),
        modules=_modules(raw.get("modules") or {}),
        target_modules=_modules(raw.get("target_modules") or {}),
        dump_path=Path(raw["dump_path"]) if raw.get("dump_path") else None,
        raw=raw,
    )


def build_drafter(
    model_dir: str | os.PathLike[str],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float = 600,
    with_target: bool = True,
    workdir: Path | None = None,
) -> DraftResult:
    """Build the drafter of ``model_dir`` as vLLM's V1 proposer does, in its own process.

    Results, the worker log and the parameter dump go to ``workdir`` (default: a new
    temporary folder that is left for the caller to read).
    """
    mode: Mode = "target+draft" if with_target else "draft"
    return build_many(
        [BuildRequest(Path(model_dir), mode)],
        plugin=plugin,
        env=env,
        timeout=timeout,
        workdir=workdir,
    )[0]
