"""The vllm.general_plugins entry point: cheap, re-entrant, never raising, version-aware.

Each check runs in a process of its own (patches are process-global): a child forked
from one interpreter that has imported vLLM's top package and nothing of the plugin,
with the check's variables set (``_FORK_SERVER``; one vLLM import for all checks
instead of one each). It starts right after collection, beside the build workers; each
test reads its own result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from support.harness import early_fixture, run_aside

pytestmark = pytest.mark.integration


#: runs every check's script in a child forked from one interpreter that has imported
#: vLLM's top package (torch, ``vllm.envs``, ``vllm.logger``; no model loader, no
#: platform), as vLLM's own processes have when they load plugins. Each child gets its
#: script's variables, then runs the script; its output goes to a file of its own.
_FORK_SERVER = """
import json, os, sys, traceback
import vllm  # noqa: F401 - what every child starts from
jobs = json.loads(sys.stdin.read())
pids = {}
for key, job in jobs.items():
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.environ.pop("VLLM_DRAFT_QUANT", None)
            os.environ.update(job["env"])
            for fd, path in ((1, job["out"]), (2, job["out"] + ".err")):
                f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                os.dup2(f, fd)
                os.close(f)
            exec(compile(job["code"], key, "exec"), {"__name__": "__main__"})
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    pids[pid] = key
codes = {}
for _ in range(len(pids)):
    pid, status = os.wait()
    codes[pids[pid]] = os.waitstatus_to_exitcode(status)
