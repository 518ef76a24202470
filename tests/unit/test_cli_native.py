"""The CLI speaks as vLLM and the Hugging Face tools do (issue 16, points 4, 5, 7, 8, 9):
a plan table readable at a glance and safe in a pipe, JSON with versions for every
command, overrides that report what they miss, vLLM's dotted --speculative-config,
and an ``env`` command. Each test fails on the code before the issue."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_support import ckpt, digest, run_cli

from vllm_draft_quant.cli.demo import write_demo_checkpoint

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vllm_draft_quant.cli.main", *args],
                          env=full, capture_output=True, text=True, timeout=120, input=stdin)


# ------------------------------------------------------------------ 4: the plan table
def test_demo_plan_fits_one_screen(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Was 24 lines of up to 251 characters, the same root cause printed five times."""
    model = write_demo_checkpoint(tmp_path / "demo")
    code, out, _ = run_cli(capsys, "plan", model)
    lines = out.splitlines()
    assert code == 1
    assert len(lines) <= 24
    assert all(len(line) <= 100 for line in lines if str(model) not in line), lines
    assert out.count("no exclusion matches") == 1  # the root cause, once
    rows = [line for line in lines if line.startswith("0 ")]
    assert len(rows) == 6 and all(line.split()[2:4] == ["BF16", "BF16"] for line in rows)
    assert "unquantized" not in "\n".join(rows)  # users' words
    assert "CONFLICT" not in out and sum("handled [1]" in r for r in rows) == 5
    assert "\x1b[" not in out


def test_handled_conflicts_are_not_red_on_a_terminal(tmp_path: Path) -> None:
    """In auto mode the plugin already builds those modules as stored: no red error."""
    model = write_demo_checkpoint(tmp_path / "demo")
    from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
    from vllm_draft_quant.cli.plan_cmd import render

    class Tty:
        text = ""

        def write(self, s: str) -> int:
            self.text += s
            return len(s)

        def isatty(self) -> bool:
            return True

    facts = load_facts(model)
    out = Tty()
    os.environ.pop("NO_COLOR", None)
    render(facts, plan_from_facts(facts), out)  # type: ignore[arg-type]
    assert "\x1b[1;31m" not in out.text
    strict = Tty()
    render(facts, plan_from_facts(facts, mode="strict", raise_conflicts=False), strict)  # type: ignore[arg-type]
    assert "\x1b[1;31m" in strict.text and "CONFLICT [1]" in strict.text


