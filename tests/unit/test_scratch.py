"""A test run leaves nothing behind in the system's temporary folder
(``tests/conftest.py:pytest_configure``, ``tmp_path_retention_policy`` in pyproject.toml).

Before, every run left its ``/tmp/vdq-*`` folders (the build service's, the early
builds' checkpoints): about 50 a run, up to 370 MB each, until CI's install ran out of
disk. A child pytest runs ``scratch_probe.py`` with its own temporary folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _run_probe(tmp: Path, *, fail: bool) -> tuple[int, Path]:
    env = {**os.environ, "TMPDIR": str(tmp), "VDQ_PROBE_FAIL": "1" if fail else "0"}
    env.pop("PYTEST_ADDOPTS", None)
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
         str(HERE / "scratch_probe.py")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    found = re.search(r"^PROBE (\S+)$", out.stdout, re.M)
    assert found, out.stdout + out.stderr
    return out.returncode, Path(found.group(1))


def test_a_passing_run_removes_its_tempfile_folders(tmp_path: Path) -> None:
    rc, folder = _run_probe(tmp_path, fail=False)
    assert rc == 0
    assert folder.is_relative_to(tmp_path)
    assert not folder.exists(), f"{folder} outlived the run"
    assert not list(tmp_path.glob("vdq-*")), list(tmp_path.iterdir())


def test_a_failing_run_keeps_them_for_reading(tmp_path: Path) -> None:
    rc, folder = _run_probe(tmp_path, fail=True)
    assert rc == pytest.ExitCode.TESTS_FAILED
    assert (folder / "data").is_file()
    # under pytest's basetemp, which the next run removes (tmp_path_retention_count = 1)
    assert "pytest-of-" in str(folder)