print(json.dumps(codes))
sys.stdout.flush()
os._exit(0)
"""


def _run_all(scripts: dict[str, tuple[str, dict[str, str]]], root: Path) -> dict[str, Any]:
    """Each script's last printed line (JSON), or the AssertionError of its failure."""
    root.mkdir(parents=True, exist_ok=True)
    jobs = {key: {"code": textwrap.dedent(code), "env": env, "out": str(root / f"{key}.out")}
            for key, (code, env) in scripts.items()}
    env = {k: v for k, v in os.environ.items() if k != "VLLM_DRAFT_QUANT"}
    env["VLLM_TARGET_DEVICE"] = "cpu"
    proc = subprocess.run([sys.executable, "-c", _FORK_SERVER], input=json.dumps(jobs),
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    codes = json.loads(proc.stdout.strip().splitlines()[-1])
    out: dict[str, Any] = {}
    for key, job in jobs.items():
        printed = Path(job["out"]).read_text()
        err = Path(job["out"] + ".err").read_text()
        out[key] = (json.loads(printed.strip().splitlines()[-1]) if codes[key] == 0
                    else AssertionError(f"{key}: exit {codes[key]}: {err[-3000:]}"))
    return out


class _Result:
    """One script's result out of the fork server's run (``.result()`` as a Future's)."""

    def __init__(self, run: Future[dict[str, Any]], key: str) -> None:
        self.run, self.key = run, key

    def result(self) -> dict[str, Any]:
        value = self.run.result()[self.key]
        if isinstance(value, AssertionError):
            raise value
        result: dict[str, Any] = value
        return result


#: register() with vLLM's log handler writing into a buffer (vLLM logs to stdout)
_LOGGED = """
    import io, json, logging
    from vllm.config.logging import LoggingConfig
    from vllm.logger import configure_logging
    configure_logging(LoggingConfig())  # what vLLM's entry points do before plugins load
    buf = io.StringIO()
    for h in logging.getLogger("vllm").handlers:
        h.setStream(buf)
    from vllm_draft_quant.adapter import register
    register()
    from vllm import envs
    known = [v for v in ("VLLM_DRAFT_QUANT", "VLLM_DRAFT_QUANT_OVERRIDES")
             if v in envs.environment_variables]
    print(json.dumps({"log": buf.getvalue(), "known": known,
                      "handlers": len(logging.getLogger("vllm").handlers)}))
"""

#: each check's script and environment: a forked child each
SCRIPTS: dict[str, tuple[str, dict[str, str]]] = {
    "register_is_lazy_and_reentrant": (
        """
        import json, sys
        from vllm_draft_quant.adapter import register, patches
        register(); register()
        lazy = "vllm.model_executor.model_loader.base_loader" not in sys.modules
        from vllm.model_executor.model_loader.base_loader import BaseModelLoader
        register()
        print(json.dumps({"lazy": lazy, "originals": sorted(patches.ORIGINALS),
                          "marked": getattr(BaseModelLoader.load_model, patches._MARK, None)}))
    """,
        {},
    ),
    "layer_patches_are_idempotent_and_keep_originals": (
        """
        import json
        from vllm_draft_quant.adapter import patches
        from vllm.model_executor.layers.linear import LinearBase
        orig = LinearBase.__init__
        first = patches.apply_layer_patches()
        second = patches.apply_layer_patches()
        wrapped = LinearBase.__init__
        patches.remove_all()
        print(json.dumps({"first": first, "second": second,
                          "restored": LinearBase.__init__ is orig, "changed": wrapped is not orig}))
    """,
        {},
    ),
    "off_mode_installs_nothing": (
        """
        import json
        from vllm_draft_quant.adapter import register, patches
        from vllm.model_executor.model_loader.base_loader import BaseModelLoader
        register()
        print(json.dumps({"originals": sorted(patches.ORIGINALS)}))
    """,
        {"VLLM_DRAFT_QUANT": "off"},
    ),
    "unsupported_vllm_warns_once_and_stands_aside": (
        """
        import json, logging
        records = []
        class H(logging.Handler):
            def emit(self, rec): records.append(rec.getMessage())
        logging.getLogger("vllm.draft_quant").addHandler(H())
        from vllm_draft_quant.adapter import register, patches, compat
        compat.vllm_version = lambda: "0.40.1"
        register(); register()
        from vllm.model_executor.model_loader.base_loader import BaseModelLoader
        print(json.dumps({"originals": sorted(patches.ORIGINALS), "warnings": records}))
    """,
        {},
    ),
    "unsupported_vllm_in_strict_mode_is_a_clear_error": (
        """
        import json
        from vllm_draft_quant.adapter import register, compat
        from vllm_draft_quant.errors import UnsupportedVllmError
        compat.vllm_version = lambda: "0.32.9"
        try:
            register(); print(json.dumps({"raised": None}))
        except UnsupportedVllmError as e:
            print(json.dumps({"raised": str(e)}))
    """,
        {"VLLM_DRAFT_QUANT": "strict"},
    ),
    "bad_mode_value_never_takes_vllm_down": (
        """
        import json
        from vllm_draft_quant.adapter import register, patches
        register()
        print(json.dumps({"originals": sorted(patches.ORIGINALS)}))
    """,
        {"VLLM_DRAFT_QUANT": "sometimes"},
    ),
    # issue 16: warnings through vLLM's logger (its format, VLLM_LOGGING_LEVEL); the
    # plugin's variables known to vLLM in every mode, off included
    "warning_in_vllm_format": (_LOGGED, {"VLLM_DRAFT_QUANT": "sometimes"}),
    "warning_follows_vllm_logging_level": (
        _LOGGED, {"VLLM_DRAFT_QUANT": "sometimes", "VLLM_LOGGING_LEVEL": "ERROR"}),
    "variables_known_to_vllm_when_off": (_LOGGED, {"VLLM_DRAFT_QUANT": "off"}),
}
Runs = dict[str, _Result]


def start_runs(session: pytest.Session, root: Path) -> Callable[[], Runs]:
    """Start the fork server beside the build workers (``support.harness.run_aside``)."""
    run = run_aside(_run_all, SCRIPTS, root / "scripts")
    runs = {key: _Result(run, key) for key in SCRIPTS}
    return lambda: runs


runs = early_fixture(start_runs)


def test_entry_point_is_declared_for_vllm():
    from importlib.metadata import entry_points

    eps = entry_points(group="vllm.general_plugins")
    assert any(ep.value == "vllm_draft_quant.adapter:register" for ep in eps)


def test_register_is_lazy_and_reentrant(runs: Runs) -> None:
    r = runs["register_is_lazy_and_reentrant"].result()
    assert r["lazy"], "register() imported vLLM's model loader eagerly"
    assert r["originals"] == ["P1 BaseModelLoader.load_model"]
    assert r["marked"] == "P1 BaseModelLoader.load_model"


def test_layer_patches_are_idempotent_and_keep_originals(runs: Runs) -> None:
    r = runs["layer_patches_are_idempotent_and_keep_originals"].result()
    assert r == {"first": 3, "second": 0, "restored": True, "changed": True}


def test_off_mode_installs_nothing(runs: Runs) -> None:
    r = runs["off_mode_installs_nothing"].result()
    assert r["originals"] == []


def test_unsupported_vllm_warns_once_and_stands_aside(runs: Runs) -> None:
    r = runs["unsupported_vllm_warns_once_and_stands_aside"].result()
    assert r["originals"] == []
    assert len(r["warnings"]) == 1 and "0.40.1" in r["warnings"][0]


def test_unsupported_vllm_in_strict_mode_is_a_clear_error(runs: Runs) -> None:
    r = runs["unsupported_vllm_in_strict_mode_is_a_clear_error"].result()
    assert r["raised"] and "0.32.9" in r["raised"] and ">=0.33.0,<0.34" in r["raised"]


def test_bad_mode_value_never_takes_vllm_down(runs: Runs) -> None:
    r = runs["bad_mode_value_never_takes_vllm_down"].result()
    assert r["originals"] == []


def test_warnings_go_through_vllm_logger(runs: Runs) -> None:
    """The "disabled" warning went to a plain Python logger: no vLLM prefix, deaf to
    VLLM_LOGGING_LEVEL."""
    r = runs["warning_in_vllm_format"].result()
    assert r["handlers"], "vLLM's logging configuration installed no handler"
    line = next(x for x in r["log"].splitlines() if "vllm-draft-quant disabled" in x)
    assert "WARNING" in line and "[__init__.py:" in line and "'sometimes'" in line
    assert runs["warning_follows_vllm_logging_level"].result()["log"] == ""


def test_plugin_variables_known_to_vllm_in_every_mode(runs: Runs) -> None:
    for key in ("variables_known_to_vllm_when_off", "warning_in_vllm_format"):
        assert runs[key].result()["known"] == ["VLLM_DRAFT_QUANT", "VLLM_DRAFT_QUANT_OVERRIDES"]
