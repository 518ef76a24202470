"""Stock vLLM (plugin disabled) on the 42 FINDINGS.md cases: the bug exists.

These are the "proves the failure" half of every later fix test: each case
asserts the loud error (type + module) or the silently wrong dtype, so a test
fails as soon as vLLM stops failing the way the table says.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import BuildRequest, DraftResult, build_drafter, build_many_parallel
from matrix import HEADLINE_EXPECTED, STOCK_OUTCOMES, Case, Expected, spec_for

from vllm_draft_quant.testing import CheckpointSpec, WrittenCheckpoint, write_checkpoint

pytestmark = pytest.mark.integration

CASES = sorted(STOCK_OUTCOMES)


def assert_outcome(expected: Expected, result: DraftResult, ckpt: WrittenCheckpoint) -> None:
    """Check one build against its expected outcome (see matrix.py)."""
    if expected.outcome == "loud":
        assert not result.ok, f"expected {expected.error_type}, but the drafter loaded"
        assert result.error_type == expected.error_type, result.error_text
        assert expected.match and expected.match in result.error_text, result.error_text
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


@pytest.fixture(scope="module")
def stock(
    tmp_path_factory: pytest.TempPathFactory, jobs: int
) -> dict[Case, tuple[WrittenCheckpoint, DraftResult]]:
    root = tmp_path_factory.mktemp("stock")
    ckpts = {case: write_checkpoint(root / "-".join(case), spec_for(case)) for case in CASES}
    results = build_many_parallel(
        [BuildRequest(c.path) for c in ckpts.values()],
        plugin=False,
        jobs=jobs,
        workdir=root / "work",
    )
    return {case: (ckpts[case], r) for case, r in zip(ckpts, results, strict=True)}


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_stock_outcome(
    case: Case, stock: dict[Case, tuple[WrittenCheckpoint, DraftResult]]
) -> None:
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
