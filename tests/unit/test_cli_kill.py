"""Real kills: fix --write and graft SIGKILLed at every step of a commit, then rerun.

A forked child runs the CLI with `repair.lock.fault_hook` set to SIGKILL itself at the
n-th time it reaches a named point (a step of staging, the journal, each rename, the
cleanup, the lock); the sweep first records every point a clean run passes, then kills
one run at each. After each kill: the folder is never read as consistent while
half-committed (`load_facts` refuses it while the journal is there); ``plan`` rolls it
back; the rerun ends exactly as an uninterrupted run (byte for byte, no lock, journal or
temporaries left). Signals (SIGTERM, SIGHUP) and leftovers of killed runs are here too.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _cli_support import ckpt, digest, pair, run_cli

from vllm_draft_quant.checkpoint.facts import JOURNAL_NAME, load_facts
from vllm_draft_quant.errors import CheckpointError
from vllm_draft_quant.repair import lock as lock_mod
from vllm_draft_quant.repair.writer import LOCK_NAME

Point = tuple[str, int]


def _child(argv: list[str], kill_at: Point | None, record: Path | None = None,
           setup: Callable[[], None] | None = None) -> int:
    """Run the CLI in a forked child; its wait status (killed: -signal)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        code = 99
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.dup2(devnull, 2)
            seen: Counter[str] = Counter()
            lines: list[str] = []

            def hook(name: str) -> None:
                seen[name] += 1
                if record is not None:
                    lines.append(f"{name} {seen[name]}")
                if kill_at == (name, seen[name]):
                    os.kill(os.getpid(), signal.SIGKILL)

            lock_mod.fault_hook = hook
            if setup is not None:
                setup()
            from vllm_draft_quant.cli.main import main

            code = main(argv)
            if record is not None:
                record.write_text("\n".join(lines))
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _points(argv: list[str], tmp: Path, setup: Callable[[], None] | None = None) -> list[Point]:
    rec = tmp / "points.txt"
    assert _child(argv, None, rec, setup) in (0, 1)
    out = []
    for line in rec.read_text().splitlines():
        name, n = line.rsplit(" ", 1)
        out.append((name, int(n)))
    return out


def _visible(d: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in d.items() if not k.startswith(".")}


