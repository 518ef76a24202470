"""``demo`` with a stand-in for the vLLM launcher (the real run is integration tier)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from _cli_support import run_cli
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.cli.demo import write_demo_checkpoint


@dataclass
class _Result:
    ok: bool
    error_type: str | None = None
    error_message: str | None = None
    modules: dict[str, Any] = field(default_factory=dict)


def _fake_demo(calls: list[tuple[Path, bool]], on_ok: bool = True) -> types.ModuleType:
    """``vllm_draft_quant.demo`` with its real checkpoint writer and a stand-in launcher."""
    from vllm_draft_quant.demo.checkpoint import write_demo_checkpoint as real_writer

    def build_drafter(model_dir: Path, plugin: bool) -> _Result:
        calls.append((Path(model_dir), plugin))
        assert (Path(model_dir) / "config.json").is_file()
        if not plugin:
            return _Result(False, "AssertionError", "\nassert param.data.shape == w.shape\nmore")
        if not on_ok:
            return _Result(False, "RuntimeError", "boom")
        return _Result(True, modules={
            "model.layers.2.mtp_block.mlp.gate_up_proj": {
                "quant_method": "UnquantizedLinearMethod",
                "params": {"weight": {"dtype": "bfloat16", "shape": [512, 128]}}},
            "model.layers.0.self_attn.qkv_proj": types.SimpleNamespace(
                quant_method="ModelOptNvFp4LinearMethod",
                params={"weight": types.SimpleNamespace(dtype="uint8", shape=(256, 64))}),
        })

    mod = types.ModuleType("vllm_draft_quant.demo")
    mod.build_drafter = build_drafter  # type: ignore[attr-defined]
    mod.write_demo_checkpoint = real_writer  # type: ignore[attr-defined]
    return mod


def test_demo_shows_both_outcomes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, bool]] = []
    monkeypatch.setitem(sys.modules, "vllm_draft_quant.demo", _fake_demo(calls))
    code, out, _ = run_cli(capsys, "demo", "--keep", tmp_path / "demo")
    assert code == 0
    assert [p for _, p in calls] == [False, True]
    assert "Step3p5MTP" in out and "handled [1]" in out  # the plan of the grafted checkpoint
    assert "AssertionError: assert param.data.shape == w.shape" in out
    assert "model.layers.2.mtp_block.mlp.gate_up_proj" in out
    assert "UnquantizedLinearMethod: weight bfloat16[512, 128]" in out
    assert "ModelOptNvFp4LinearMethod: weight uint8[256, 64]" in out
    assert (tmp_path / "demo" / "config.json").is_file()  # --keep keeps it


def test_demo_temp_folder_removed(capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Path, bool]] = []
    monkeypatch.setitem(sys.modules, "vllm_draft_quant.demo", _fake_demo(calls))
    assert run_cli(capsys, "demo")[0] == 0
    assert not calls[0][0].exists()


def test_demo_fails_when_the_plugin_load_fails(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm_draft_quant.demo", _fake_demo([], on_ok=False))
    code, out, _ = run_cli(capsys, "demo")
    assert code == 1 and "failed: RuntimeError: boom" in out


def test_demo_without_its_package_is_one_line_error(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm_draft_quant.demo", None)
    code, out, err = run_cli(capsys, "demo")
    assert code == 2 and out == "" and "vllm_draft_quant.demo" in err and err.count("\n") == 1


def test_demo_checkpoint_is_the_reported_case(tmp_path: Path) -> None:
    """Step-3.5/3.7 NVFP4, BF16 MTP in its own shard, exclusions silent about it."""
    model = write_demo_checkpoint(tmp_path / "d")
    assert (model / "model-mtp.safetensors").is_file()
    p = core_plan(model)
    assert p.drafter == "Step3p5MTP" and p.conflicts
    assert {m.stored for m in p.modules} == {"unquantized"}


def test_demo_checkpoint_is_the_factory_checkpoint_byte_for_byte(tmp_path: Path) -> None:
    """The demo's compact writer and the test factory write the same files, so what the
    integration tier proves about that factory spec holds for the demo."""
    demo = write_demo_checkpoint(tmp_path / "demo")
    spec = CheckpointSpec("step3p5", "nvfp4", layout="a", sharded=True, mtp_own_shard=True)
    factory = write_checkpoint(tmp_path / "factory", spec).path
    names = sorted(p.name for p in demo.iterdir())
    assert names == sorted(p.name for p in factory.iterdir())
    assert [n for n in names if (demo / n).read_bytes() != (factory / n).read_bytes()] == []


def test_the_demo_package_is_not_imported_by_the_cli_or_the_plugin() -> None:
    """Only ``demo`` (inside its functions) imports ``vllm_draft_quant.demo``."""
    import subprocess

    code = ("import sys, vllm_draft_quant, vllm_draft_quant.cli.main, vllm_draft_quant.cli.demo, "
            "vllm_draft_quant.adapter; "
            "print(sorted(m for m in sys.modules if m.startswith('vllm_draft_quant.demo')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
