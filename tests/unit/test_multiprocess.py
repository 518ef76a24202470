"""Every vLLM worker computes the same plan: spawned processes agree on its digest.

vLLM starts tensor/pipeline-parallel workers with ``multiprocessing`` (``spawn`` on
CUDA); each runs the plugin and plans from the checkpoint's headers on its own. The
plans must be identical, or two ranks would build the same draft layer differently.
"""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant import plan


def _digest(path: str) -> str:
    return plan(path).digest()


@pytest.mark.parametrize("family", ["step3p5", "qwen3_next", "deepseek_v3"])
def test_spawned_processes_compute_the_same_plan(tmp_path: Path, family: str) -> None:
    ckpt = write_checkpoint(
        tmp_path / "ckpt",
        CheckpointSpec(family, "nvfp4", layout="e", sharded=True, mtp_own_shard=True),
    )
    here = _digest(str(ckpt.path))
    with mp.get_context("spawn").Pool(4) as pool:
        digests = pool.map(_digest, [str(ckpt.path)] * 4)
    assert digests == [here] * 4


def test_digest_is_independent_of_the_folder_name(tmp_path: Path) -> None:
    """Ranks on other hosts may mount the checkpoint elsewhere: same plan all the same."""
    spec = CheckpointSpec("deepseek_v3", "fp8", layout="d")
    a = write_checkpoint(tmp_path / "host-a" / "ckpt", spec)
    b = write_checkpoint(tmp_path / "mnt" / "other-name", spec)
    assert plan(a.path).digest() == plan(b.path).digest()