def test_glm_two_layers_one_cause(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """GLM with two NextN layers took 54 lines: one row per module, causes once."""
    model = ckpt(tmp_path / "m", "glm4_moe", layout="a", num_mtp_layers=2)
    code, out, _ = run_cli(capsys, "plan", model)
    assert code == 1
    lines = out.splitlines()
    assert {line.split()[0] for line in lines if line[:2] in ("0 ", "1 ")} == {"0", "1"}
    assert out.count("[1] handled") == 1
    assert all(len(line) <= 100 for line in lines if str(model) not in line)


def test_verbose_keeps_the_reasons(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write_demo_checkpoint(tmp_path / "demo")
    _, out, _ = run_cli(capsys, "plan", model, "--verbose")
    assert out.count("why: ") == 6 and out.count("conflict: config says nvfp4") == 5


def test_plan_in_a_pipe(tmp_path: Path) -> None:
    """`plan X | head` ended with "error: [Errno 32] Broken pipe" and exit 2. The pipe's
    reader is gone before plan writes (as ``head`` is once it has its lines), so the
    broken pipe is certain, not a race."""
    model = ckpt(tmp_path / "m", "glm4_moe", layout="a", num_mtp_layers=2)
    read, write = os.pipe()
    os.close(read)
    try:
        r = subprocess.run([sys.executable, "-m", "vllm_draft_quant.cli.main", "plan", str(model)],
                           stdout=write, stderr=subprocess.PIPE, text=True, timeout=120,
                           env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        os.close(write)
    assert r.stderr == "", r.stderr
    assert r.returncode == 0


# ------------------------------------------------------------------ 5: JSON
def test_fix_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    before = digest(model)
    code, out, _ = run_cli(capsys, "fix", model, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["kind"] == "fix" and doc["changed"] and doc["written"] == []
    assert doc["schema_version"] == 2 and doc["tool"] == "vllm-draft-quant" and "vllm_version" in doc
    assert "model.layers.2*" in doc["added"] and set(doc["diff"]) and digest(model) == before
    code, out, _ = run_cli(capsys, "fix", model, "--json", "--write")
    doc = json.loads(out)
    assert code == 0 and doc["written"] and digest(model) != before


def test_graft_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from _cli_support import pair

    target, source = pair(tmp_path, "step3p5")
    code, out, _ = run_cli(capsys, "graft", target, "--from", source, "--dry-run", "--json")
    doc = json.loads(out)
    assert code == 0 and doc["kind"] == "graft" and doc["dry_run"] and not doc["written"]
    assert doc["units"] and doc["units"][0]["action"] == "copy" and doc["changed"]
    code, out, _ = run_cli(capsys, "graft", target, "--from", source, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["written"] and doc["shard"]


def test_plan_json_new_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = write_demo_checkpoint(tmp_path / "demo")
    _, out, _ = run_cli(capsys, "plan", model, "--json")
    doc = json.loads(out)
    head = next(m for m in doc["modules"] if m["module"].endswith("shared_head.head"))
    assert head["stored"] == "unquantized" and head["layer"] == 0
    assert head["checkpoint_file"] == "model-mtp.safetensors"
    assert all(c["handled"] and c["cause"] for c in doc["conflicts"])


# ------------------------------------------------------------------ 7: overrides
def test_unmatched_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A pattern that matches nothing was silently ignored."""
    model = ckpt(tmp_path / "m", "step3p5", layout="b")
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({"version": 1, "modules": {"model.layers.2.mtp_blok.*": "fp8"}}))
    code, out, _ = run_cli(capsys, "plan", model, "--overrides", ov)
    assert code == 0 and "warning: override 'model.layers.2.mtp_blok.*' matches no draft module" in out
    code, out, _ = run_cli(capsys, "plan", model, "--overrides", ov, "--json")
    assert json.loads(out)["warnings"]
    code, _, err = run_cli(capsys, "plan", model, "--overrides", ov, "--mode", "strict")
    assert code == 1 and "matches no draft module" in err


def test_override_against_the_tensors_is_a_conflict(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Forcing nvfp4 onto a BF16 head showed as an ordinary decision."""
    model = ckpt(tmp_path / "m", "step3p5", layout="b")
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({"version": 1, "modules": {"model.layers.2.shared_head.head": "nvfp4"}}))
    code, out, _ = run_cli(capsys, "plan", model, "--overrides", ov)
    assert code == 1
    row = next(line for line in out.splitlines() if " shared_head.head " in line)
    assert row.split()[2:5] == ["BF16", "NVFP4", "override"] and "CONFLICT [1]" in row
    assert "[1] conflict (1 module): override 'model.layers.2.shared_head.head' asks for nvfp4" in out


# ------------------------------------------------------------------ 8: dotted form
def test_dotted_speculative_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """vLLM's own dotted form was refused ("unrecognized arguments")."""
    target = ckpt(tmp_path / "t", "qwen3_next", layout="a", with_mtp=False)
    draft = ckpt(tmp_path / "d", "qwen3_next", layout="b")
    as_json = run_cli(capsys, "plan", target, "--speculative-config",
                      json.dumps({"method": "mtp", "model": str(draft),
                                  "num_speculative_tokens": 1}), "--json")
    dotted = run_cli(capsys, "plan", target, "--speculative-config.method", "mtp",
                     f"--speculative-config.model={draft}",
                     "--speculative-config.num_speculative_tokens", "1", "--json")
    assert as_json[0] == dotted[0] == 0 and as_json[1] == dotted[1]
    code, _, err = run_cli(capsys, "plan", target, "--speculative-config", "{}",
                           "--speculative-config.method", "mtp")
    assert code == 2 and "both as JSON and in the dotted form" in err
    code, _, err = run_cli(capsys, "plan", target, "--speculative-config.method")
    assert code == 2 and "needs a value" in err


# ------------------------------------------------------------------ 9: env
def test_env_command() -> None:
    """Nothing like `vllm collect-env` / `hf env` existed (--version printed 0.1.0 only)."""
    r = _cli("env", "--json", env={"VLLM_DRAFT_QUANT": "strict", "VLLM_PLUGINS": "other"})
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    assert info["vllm"] and info["torch"] and info["supported_vllm"].startswith(">=")
    assert info["vllm_supported"] is True
    assert info["entry_point"]["registered"] and not info["entry_point"]["enabled"]
    assert info["settings"]["VLLM_DRAFT_QUANT"] == "strict" and info["mode"] == "strict"
    r = _cli("env")
    assert r.returncode == 0 and "registered as 'draft_quant' and enabled" in r.stdout
    r = _cli("env", env={"VLLM_PLUGINS": "other"})
    assert "NOT enabled" in r.stdout and "VLLM_PLUGINS='other'" in r.stdout


def test_env_imports_neither_vllm_nor_torch() -> None:
    code = ("import sys; from vllm_draft_quant.cli.main import main; main(['env']); "
            "print(sorted(m for m in ('vllm', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.splitlines()[-1] == "[]", r.stderr


# ------------------------------------------------------------------ exit codes
def test_exit_codes_are_documented() -> None:
    from vllm_draft_quant.cli import main as cli_main

    readme = (ROOT / "README.md").read_text()
    for code in (0, 1, 2, 3, 130):
        assert f"| {code} |" in readme
    assert "130 interrupted" in cli_main._EPILOG


# ------------------------------------------------------------------ 3, 10: docs and logging
def test_adapter_logs_only_through_vllm() -> None:
    """Two of three adapter modules used a plain Python logger (no vLLM prefix, deaf to
    VLLM_LOGGING_LEVEL); tests/integration/test_hf_cache_load.py checks the lines."""
    for path in (ROOT / "vllm_draft_quant").rglob("*.py"):
        text = path.read_text()
        if path.parts[-2] == "adapter" and path.name != "compat.py":  # compat.logger()
            assert "logging.getLogger" not in text and "import logging" not in text, path


def test_readme_first_screen_and_contents() -> None:
    readme = (ROOT / "README.md").read_text()
    lines = readme.splitlines()
    assert lines[3] == ("python3 -m venv .venv && .venv/bin/pip install -e . && "
                        ".venv/bin/vllm-draft-quant demo")
    assert lines[4] == ('python3 -m venv .venv && .venv/bin/pip install -e ".[test]" && '
                        ".venv/bin/python -m pytest")
    first_screen = "\n".join(lines[:24])
    assert "pip install vllm-draft-quant" in first_screen and "vllm serve " in first_screen
    assert "../" not in readme and "FINDINGS" not in readme  # nothing outside the repo
    for needle in ("load_merged_column_weight", "KeyError", "falsely use random initialization",
                   "fc.input_scale", "Some parameters like", "zero acceptance", "VLLM_PLUGINS",
                   "Step-3.5-Flash NVFP4", "Qwen3-Next FP8", "DeepSeek-V3 FP8", "GLM-4.6 FP8",
                   "GLM-5 NVFP4", "Kimi-K2", "--fail-on-environ-validation", "def plan(",
                   "schema_version"):
        assert needle in readme, needle
    assert "huggingface-cli" not in readme
