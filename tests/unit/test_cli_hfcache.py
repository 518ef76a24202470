"""A model in the Hugging Face cache: repo ids resolve offline, symlinked files survive."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
from _cli_support import ckpt, digest, exclusions, run_cli

REPO = "acme/Tiny-Step-NVFP4"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A huggingface_hub-style cache: snapshot files are relative symlinks into blobs/."""
    src = ckpt(tmp_path / "src", "step3p5", layout="a")
    repo = tmp_path / "hub" / ("models--" + REPO.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    snap.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    for f in src.iterdir():
        blob = repo / "blobs" / f"blob-{f.name}"
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return snap


def test_repo_id_plan_and_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    snap = _cache(tmp_path, monkeypatch)
    code, out, _ = run_cli(capsys, "plan", REPO)
    assert code == 1 and str(snap) in out
    blob_before = digest(snap.parent.parent / "blobs")
    code, _, err = run_cli(capsys, "fix", REPO, "--write")
    assert code == 0, err
    assert "model.layers.2*" in exclusions(snap)
    assert not (snap / "config.json").is_symlink()  # replaced by a regular file
    assert (snap / "config.json.bak").is_symlink()  # the original link, kept as .bak
    assert digest(snap.parent.parent / "blobs") == blob_before  # blobs untouched
    assert run_cli(capsys, "plan", REPO)[0] == 0


def test_failed_fix_restores_the_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    snap = _cache(tmp_path, monkeypatch)
    before = digest(snap)
    real, calls = os.replace, {"n": 0}

    def fail_third(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.EIO, "I/O error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_third)
    code, _, err = run_cli(capsys, "fix", REPO, "--write")
    monkeypatch.setattr(os, "replace", real)
    assert code == 2 and "nothing was changed" in err
    assert digest(snap) == before
    assert (snap / "config.json").is_symlink()


def test_unknown_repo_id_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    code, _, err = run_cli(capsys, "plan", "acme/not-downloaded")
    assert code == 2 and "never downloads" in err
