"""``plan``: the human table, --json, modes, overrides, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_support import FAMILIES, PRODUCERS, ckpt, digest, run_cli

from vllm_draft_quant import plan as core_plan


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_conflicts_shown_and_exit_1(family: str, producer: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", family, producer=producer, layout="a")
    before = digest(model)
    code, out, err = run_cli(capsys, "plan", model)
    assert code == 1, err
    assert "draft layer 0: checkpoint " in out
    assert "CONFLICT" in out and "conflict: config says" in out
    summary = [line for line in out.splitlines() if "conflicts:" in line]
    assert len(summary) == 1 and "conflicts: 0" not in summary[0]
    assert f"vllm-draft-quant fix {model}" in out
    assert digest(model) == before  # plan never writes


@pytest.mark.parametrize("family", FAMILIES)
def test_clean_layout_exit_0(family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    model = ckpt(tmp_path / "m", family, layout="b")
    code, out, _ = run_cli(capsys, "plan", model)
    assert code == 0
    assert "CONFLICT" not in out and out.rstrip().endswith("conflicts: 0")
    for m in core_plan(model).modules:  # every module appears, relative to its layer
        assert m.module.rsplit(".", 1)[-1] in out


@pytest.mark.parametrize("family", FAMILIES)
def test_json_is_the_plan_json(family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                               ) -> None:
    model = ckpt(tmp_path / "m", family, layout="d")
    code, out, _ = run_cli(capsys, "plan", model, "--json")
    expected = core_plan(model)
    assert out == expected.to_json() + "\n"
    assert code == (1 if expected.conflicts else 0)
    assert json.loads(out)["drafter"] == expected.drafter


def test_table_layout_step3p5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="d")
    _, out, _ = run_cli(capsys, "plan", model)
    header = next(line for line in out.splitlines() if "MODULE" in line)
    assert header.split() == ["MODULE", "STORED", "DECISION", "SOURCE"]
    row = next(line for line in out.splitlines() if line.strip().startswith("mtp_block.mlp.gate_up_proj"))
    assert row.split()[1:3] == ["modelopt-nvfp4", "nvfp4"]
    assert any(line.strip().startswith("why:") for line in out.splitlines())


def test_qwen_shared_modules_listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "qwen3_next", layout="b")
    _, out, _ = run_cli(capsys, "plan", model)
    assert "modules shared by all draft layers" in out and "mtp.fc" in out


def test_strict_conflict_is_one_line_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    code, out, err = run_cli(capsys, "plan", model, "--mode", "strict")
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "conflict" in err and "Traceback" not in err
    code, _, _ = run_cli(capsys, "plan", ckpt(tmp_path / "ok", "step3p5", layout="b"),
                         "--mode", "strict")
    assert code == 0


def test_overrides_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="b")
    ov = tmp_path / "ov.json"
    ov.write_text(json.dumps({"version": 1, "modules": {"model.layers.2.shared_head.head": "unquantized"}}))
    code, out, _ = run_cli(capsys, "plan", model, "--overrides", ov, "--json")
    head = next(m for m in json.loads(out)["modules"] if m["module"].endswith("shared_head.head"))
    assert head["source"] == "override" and code == 0
    ov.write_text("{not json")
    code, out, err = run_cli(capsys, "plan", model, "--overrides", ov)
    assert code == 2 and out == "" and err.count("\n") == 1


def test_drafter_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="b")
    code, out, _ = run_cli(capsys, "plan", model, "--drafter", "Step3p5MTP", "--json")
    assert code == 0 and json.loads(out)["drafter"] == "Step3p5MTP"
    code, out, err = run_cli(capsys, "plan", model, "--drafter", "NoSuchMTP")
    assert code == 2 and "NoSuchMTP" in err and err.count("\n") == 1


def _bad_inputs(tmp_path: Path) -> dict[str, Path]:
    missing = tmp_path / "missing"
    malformed = ckpt(tmp_path / "malformed", "step3p5", layout="b")
    (malformed / "config.json").write_text('{"architectures": ["Step3p5ForCausalLM"], ')
    unknown = ckpt(tmp_path / "unknown", "step3p5", layout="b")
    cfg = json.loads((unknown / "config.json").read_text())
    cfg["architectures"] = ["LlamaForCausalLM"]
    (unknown / "config.json").write_text(json.dumps(cfg))
    bad_hq = ckpt(tmp_path / "bad_hq", "deepseek_v3", layout="b")
    (bad_hq / "hf_quant_config.json").write_text('{"quantization": "NVFP4"}')
    no_mtp = ckpt(tmp_path / "no_mtp", "qwen3_next", layout="a", with_mtp=False)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    return {"missing": missing, "malformed": malformed, "unknown": unknown, "bad_hq": bad_hq,
            "no_mtp": no_mtp, "file": a_file}


@pytest.mark.parametrize("case", ["missing", "malformed", "unknown", "bad_hq", "no_mtp", "file"])
@pytest.mark.parametrize("command", ["plan", "fix", "fix --write", "graft", "graft --dry-run"])
def test_bad_input_exit_2_nothing_written(case: str, command: str, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    model = _bad_inputs(tmp_path)[case]
    source = ckpt(tmp_path / "source", "step3p5", layout="a")
    before, src_before = digest(tmp_path), digest(source)
    argv: list[str | Path] = [*command.split()[:1], model, *command.split()[1:]]
    if command.startswith("graft"):
        argv += ["--from", source]
    code, out, err = run_cli(capsys, *argv)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("vllm-draft-quant: error: ")
    assert "Traceback" not in err
    assert digest(tmp_path) == before and digest(source) == src_before


# ------------------------------------------------------------------- issue 18: reliability
def _head(out: str) -> dict[str, str]:
    return next(m for m in json.loads(out)["modules"] if m["module"].endswith("shared_head.head"))


def test_plan_reads_the_overrides_vllm_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 11: vLLM processes read VLLM_DRAFT_QUANT_OVERRIDES; plan did not."""
    model = ckpt(tmp_path / "m", "step3p5", layout="b")
    env = tmp_path / "env.json"
    env.write_text(json.dumps({"modules": {"model.layers.2.shared_head.head": "unquantized"}}))
    flag = tmp_path / "flag.json"
    flag.write_text(json.dumps({"modules": {"model.layers.2.shared_head.head": "fp8"}}))
    monkeypatch.setenv("VLLM_DRAFT_QUANT_OVERRIDES", str(env))
    code, out, err = run_cli(capsys, "plan", model, "--json")
    assert _head(out)["source"] == "override" and _head(out)["scheme"] == "unquantized"
    assert f"overrides: {env} (from VLLM_DRAFT_QUANT_OVERRIDES)" in err
    code, out, err = run_cli(capsys, "plan", model, "--json", "--overrides", flag)
    assert _head(out)["scheme"] == "fp8"  # --overrides wins
    assert f"overrides: {flag} (from --overrides)" in err
    code, out, _ = run_cli(capsys, "plan", model)
    assert out.startswith(f"overrides: {env} (from VLLM_DRAFT_QUANT_OVERRIDES)\n")
    monkeypatch.setenv("VLLM_DRAFT_QUANT_OVERRIDES", str(tmp_path / "missing.yaml"))
    code, out, err = run_cli(capsys, "plan", model)
    assert code == 2 and err.count("\n") == 1 and "VLLM_DRAFT_QUANT_OVERRIDES" in err


