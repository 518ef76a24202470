"""The console script: help with examples, --version, exit codes, one-line errors."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from _cli_support import ckpt, run_cli

from vllm_draft_quant import __version__
from vllm_draft_quant.cli import main as cli_main
from vllm_draft_quant.cli.main import SUBCOMMANDS, build_parser

COMMANDS = sorted(SUBCOMMANDS)


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"vllm-draft-quant {__version__}"


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert f"vllm-draft-quant {name}" in out  # an example per command
    assert "exit codes" in out


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help_has_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"vllm-draft-quant {command}" in out.split("examples:", 1)[1]


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys)
    assert code == 0 and "demo" in out


@pytest.mark.parametrize("argv", [["plan"], ["frobnicate"], ["graft", "x"], ["plan", "x", "--mode", "lax"]])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    assert e.value.code == 2


def test_project_error_is_one_line_without_traceback(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "plan", tmp_path / "nowhere")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("vllm-draft-quant: error: ")
    assert "Traceback" not in err


def test_debug_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--debug", "plan", tmp_path / "nowhere"], ["plan", tmp_path / "nowhere", "--debug"]):
        code, _, err = run_cli(capsys, *argv)
        assert code == 2
        assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("vllm-draft-quant:")


def test_internal_error_exit_3(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="b")

    def boom(*a: object, **k: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr("vllm_draft_quant.checkpoint.facts.plan_from_facts", boom)
    code, _, err = run_cli(capsys, "plan", model)
    assert code == 3
    assert err.count("\n") == 1 and "internal error (RuntimeError): boom second line" in err
    assert "--debug" in err


def test_interrupt_exit_130(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="b")

    def interrupt(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("vllm_draft_quant.checkpoint.facts.plan_from_facts", interrupt)
    code, _, err = run_cli(capsys, "plan", model)
    assert code == 130 and "interrupted" in err


def test_every_subcommand_is_wired() -> None:
    parser = build_parser()
    for name in COMMANDS:
        assert callable(SUBCOMMANDS[name].run)
        assert SUBCOMMANDS[name].HELP in " ".join(parser.format_help().split())


def test_console_script_entry_point() -> None:
    """The installed script runs (the package is installed editable in the venv)."""
    exe = Path(sys.executable).with_name("vllm-draft-quant")
    if not exe.exists():
        pytest.skip(f"console script not installed next to {sys.executable}")
    r = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"vllm-draft-quant {__version__}"
    r = subprocess.run([str(exe), "plan", "/nonexistent/model/dir"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == "" and r.stderr.count("\n") == 1


def test_cli_imports_neither_torch_nor_vllm() -> None:
    code = ("import sys; import vllm_draft_quant.cli.main; "
            "bad = [m for m in ('torch', 'vllm') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_terminal_is_a_bar_that_ends_in_a_summary() -> None:
    from vllm_draft_quant.cli._output import Progress

    stream = _Tty()
    with Progress(4 * 2**20, "copying", stream) as progress:
        for _ in range(4):
            progress(2**20)
    text = stream.getvalue()
    assert "\rcopying: [" in text and "100% 4.0 MiB of 4.0 MiB" in text
    last = text.rsplit("\x1b[K", 1)[1]  # the bar is erased, the summary stays
    assert re.fullmatch(r"copying: done 4\.0 MiB \(4,194,304 bytes\) in \d+\.\d\d s, "
                        r"\d+\.\d MB/s\n", last), last


def test_progress_elsewhere_is_a_line_every_ten_percent() -> None:
    from vllm_draft_quant.cli._output import Progress

    stream = io.StringIO()
    with Progress(100, "comparing", stream, done_verb="compared") as progress:
        for _ in range(20):
            progress(5)
    lines = stream.getvalue().splitlines()
    assert lines[:10] == [f"comparing: {p:3d}% ({p / 2**20:.1f} MiB of 0.0 MiB)"
                          for p in range(10, 101, 10)]
    assert lines[10].startswith("comparing: compared 0.0 MiB (100 bytes) in ")
    assert lines[10].endswith(" MB/s") and len(lines) == 11


def test_progress_after_an_error_leaves_no_summary() -> None:
    from vllm_draft_quant.cli._output import Progress

    stream = _Tty()
    with pytest.raises(OSError), Progress(100, "copying", stream) as progress:
        progress(50)
        raise OSError("disk full")
    assert "done" not in stream.getvalue() and stream.getvalue().endswith("\n")


@pytest.mark.parametrize("argv", [["plan"], ["frobnicate"], ["graft", "x"],
                                  ["plan", "x", "--mode", "lax"], ["fix", "x", "--wrte"]])
def test_usage_errors_are_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """The README promises one line per error: argparse's too (no usage block)."""
    with pytest.raises(SystemExit) as e:
        cli_main.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.count("\n") == 1 and "usage:" not in err
    assert "--help" in err
