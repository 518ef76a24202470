"""The vllm.general_plugins entry point: cheap, re-entrant, never raising, version-aware.

Each check runs in a fresh interpreter: patches are process-global. The interpreters
are started right after collection, beside the build workers; each test reads its own.
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


def _run(code: str, env: dict[str, str]) -> dict[str, Any]:
    full_env = {k: v for k, v in os.environ.items() if k != "VLLM_DRAFT_QUANT"}
    full_env.update(VLLM_TARGET_DEVICE="cpu", **env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
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

#: each check's script and environment: a fresh interpreter each
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
Runs = dict[str, "Future[dict[str, Any]]"]


def start_runs(session: pytest.Session, root: Path) -> Callable[[], Runs]:
    """Start every script beside the build workers (``support.harness.run_aside``)."""
    runs = {key: run_aside(_run, code, env) for key, (code, env) in SCRIPTS.items()}
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