def _sweep(make: Callable[[Path], list[str]], tmp_path: Path,
           capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Kill a run at each point; check the folder, let ``plan`` recover it, rerun."""
    ref_argv = make(tmp_path / "ref")
    code, _, err = run_cli(capsys, *ref_argv)
    assert code in (0, 1), err
    expected = digest(Path(ref_argv[1]))
    points = _points(make(tmp_path / "rec"), tmp_path)
    assert ("journal-written", 1) in points and ("after-rename", 1) in points
    results: dict[str, Any] = {"points": points, "journal_seen": 0, "rolled_back": 0}
    for i, at in enumerate(points):
        argv = make(tmp_path / f"k{i}")
        folder = Path(argv[1])
        pristine = digest(folder)
        assert _child(argv, at) == -signal.SIGKILL, at
        after = digest(folder)
        if JOURNAL_NAME in after:  # half-committed: never read as consistent
            results["journal_seen"] += 1
            with pytest.raises(CheckpointError, match="interrupted while committing"):
                load_facts(folder)
        else:
            assert _visible(after) in (_visible(pristine), _visible(expected)), at
        code, _, err = run_cli(capsys, "plan", folder)  # any command recovers first
        assert code in (0, 1, 2), (at, err)  # 2: a graft TARGET has no draft weights yet
        if JOURNAL_NAME in after:
            assert "interrupted while committing" in err, at
            assert _visible(digest(folder)) == _visible(pristine), at  # rolled back
            results["rolled_back"] += 1
        assert JOURNAL_NAME not in digest(folder)
        code, _, err = run_cli(capsys, *argv)
        assert code in (0, 1), (at, err)
        assert digest(folder) == expected, at  # no lock, journal or temporaries left
    # the journal is on disk exactly from its rename to its removal
    between = {"journal-written", "before-rename", "linked", "after-rename", "renames-synced"}
    assert results["journal_seen"] == sum(1 for p, _ in points if p in between)
    return results


@pytest.mark.slow
def test_kill_sweep_fix_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def make(root: Path) -> list[str]:
        return ["fix", str(ckpt(root / "m", "deepseek_v3", layout="a")), "--write"]

    r = _sweep(make, tmp_path, capsys)
    names = {p for p, _ in r["points"]}
    assert {"lock-written", "stage-written", "stage-fsynced", "backup-staged",
            "rollback-linked", "journal-staged", "journal-written", "before-rename",
            "after-rename", "linked", "renames-synced", "journal-removed", "cleanup",
            "lock-released"} <= names
    assert r["journal_seen"] == r["rolled_back"] > 0


@pytest.mark.slow
def test_kill_sweep_graft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def make(root: Path) -> list[str]:
        target, source = pair(root, "step3p5", truncate=True, sharded=True)
        return ["graft", str(target), "--from", str(source)]

    r = _sweep(make, tmp_path, capsys)
    assert sum(1 for p, _ in r["points"] if p == "after-rename") == 7
    assert r["journal_seen"] == r["rolled_back"] > 0


@pytest.mark.slow
def test_kill_sweep_graft_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--force replacing a quantized MTP block: one shard deleted, one rewritten."""
    def make(root: Path) -> list[str]:
        source = ckpt(root / "source", "qwen3_next", layout="a")
        target = ckpt(root / "target", "qwen3_next", layout="g", sharded=True)
        return ["graft", str(target), "--from", str(source), "--force"]

    r = _sweep(make, tmp_path, capsys)
    assert r["journal_seen"] == r["rolled_back"] > 0


def test_kill_during_recovery_then_rerun(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    """The recovery itself killed (at each of its undo steps) is finished by the next run."""
    def make(root: Path) -> list[str]:
        target, source = pair(root, "qwen3_next", sharded=True)
        return ["graft", str(target), "--from", str(source)]

    ref = make(tmp_path / "ref")
    assert run_cli(capsys, *ref)[0] == 0
    expected = digest(Path(ref[1]))
    for n in (1, 2, 3):
        argv = make(tmp_path / f"r{n}")
        folder = Path(argv[1])
        pristine = digest(folder)
        assert _child(argv, ("after-rename", 4)) == -signal.SIGKILL
        assert _child(["plan", str(folder)], ("before-undo", n)) == -signal.SIGKILL
        assert JOURNAL_NAME in digest(folder)
        assert run_cli(capsys, "fix", folder)[0] in (0, 1, 2)  # recovers first
        assert _visible(digest(folder)) == _visible(pristine)
        assert run_cli(capsys, *argv)[0] == 0
        assert digest(folder) == expected


def test_half_commit_is_never_read_as_consistent(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 1: a kill between the renames of hf_quant_config.json and config.json.

    Reruns used to merge both files' lists, say "nothing to change", and leave
    config.json (which stock vLLM reads first) without the entry."""
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    ref = ckpt(tmp_path / "ref", "step3p5", layout="a")
    assert run_cli(capsys, "fix", ref, "--write")[0] in (0, 1)
    real = os.replace

    def setup() -> None:
        def replace(src: Any, dst: Any, *a: Any, **k: Any) -> None:
            if Path(dst).name == "config.json":
                os.kill(os.getpid(), signal.SIGKILL)
            real(src, dst, *a, **k)
        os.replace = replace  # type: ignore[assignment]

    assert _child(["fix", str(model), "--write"], None, setup=setup) == -signal.SIGKILL
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code in (0, 1)
    assert "nothing to change" not in out
    cfg = json.loads((model / "config.json").read_text())
    hq = json.loads((model / "hf_quant_config.json").read_text())
    ref_cfg = json.loads((ref / "config.json").read_text())
    assert cfg["quantization_config"] == ref_cfg["quantization_config"]
    assert hq == json.loads((ref / "hf_quant_config.json").read_text())
    assert sorted(p for p in digest(model) if p.startswith(".")) == []


def test_killed_graft_leftovers_removed_by_the_next_run(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """Finding 10: a graft killed while streaming the shard leaves a hidden partial shard
    (and staged files); the next run removes them."""
    target, source = pair(tmp_path, "deepseek_v3", num_mtp_layers=2)

    def setup() -> None:
        from vllm_draft_quant.cli import graft as graft_cli

        class Dies:
            def __init__(self, *a: Any, **k: Any) -> None:
                self.n = 0

            def __enter__(self) -> Dies:
                return self

            def __exit__(self, *a: object) -> None:
                pass

            def __call__(self, n: int) -> None:
                self.n += 1
                if self.n == 5:
                    os.kill(os.getpid(), signal.SIGKILL)

        graft_cli.Progress = Dies  # type: ignore[attr-defined,misc]
        from vllm_draft_quant.repair import shard_io

        shard_io.CHUNK = shard_io.KERNEL_STEP = 256  # the fifth progress step is mid-copy

    assert _child(["graft", str(target), "--from", str(source)], None,
                  setup=setup) == -signal.SIGKILL
    left = [p for p in digest(target) if p.startswith(".") and p != LOCK_NAME]
    assert any("model-mtp-graft" in p for p in left), left
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0
    assert "temporary file(s) left by an interrupted run" in err
    assert [p for p in digest(target) if p.startswith(".")] == []


_SIGNALLED = """
import os, signal, sys
from pathlib import Path
from vllm_draft_quant.cli.main import main
sig = getattr(signal, sys.argv[1])
# as in a terminal: a child of a background job (`cmd &`) starts with SIGINT ignored
signal.signal(signal.SIGINT, signal.default_int_handler)
real = os.replace
calls = [0]
def replace(src, dst, *a, **k):
    calls[0] += 1
    if calls[0] == 3:
        os.kill(os.getpid(), sig)
    return real(src, dst, *a, **k)
os.replace = replace
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_signal_mid_commit_rolls_back_and_releases_the_lock(sig: str, tmp_path: Path) -> None:
    """Finding 4: a signal while the folder is locked (mid-commit): the change is rolled
    back, the lock is gone, the process still ends by that signal (SIGINT: exit 130)."""
    target, source = pair(tmp_path, "step3p5", sharded=True)
    before = digest(target)
    r = subprocess.run([sys.executable, "-c", _SIGNALLED, sig, "graft", str(target),
                        "--from", str(source)], capture_output=True, text=True, timeout=120)
    expected = 130 if sig == "SIGINT" else -getattr(signal, sig)
    assert r.returncode == expected, r.stderr
    errors = [ln for ln in r.stderr.splitlines() if not ln.startswith("copying draft tensors")]
    assert len(errors) == 1 and "rolled back" in r.stderr, r.stderr  # progress lines aside
    assert digest(target) == before  # byte-identical, no lock file


_TERM_WHILE_PLANNING = """
import os, signal, sys
from vllm_draft_quant.cli import fix
real = fix._compute
def compute(*a, **k):
    os.kill(os.getpid(), signal.SIGTERM)
    return real(*a, **k)
fix._compute = compute
from vllm_draft_quant.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_deciding_leaves_no_lock(tmp_path: Path) -> None:
    """A timeout (SIGTERM) while fix holds the lock: the lock file is removed."""
    model = ckpt(tmp_path / "m", "deepseek_v3", layout="a")
    before = digest(model)
    r = subprocess.run([sys.executable, "-c", _TERM_WHILE_PLANNING, "fix", str(model),
                        "--write"], capture_output=True, text=True, timeout=120)
    assert r.returncode == -signal.SIGTERM, r.stderr
    assert "nothing was changed" in r.stderr
    assert digest(model) == before
