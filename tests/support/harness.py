"""Build real vLLM drafters for the tests: one pool of long-lived workers per session.

Every test builds through the same few processes. The first request starts
``VDQ_INTEGRATION_JOBS`` (default: 2, capped by the CPU count) workers running
``demo/worker.py --serve`` (``tests/support/pool_worker.py``, which adds the mode
``learn``: the mapping learner, `submit_learn`) (``VLLM_TARGET_DEVICE=cpu``, plugin
installed and registered); they take cases from one queue, so a batch runs on all of
them at once. vLLM's import (10-30 s) is paid once per worker, not once per batch.

Plugin on and off in the same worker: a case is sent with the plugin's own variables
(``VLLM_DRAFT_QUANT``, ``VLLM_DRAFT_QUANT_OVERRIDES``) set for it; ``plugin=False``
means ``VLLM_DRAFT_QUANT=off``. The adapter reads them at every drafter load
(``adapter/draft_load.py:wrap_load_model``) and its layer patches pass through when no
drafter build is active, so an off-mode build is a stock vLLM build;
``tests/integration/test_stock_repro.py::test_off_mode_is_plugin_free_vllm`` proves it
against `build_isolated` (a fresh process in which no plugin is loaded at all,
``VLLM_PLUGINS`` naming no entry point). A batch whose ``env`` sets anything else
runs in such a fresh process too.

A worker that dies or outlives a case's timeout is killed (its whole session) and
restarted for the next case; the case comes back with ``error_type`` ``WorkerDied`` /
``WorkerTimeout``. Each case's own output is in ``raw["worker_log"]``.

Builds are cached for the session by what determines them: the bytes of every file in
the model folder (and in any folder ``engine_args`` names, e.g. a separate draft), the
mode, the engine arguments and the plugin's variables. An exact repeat returns a copy
of the earlier result with ``model_dir`` set to the requested folder (a build with a
parameter dump also serves a request without one). `stats` counts builds and cache
hits; ``tests/conftest.py`` prints them at the end of the session.

By default the target model is loaded before the drafter, as
``gpu_model_runner.py:GPUModelRunner.load_model`` does: the Qwen3-Next and DeepSeek
drafters share the target's quant config object, which the target's construction
mutates (packed-module mapping, name mapper).
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import hashlib
import io
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vllm_draft_quant.demo.launcher import (
    NO_PLUGIN,
    QUANTIZED_DTYPES,
    BuildRequest,
    DraftResult,
    Mode,
    ModuleInfo,
    ParamInfo,
    missing_result,
    result_from_raw,
    worker_env,
)
from vllm_draft_quant.demo.launcher import build_many as _build_in_fresh_process

__all__ = [
    "NO_PLUGIN",
    "QUANTIZED_DTYPES",
    "BuildRequest",
    "DraftResult",
    "Mode",
    "ModuleInfo",
    "ParamInfo",
    "build_drafter",
    "build_isolated",
    "build_many",
    "build_many_parallel",
    "build_target",
    "call_in_worker",
    "early",
    "early_fixture",
    "pool_size",
    "run_aside",
    "shutdown",
    "start_early",
    "stats",
    "submit_learn",
    "submit_many",
    "worker_env",
]

#: ``demo/worker.py --serve`` plus the tests' ``learn`` mode (run with ``-P``: its folder
#: stays off ``sys.path``)
POOL_WORKER = Path(__file__).with_name("pool_worker.py")
#: the variables a case may set in a shared worker (read per drafter load)
PER_CASE_ENV = ("VLLM_DRAFT_QUANT", "VLLM_DRAFT_QUANT_OVERRIDES")
#: seconds one case may take (after the worker is up), and a worker's start-up
CASE_TIMEOUT = float(os.environ.get("VDQ_CASE_TIMEOUT", 300))
STARTUP_TIMEOUT = float(os.environ.get("VDQ_STARTUP_TIMEOUT", 600))


def pool_size() -> int:
    """How many workers build at once: ``VDQ_INTEGRATION_JOBS``, default 2 (or the CPUs)."""
    return max(1, int(os.environ.get("VDQ_INTEGRATION_JOBS", min(2, os.cpu_count() or 1))))


@dataclass
class Stats:
    """What the build service did this session (printed by ``tests/conftest.py``)."""

    builds: int = 0  # cases a shared worker built
    cache_hits: int = 0  # requests answered from the cache
    isolated: int = 0  # cases built in a fresh plugin-free/one-off process
    worker_starts: int = 0
    worker_failures: int = 0  # WorkerDied / WorkerTimeout
    seconds: dict[str, float] = field(default_factory=dict)  # per worker stage, summed
    # per draft architecture: [builds, seconds building targets, seconds in total]
    by_drafter: dict[str, list[float]] = field(default_factory=dict)

    def add_timings(self, raw: Mapping[str, Any]) -> None:
        timings = raw.get("timings") or {}
        for stage, s in timings.items():
            self.seconds[stage] = self.seconds.get(stage, 0.0) + float(s)
        row = self.by_drafter.setdefault(str(raw.get("draft_architecture")), [0, 0.0, 0.0])
        row[0] += 1
        row[1] += float(timings.get("target", 0.0))
        row[2] += float(timings.get("total", 0.0))

    def lines(self) -> list[str]:
        requests = self.builds + self.cache_hits
        out = [
            f"drafter builds: {self.builds} in {self.worker_starts} shared worker start(s), "
            f"{self.cache_hits} of {requests} requests answered from the cache, "
            f"{self.isolated} built in a fresh process, {self.worker_failures} worker failure(s)"
        ]
        if self.seconds:
            parts = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(self.seconds.items()))
            out.append(f"worker time per stage (summed over builds): {parts}")
        for arch, (n, target, total) in sorted(self.by_drafter.items()):
            out.append(f"  {arch}: {n:.0f} builds, {total:.0f} s, of which targets {target:.0f} s")
        return out


stats = Stats()


# ------------------------------------------------------------------------------ workers
def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _tail(path: Path, n: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


class _Worker:
    """One ``worker.py --serve`` process, restarted after it dies or times out."""

    def __init__(self, n: int, log_root: Path, command: Sequence[str]) -> None:
        self.n = n
        self.command = list(command)  # started with the log folder as last argument
        self.log_root = log_root
        self.generation = 0
        self.proc: subprocess.Popen[str] | None = None
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.log_dir = log_root

    def _start(self) -> None:
        self.generation += 1
        self.log_dir = self.log_root / f"worker-{self.n}-{self.generation}"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = worker_env(plugin=True)
        for name in PER_CASE_ENV:  # set per case, never for the whole process
            env.pop(name, None)
        with open(self.log_dir / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                [*self.command, str(self.log_dir)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                env=env,
                text=True,
                bufsize=1,
                start_new_session=True,  # killing its session kills what it started
            )
        stats.worker_starts += 1
        self.lines = queue.Queue()
        assert self.proc.stdout is not None
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()
        answer = self._read(STARTUP_TIMEOUT)
        if not isinstance(answer, dict) or not answer.get("ready"):
            self.kill()
            raise RuntimeError(f"worker did not start ({answer}): {self._log_tail()}")

    def _read(self, timeout: float) -> dict[str, Any] | str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return "timeout"
        if line is None:
            return "died"
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def _log_tail(self, case_log: Path | None = None) -> str:
        code = self.proc.poll() if self.proc else None
        text = _tail(case_log) if case_log else ""
        return f"exit {code}: " + (text or _tail(self.log_dir / "worker.log"))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def close(self) -> None:
        """EOF on stdin ends the worker; kill it if it does not go within 10 s."""
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def run(self, req_id: int, case: dict[str, Any], env: dict[str, str | None],
            timeout: float) -> tuple[str | None, dict[str, Any] | str]:
        """(error_type, raw result or message) of one case."""
        if self.proc is None or self.proc.poll() is not None:
            try:
                self._start()
            except (RuntimeError, OSError) as e:
                return "WorkerDied", str(e)
        assert self.proc is not None and self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps({"id": req_id, "case": case, "env": env}) + "\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # it died: the read below says so
        answer = self._read(timeout)
        case_log = self.log_dir / f"case-{req_id}.log"
        if answer == "timeout":
            self.kill()
            return "WorkerTimeout", f"killed after {timeout:.0f} s: {_tail(case_log)}"
        if not isinstance(answer, dict):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)  # its exit status, for the message
            message = self._log_tail(case_log)
            self.kill()
            return "WorkerDied", message
        result: dict[str, Any] = answer["result"]
        return None, result


@dataclass
class _Job:
    req_id: int
    case: dict[str, Any]
    env: dict[str, str | None]
    timeout: float
    future: Future[tuple[str | None, dict[str, Any] | str]]


class _Pool:
    """``pool_size()`` workers taking jobs from one queue (started on the first job).

    A build someone waits for now goes before the ones `start_early` queued ahead of
    their tests (priority 0, then 1; first come, first served within each)."""

    def __init__(self, command: Sequence[str] | None = None, size: int | None = None) -> None:
        self.command = list(command or [sys.executable, "-P", str(POOL_WORKER), "--serve"])
        self.size = size
        self.jobs: queue.PriorityQueue[tuple[int, int, _Job | None]] = queue.PriorityQueue()
        self.order = itertools.count()
        self.workers: list[_Worker] = []
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def submit(self, job: _Job, priority: int) -> None:
        with self.lock:
            if not self.threads:
                # made at the first job, not at import: under the session's basetemp
                # (tests/conftest.py:pytest_configure) even when this module is imported first
                log_root = Path(tempfile.mkdtemp(prefix="vdq-build-service-"))
                for n in range(self.size or pool_size()):
                    worker = _Worker(n, log_root, self.command)
                    thread = threading.Thread(target=self._serve, args=(worker,), daemon=True)
                    self.workers.append(worker)
                    self.threads.append(thread)
                    thread.start()
        self.jobs.put((priority, next(self.order), job))

    def _serve(self, worker: _Worker) -> None:
        while (job := self.jobs.get()[2]) is not None:
            try:
                job.future.set_result(worker.run(job.req_id, job.case, job.env, job.timeout))
            except BaseException as e:  # never leave a caller waiting
                job.future.set_result(("WorkerDied", f"{type(e).__name__}: {e}"))
        worker.close()

    def shutdown(self) -> None:
        with self.lock:
            for _ in self.threads:
                self.jobs.put((9, next(self.order), None))
            for thread in self.threads:
                thread.join(timeout=30)
            for worker in self.workers:
                worker.kill()
            self.threads, self.workers = [], []


_POOL = _Pool()
_IDS = itertools.count()


def shutdown() -> None:
    """Stop the workers (end of session; they also die with this process)."""
    _POOL.shutdown()


atexit.register(shutdown)


# -------------------------------------------------------------------------------- cache
def _folder_digest(folder: Path) -> str:
    """sha256 over every file's relative path and bytes, recursively."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0")
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _canonical(value: Any, model_dir: Path) -> Any:
    """``engine_args`` with every folder it names replaced by that folder's content."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v, model_dir) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, model_dir) for v in value]
    if isinstance(value, str) and os.path.isdir(value):
        same = Path(value).resolve() == model_dir.resolve()
        return {"folder": _folder_digest(Path(value)), "is_model_dir": same}
    return value


def _cache_key(req: BuildRequest, env: Mapping[str, str | None]) -> str:
    model_dir = Path(req.model_dir)
    what = {
        "model": _folder_digest(model_dir),
        "mode": req.mode,
        "engine_args": _canonical(dict(req.engine_args or {}), model_dir),
        "env": sorted(env.items()),
    }
    return hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class _Entry:
    dump: bool
    future: Future[tuple[str | None, dict[str, Any] | str]]


_CACHE: dict[str, _Entry] = {}
_CACHE_LOCK = threading.Lock()


def _case_env(plugin: bool, env: Mapping[str, str] | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {
        "VLLM_DRAFT_QUANT": None if plugin else "off",
        "VLLM_DRAFT_QUANT_OVERRIDES": os.environ.get("VLLM_DRAFT_QUANT_OVERRIDES"),
    }
    out.update(env or {})
    if (out["VLLM_DRAFT_QUANT"] or "").strip().lower() in ("", "auto"):
        out["VLLM_DRAFT_QUANT"] = None  # the default: one cache entry for both spellings
    return out


def _submit(req: BuildRequest, env: dict[str, str | None], work: Path,
            timeout: float) -> tuple[Future[tuple[str | None, dict[str, Any] | str]], bool]:
    """(future result, cache hit?) of ``req``."""
    key = _cache_key(req, env)
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None and (entry.dump or not req.dump):
            stats.cache_hits += 1
            return entry.future, True
        req_id = next(_IDS)
        case = {
            "model_dir": str(req.model_dir),
            "mode": req.mode,
            "dump_path": str(work / f"dump-{req_id}.safetensors") if req.dump else None,
            "engine_args": dict(req.engine_args or {}),
        }
        future: Future[tuple[str | None, dict[str, Any] | str]] = Future()
        _CACHE[key] = _Entry(req.dump, future)
        stats.builds += 1

    def forget_failures(f: Future[tuple[str | None, dict[str, Any] | str]]) -> None:
        error, raw = f.result()
        if error is not None:  # a dead or stuck worker: let a later request retry
            stats.worker_failures += 1
            with _CACHE_LOCK:
                if _CACHE.get(key) is not None and _CACHE[key].future is f:
                    del _CACHE[key]
        elif isinstance(raw, dict):
            stats.add_timings(raw)

    future.add_done_callback(forget_failures)
    _POOL.submit(_Job(req_id, case, env, timeout, future), 1 if _STARTING_EARLY else 0)
    return future, False


# ---------------------------------------------------------------------------- the API
def build_isolated(requests: Sequence[BuildRequest], **kwargs: Any) -> list[DraftResult]:
    """``requests`` in one fresh worker process of their own, as the demo builds (with
    ``plugin=False`` no plugin is loaded there at all); never cached."""
    stats.isolated += len(requests)
    return _build_in_fresh_process(requests, **kwargs)


def submit_many(
    requests: Sequence[BuildRequest],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> Callable[[], list[DraftResult]]:
    """Queue ``requests`` on the shared workers and return at once; calling the returned
    function waits for them and gives one DraftResult each, in order (see `build_many`)."""
    work = Path(workdir or tempfile.mkdtemp(prefix="vdq-harness-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(name not in PER_CASE_ENV for name in (env or {})):
        results = build_isolated(requests, plugin=plugin, env=env, workdir=work)
        return lambda: results
    case_env = _case_env(plugin, env)
    t0 = time.perf_counter()
    submitted = [_submit(req, case_env, work, timeout or CASE_TIMEOUT) for req in requests]

    def collect() -> list[DraftResult]:
        results = []
        for req, (future, hit) in zip(requests, submitted, strict=True):
            error, raw = future.result()
            if error is not None:
                results.append(missing_result(req, error, str(raw)))
                continue
            assert isinstance(raw, dict)
            raw = copy.deepcopy(raw)
            raw["cache_hit"] = hit
            raw["worker_elapsed"] = time.perf_counter() - t0
            results.append(result_from_raw(req.model_dir, raw))
        return results

    return collect


def call_in_worker(call: str, *args: Any, timeout: float | None = None) -> tuple[Any, str]:
    """Run ``"module:function"(*args)`` in one of the workers (mode ``call``; never cached):
    (its value, what it printed)."""
    future: Future[tuple[str | None, dict[str, Any] | str]] = Future()
    case = {"mode": "call", "call": call, "args": list(args)}
    _POOL.submit(_Job(next(_IDS), case, _case_env(True, None), timeout or CASE_TIMEOUT,
                      future), 0)
    error, raw = future.result()
    if error is not None or not isinstance(raw, dict):
        raise RuntimeError(f"{call} in a build worker: {error}: {raw}")
    if raw.get("error_type"):
        raise RuntimeError(f"{call} in a build worker: {raw['error_type']}: "
                           f"{raw.get('error_message')}")
    return raw["value"], _tail(Path(raw["worker_log"]))


def submit_learn(
    cases: Sequence[tuple[Path, Mapping[str, Any] | None]], *, timeout: float | None = None,
) -> Callable[[], list[dict[str, Any] | str]]:
    """Queue mapping-learning cases (model folder, extra EngineArgs) on the same workers
    (mode ``learn``: ``demo/worker.py:learn_case``, cached like builds); calling the
    returned function gives per case ``adapter/learn_main.py``'s JSON body, or the
    worker's failure as one line."""
    work = Path(tempfile.mkdtemp(prefix="vdq-learn-"))
    env = _case_env(True, None)
    submitted = [_submit(BuildRequest(Path(m), "learn", dump=False, engine_args=extra), env,
                         work, timeout or CASE_TIMEOUT)[0] for m, extra in cases]

    def collect() -> list[dict[str, Any] | str]:
        out: list[dict[str, Any] | str] = []
        for future in submitted:
            error, raw = future.result()
            out.append(f"{error}: {raw}" if error is not None or not isinstance(raw, dict)
                       else copy.deepcopy(raw["learn"]))
        return out

    return collect