@pytest.mark.parametrize(("spec", "needle"), [
    ("[" * 30_000 + "]" * 30_000, "nested"),
    ('{"method": "mtp", "n": ' + "[" * 50 + "]" * 50 + "}", "nested"),
    ('{"method": "mtp", "num_speculative_tokens": 1' + "0" * 5000 + "}", "digits"),
    ('{"method": "mtp", "num_speculative_tokens": 1e999999}', "num_speculative_tokens"),
    ('{"method": "mtp", "num_speculative_tokens": "3"}', "num_speculative_tokens"),
    ('{"method": "mtp", "num_speculative_tokens": 2.5}', "num_speculative_tokens"),
    ('{"method": "mtp", "num_speculative_tokens": true}', "num_speculative_tokens"),
    ('{"method": "mtp", "num_speculative_tokens": 0}', "num_speculative_tokens"),
    ('{"method": "mtp", "method": "eagle3"}', "twice"),
    ('{"method": NaN}', "NaN"),
    ('{"method": "mtp", "model": "' + "x" * 70_000 + '"}', "characters"),
])
def test_hostile_speculative_config_is_exit_2(spec: str, needle: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 8: deeply nested arrays or a number of thousands of digits ended in exit 3;
    a non-integer num_speculative_tokens was accepted."""
    model = ckpt(tmp_path / "m", "qwen3_next", layout="a")
    code, out, err = run_cli(capsys, "plan", model, "--speculative-config", spec)
    assert code == 2 and out == "", err
    assert err.count("\n") == 1 and needle in err and len(err) < 1000


def test_plan_rolls_back_an_interrupted_commit(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A journal left by a killed commit: plan rolls it back first and says so; the Python
    API (and so the plugin in vLLM) refuses the folder until then."""
    from vllm_draft_quant.checkpoint.facts import JOURNAL_NAME
    from vllm_draft_quant.errors import CheckpointError
    from vllm_draft_quant.repair.writer import Transaction

    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    before = digest(model)
    tx = Transaction(model)
    tx.write_bytes("config.json", b"{}")
    tx._write_journal()  # what a run killed right after writing its journal leaves
    with pytest.raises(CheckpointError, match="interrupted"):
        core_plan(model)
    code, _, err = run_cli(capsys, "plan", model)
    assert code in (0, 1) and "interrupted while committing" in err
    assert JOURNAL_NAME not in digest(model) and digest(model) == before
