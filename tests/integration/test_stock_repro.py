"""Stock vLLM (plugin disabled) on the 42 FINDINGS.md cases: the bug exists.

These are the "proves the failure" half of every later fix test: each case
asserts the loud error (type + module) or the silently wrong dtype, so a test
fails as soon as vLLM stops failing the way the table says.

Every off-mode build of the suite runs on the session's shared workers, where the
plugin is installed and ``VLLM_DRAFT_QUANT=off`` is set for the case
(``support/harness.py``). `test_off_mode_is_plugin_free_vllm` proves that this is stock
vLLM: a handful of the table's cases, built again in a fresh process where no plugin
is loaded at all, give the same outcome, modules and parameter bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from matrix import HEADLINE_EXPECTED, STOCK_OUTCOMES, Case, Expected, assert_loud, spec_for
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.harness import (
    NO_PLUGIN,
    BuildRequest,
    DraftResult,
    build_drafter,
    build_isolated,
    early_fixture,
    run_aside,
    submit_many,
)

pytestmark = pytest.mark.integration

CASES = sorted(STOCK_OUTCOMES)


def assert_outcome(expected: Expected, result: DraftResult, ckpt: WrittenCheckpoint) -> None:
    """Check one build against its expected outcome (see matrix.py)."""
    if expected.outcome == "loud":
        assert_loud(expected, result)
        return
    assert result.ok, result.error_text
    assert result.modules, "the worker recorded no quantizable module"
    if expected.outcome == "ok":
        assert result.sentinel_modules() == [], "scales left at -3.4e38"
        return
    for prefix, ckpt_module in expected.wrong:
        module = result.modules[prefix]
        dtypes = {n: p.dtype for n, p in module.params.items()}
        assert module.quantized, f"{prefix} is not quantized: {dtypes}"
        assert ckpt.stored_format(ckpt_module) == "bf16", ckpt_module


Stock = dict[Case, tuple[WrittenCheckpoint, DraftResult]]


def start_stock(session: pytest.Session, root: Path) -> Callable[[], Stock]:
    """Write every case's checkpoint and queue its build with the plugin off."""
    ckpts = {case: write_checkpoint(root / "-".join(case), spec_for(case)) for case in CASES}
    results = submit_many(
        [BuildRequest(c.path) for c in ckpts.values()], plugin=False, workdir=root / "work"
    )
    return lambda: {case: (ckpts[case], r) for case, r in zip(ckpts, results(), strict=True)}


stock = early_fixture(start_stock)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_stock_outcome(case: Case, stock: Stock) -> None:
    ckpt, result = stock[case]
    assert_outcome(STOCK_OUTCOMES[case], result, ckpt)


def test_headline_step3p5_nvfp4_grafted_bf16_mtp(tmp_path: Path) -> None:
    """The reported bug, on a graft-shaped checkpoint, in its own process.

    Step-3.5 NVFP4 export, BF16 MTP block in its own shard, exclusions that do
    not mention MTP: stock vLLM asserts while loading ``mtp_block.mlp.gate_up_proj``.
    """
    spec = CheckpointSpec("step3p5", "nvfp4", layout="a", sharded=True, mtp_own_shard=True)
    ckpt = write_checkpoint(tmp_path / "graft", spec)
    assert ckpt.stored_format("model.layers.2.mlp.gate_proj.weight") == "bf16"
    assert not any("model.layers.2" in e for e in ckpt.exclusions)
    result = build_drafter(ckpt.path, plugin=False, workdir=tmp_path / "work")
    assert result.raw["draft_architecture"] == "Step3p5MTP"
    assert result.raw["quantization"] == "modelopt_fp4"
    assert_outcome(HEADLINE_EXPECTED, result, ckpt)
    assert result.error_module == "model.layers.2.mtp_block.mlp.gate_up_proj.weight"


#: two loud, two silent and one ok case of the table (both schemes, three drafters)
PLUGIN_FREE_CASES: list[Case] = [
    ("step3p5", "nvfp4", "a"),
    ("qwen3_next", "nvfp4", "g"),
    ("qwen3_next", "fp8", "a"),
    ("deepseek_v3", "fp8", "c"),
    ("deepseek_v3", "nvfp4", "b"),
]


def start_plugin_free(session: pytest.Session, root: Path) -> Callable[[], Future[Any]]:
    """Build ``PLUGIN_FREE_CASES`` in a fresh process that loads no plugin, beside the workers."""
    reqs = [
        BuildRequest(write_checkpoint(root / "-".join(c), spec_for(c)).path)
        for c in PLUGIN_FREE_CASES
    ]
    run = run_aside(build_isolated, reqs, plugin=False, workdir=root / "work")
    return lambda: run


plugin_free = early_fixture(start_plugin_free)


def observed(result: DraftResult) -> dict[str, object]:
    """Everything a build shows: outcome, error, every module's method and parameters."""

    def modules(mods: dict[str, object]) -> dict[str, object]:
        return {
            p: (
                m.quant_method,
                m.layer_class,
                {n: (x.dtype, x.shape, x.has_sentinel) for n, x in m.params.items()},
            )
            for p, m in mods.items()  # type: ignore[attr-defined]
        }

    raw = result.raw
    message = (result.error_message or "").replace(str(result.model_dir), "<model>")
    return {
        "ok": result.ok,
        "error": (result.error_type, message, result.error_module),
        "draft_architecture": raw.get("draft_architecture"),
        "quantization": raw.get("quantization"),
        "modules": modules(result.modules),  # type: ignore[arg-type]
        "target_modules": modules(result.target_modules),  # type: ignore[arg-type]
        "post_load_errors": raw.get("post_load_errors"),
        "target_config": (
            raw.get("target_config_before_draft"),
            raw.get("target_config_after_draft"),
        ),
    }


def test_off_mode_is_plugin_free_vllm(stock: Stock, plugin_free: Future[Any]) -> None:
    """The shared workers' off mode (plugin installed, ``VLLM_DRAFT_QUANT=off``) is stock
    vLLM: the same checkpoints built where vLLM loads no plugin (``VLLM_PLUGINS`` names no
    entry point) show the same outcome, modules, dtypes and loaded bytes."""
    import torch

    assert [STOCK_OUTCOMES[c].outcome for c in PLUGIN_FREE_CASES] == [
        "loud",
        "loud",
        "silent",
        "silent",
        "ok",
    ]
    free = plugin_free.result()  # the same checkpoints, byte for byte, in their own folders
    for case, alone in zip(PLUGIN_FREE_CASES, free, strict=True):
        shared = stock[case][1]
        assert alone.raw["plugins_env"] == NO_PLUGIN  # vLLM loaded no plugin there
        assert shared.raw.get("worker_pid") is not None  # a shared worker built this one
        assert observed(alone) == observed(shared), case
        assert_outcome(STOCK_OUTCOMES[case], alone, stock[case][0])
        if alone.ok:
            a, b = alone.load_dump(), shared.load_dump()
            assert a.keys() == b.keys()
            for name in a:
                x, y = a[name].contiguous().view(-1), b[name].contiguous().view(-1)
                assert x.dtype == y.dtype and torch.equal(
                    x.view(torch.uint8), y.view(torch.uint8)
                ), name
