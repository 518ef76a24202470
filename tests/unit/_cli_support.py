"""Helpers for the CLI tests: run the CLI in-process, write checkpoints, hash folders."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.cli.main import main
from vllm_draft_quant.repair import shard_io
from vllm_draft_quant.repair.fixer import CONFIG, HF_QUANT, compute_fix

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
PRODUCERS = ("modelopt", "compressed-tensors")


COPY_MODES = ("in-kernel", "plain")


@pytest.fixture(params=COPY_MODES)
def copy_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test on graft's in-kernel copy path (copy_file_range) and on the plain one
    (read/write through one buffer); modules opt in with ``usefixtures("copy_mode")``."""
    mode: str = request.param
    monkeypatch.setattr(shard_io, "IN_KERNEL", mode == "in-kernel")
    return mode


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]
            ) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of one in-process CLI run."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def digest(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too): relative path -> content hash."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            rel = str(p.relative_to(folder))
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def ckpt(path: Path, family: str, scheme: str = "nvfp4", **kw: Any) -> Path:
    """Write a factory checkpoint and return its folder."""
    return write_checkpoint(path, CheckpointSpec(family, scheme, **kw)).path  # type: ignore[arg-type]


def pair(tmp_path: Path, family: str, scheme: str = "nvfp4", *, truncate: bool = False,
         **kw: Any) -> tuple[Path, Path]:
    """(TARGET without draft weights, SOURCE with BF16 draft layers) of one family."""
    source = ckpt(tmp_path / "source", family, scheme, layout="a", **kw)
    target = ckpt(tmp_path / "target", family, scheme, layout="a", with_mtp=False, **kw)
    if truncate:
        truncate_layer_lists(target)
    return target, source


def truncate_layer_lists(folder: Path) -> list[str]:
    """Cut config.json's per-layer lists to the target layers (as a real export did)."""
    path = folder / "config.json"
    cfg = json.loads(path.read_text())
    n, total = cfg["num_hidden_layers"], cfg["num_hidden_layers"] + cfg["num_nextn_predict_layers"]
    cut = [k for k, v in cfg.items() if isinstance(v, list) and len(v) == total]
    for k in cut:
        cfg[k] = cfg[k][:n]
    path.write_text(json.dumps(cfg, indent=2) + "\n")
    return cut


def load(path: Path) -> Any:
    return json.loads(path.read_text())


def exclusions(folder: Path) -> list[str]:
    return list(load(folder / "config.json")["quantization_config"]["ignore"])


def fix_in_place(model: Path) -> list[str]:
    """Apply `compute_fix`'s new configs to ``model`` (as ``fix --write`` would, minus the
    transaction); check nothing is left untruthful; return what stock vLLM still cannot do."""
    facts = load_facts(model)
    res = compute_fix(facts, plan_from_facts(facts))
    objects = {CONFIG: facts.config}
    if facts.hf_quant_config is not None:
        objects[HF_QUANT] = facts.hf_quant_config
    for name, obj in res.new_objects(objects).items():
        (model / name).write_text(json.dumps(obj, indent=2))
    assert res.remaining == []
    return res.stock_limits
