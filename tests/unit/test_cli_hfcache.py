"""A model in the Hugging Face cache, laid out as huggingface_hub lays it out
(``models--org--name/blobs``, ``snapshots/<rev>`` symlinks, ``refs/main``): repo ids
resolve offline through huggingface_hub's cache API, with --revision and --cache-dir;
``fix --write`` / ``graft`` never rewrite a snapshot (issue 16, points 1 and 6)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import huggingface_hub.constants
import pytest
from _cli_support import ckpt, digest, exclusions, run_cli

REPO = "acme/Tiny-Step-NVFP4"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]


def _snapshot(hub: Path, commit: str, layout: str, tmp_path: Path, *, ref: str | None = "main"
              ) -> Path:
    """One snapshot of REPO in the cache ``hub``: files are relative symlinks into blobs/."""
    src = ckpt(tmp_path / f"src-{commit[:6]}", "step3p5", layout=layout)
    repo = hub / ("models--" + REPO.replace("/", "--"))
    snap = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snap.mkdir(parents=True)
    if ref:
        (repo / "refs").mkdir(exist_ok=True)
        (repo / "refs" / ref).write_text(commit)
    for f in src.iterdir():
        blob = repo / "blobs" / f"{commit[:6]}-{f.name}"
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    return snap


def _use_cache(hub: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_CACHE=hub for this process (huggingface_hub reads it once, at import)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))


def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    snap = _snapshot(tmp_path / "hub", COMMIT, "a", tmp_path)
    _use_cache(tmp_path / "hub", monkeypatch)
    return snap


def test_repo_id_plan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                      capsys: pytest.CaptureFixture[str]) -> None:
    snap = _cache(tmp_path, monkeypatch)
    code, out, _ = run_cli(capsys, "plan", REPO)
    assert code == 1 and str(snap) in out
    # plan's hint names the local copy to fix, not the snapshot itself
    assert f"hf download {REPO} --revision {COMMIT} --local-dir" in out.replace("\n", " ")


def test_fix_write_refuses_a_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Old code replaced the snapshot's symlinks with regular files (and left .bak links)."""
    snap = _cache(tmp_path, monkeypatch)
    before = digest(snap.parent.parent)
    code, _, err = run_cli(capsys, "fix", REPO, "--write")
    assert code == 2 and err.count("\n") == 1
    assert f"hf download {REPO} --revision {COMMIT} --local-dir ./Tiny-Step-NVFP4" in err
    assert digest(snap.parent.parent) == before
    assert all(f.is_symlink() for f in snap.iterdir()) and not list(snap.glob("*.bak"))
    code, _, err = run_cli(capsys, "graft", str(snap), "--from", str(tmp_path / "src-012345"))
    assert code == 2 and "--local-dir" in err and digest(snap.parent.parent) == before
    # the diff (no --write) still works there
    code, out, _ = run_cli(capsys, "fix", REPO)
    assert code == 1 and "model.layers.2*" in out


def test_fix_on_the_local_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    """What the refusal suggests: a local copy (as ``hf download --local-dir`` makes)."""
    snap = _cache(tmp_path, monkeypatch)
    local = tmp_path / "Tiny-Step-NVFP4"
    shutil.copytree(snap, local)  # follows the links: regular files
    code, _, err = run_cli(capsys, "fix", str(local), "--write")
    assert code == 0, err
    assert "model.layers.2*" in exclusions(local)
    assert run_cli(capsys, "plan", str(local))[0] == 0


def test_failed_fix_restores_the_symlinks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A folder of symlinks that is not a cache snapshot: fix writes, and a failure
    restores the links."""
    links = tmp_path / "links"
    src = ckpt(links / ".store", "step3p5", layout="a")
    for f in src.iterdir():
        os.symlink(os.path.relpath(f, links), links / f.name)
    before = digest(links)
    real, calls = os.replace, {"n": 0}

    def fail_third(src: str, dst: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.EIO, "I/O error")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_third)
    code, _, err = run_cli(capsys, "fix", str(links), "--write")
    monkeypatch.setattr(os, "replace", real)
    assert code == 2 and "nothing was changed" in err
    assert digest(links) == before
    assert (links / "config.json").is_symlink()


def test_unknown_repo_id_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    _use_cache(tmp_path / "empty", monkeypatch)
    code, _, err = run_cli(capsys, "plan", "acme/not-downloaded")
    assert code == 2 and "never downloads" in err
    assert "hf download acme/not-downloaded" in err and "huggingface-cli" not in err


def test_a_cache_without_refs_main_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """huggingface_hub raises there; old code silently took the newest snapshot by mtime."""
    _snapshot(tmp_path / "hub", COMMIT, "a", tmp_path, ref=None)
    _use_cache(tmp_path / "hub", monkeypatch)
    code, _, err = run_cli(capsys, "plan", REPO)
    assert code == 2 and "revision main" in err and f"hf download {REPO}" in err
    # a commit hash still resolves without refs, as in huggingface_hub
    assert run_cli(capsys, "plan", REPO, "--revision", COMMIT)[0] == 1


def test_revision_and_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:
    hub = tmp_path / "elsewhere"
    main = _snapshot(hub, COMMIT, "a", tmp_path)  # refs/main -> COMMIT (conflicts)
    other = _snapshot(hub, OTHER, "b", tmp_path, ref="fixed")  # a clean layout
    _use_cache(tmp_path / "empty", monkeypatch)  # the default cache does not have it
    assert run_cli(capsys, "plan", REPO)[0] == 2
    code, out, _ = run_cli(capsys, "plan", REPO, "--cache-dir", str(hub))
    assert code == 1 and str(main) in out
    for rev in (OTHER, "fixed"):
        code, out, err = run_cli(capsys, "plan", REPO, "--cache-dir", str(hub), "--revision", rev)
        assert code == 0 and str(other) in out, err
    code, _, err = run_cli(capsys, "plan", REPO, "--cache-dir", str(hub), "--revision", "nope")
    assert code == 2 and "revision nope" in err and f"--revision nope --cache-dir {hub}" in err


def test_legacy_cache_variable_is_honoured(tmp_path: Path) -> None:
    """HUGGINGFACE_HUB_CACHE (read by huggingface_hub and vLLM) was ignored by old code."""
    snap = _snapshot(tmp_path / "legacy", COMMIT, "a", tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HUGGINGFACE_HUB_CACHE=str(tmp_path / "legacy"), HF_HUB_OFFLINE="1",
               PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "vllm_draft_quant.cli.main", "plan", REPO],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert str(snap) in out.stdout