def build_many(
    requests: Sequence[BuildRequest],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> list[DraftResult]:
    """Build ``requests`` on the shared workers (in parallel); one DraftResult each, in order.

    ``timeout``: seconds per case (default ``VDQ_CASE_TIMEOUT``, 300). Dumps go to
    ``workdir`` (default: a new temporary folder). ``env`` may set the plugin's own
    variables; any other variable sends the whole batch to a fresh process.
    """
    return submit_many(requests, plugin=plugin, env=env, timeout=timeout, workdir=workdir)()


# ------------------------------------------------------------------- builds started early
_EARLY: dict[str, Callable[[], Any]] = {}
_STARTING_EARLY = False  # set while start_early runs: its builds queue behind on-demand ones


def start_early(key: str, start: Callable[[], Callable[[], Any]]) -> None:
    """Run ``start`` now (it writes checkpoints and queues their builds with `submit_many`)
    and keep what it returns for `early` (``tests/integration/conftest.py`` does this for
    every selected module, right after collection, so the workers never wait for pytest)."""
    global _STARTING_EARLY
    _STARTING_EARLY = True
    out = io.StringIO()  # what the CLI commands print (pytest captures nothing yet)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            _EARLY[key] = start()
    finally:
        _STARTING_EARLY = False


Start = Callable[[Any, Path], Callable[[], Any]]


def early_fixture(start: Start) -> Any:
    """A module-scoped fixture, named like ``start`` without ``start_``, whose value is
    what the function ``start(session, root)`` returns gives; ``start`` writes the
    checkpoints under ``root`` and queues their builds (`submit_many`). It is listed in
    its module's ``EARLY_BUILDS``, so ``tests/integration/conftest.py`` starts it right
    after collection; the fixture takes those builds (`early`) or starts them itself::

        def start_built(session, root): ...  # -> () -> value
        built = early_fixture(start_built)
    """
    import pytest

    name = start.__name__.removeprefix("start_")
    module = start.__module__
    vars(sys.modules[module]).setdefault("EARLY_BUILDS", {})[name] = start

    @pytest.fixture(scope="module", name=name)
    def fixture(request: Any, tmp_path_factory: Any) -> Any:
        return early(
            f"{module}:{name}", lambda: start(request.session, tmp_path_factory.mktemp(name))
        )

    return fixture


_ASIDE: list[ThreadPoolExecutor] = []


def run_aside(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
    """Run ``fn`` (a test's own fresh vLLM process: the plugin-free build, the demo, the
    entry-point checks) on one of two threads beside the build workers; the test calls
    ``.result()`` (which re-raises what ``fn`` raised)."""
    if not _ASIDE:
        _ASIDE.append(ThreadPoolExecutor(2, thread_name_prefix="vdq-aside"))
    return _ASIDE[0].submit(fn, *args, **kwargs)


def early(key: str, start: Callable[[], Callable[[], Any]]) -> Any:
    """The value of the builds `start_early` started under ``key``, else start them now;
    either way wait for them and return what ``start``'s function returns."""
    finish = _EARLY.pop(key, None) or start()
    return finish()


def build_many_parallel(
    requests: Sequence[BuildRequest],
    *,
    plugin: bool,
    jobs: int = 2,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> list[DraftResult]:
    """`build_many` (every batch already runs on all of the pool's workers; ``jobs`` is
    kept for callers and ignored: the pool size is ``VDQ_INTEGRATION_JOBS``)."""
    del jobs
    return build_many(requests, plugin=plugin, env=env, timeout=timeout, workdir=workdir)


def build_drafter(
    model_dir: str | os.PathLike[str],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    with_target: bool = True,
    workdir: Path | None = None,
) -> DraftResult:
    """Build the drafter of ``model_dir`` as vLLM's V1 proposer does (on a shared worker)."""
    mode: Mode = "target+draft" if with_target else "draft"
    return build_many(
        [BuildRequest(Path(model_dir), mode)], plugin=plugin, env=env, timeout=timeout,
        workdir=workdir,
    )[0]


def build_target(
    model_dir: str | os.PathLike[str],
    *,
    plugin: bool,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    workdir: Path | None = None,
) -> DraftResult:
    """Build only the target model (same loader path); see ``DraftResult.target_modules``."""
    return build_many(
        [BuildRequest(Path(model_dir), "target", dump=False)], plugin=plugin, env=env,
        timeout=timeout, workdir=workdir,
    )[0]
