"""Building the drafter leaves the target's quant config as the target built it.

Stock vLLM 0.33.0 hands the Qwen3-Next drafter the target's quant config object and
``configure_quant_config`` overwrites its ``packed_modules_mapping`` with the
drafter's (the target's ``in_proj_qkvz``/``in_proj_ba`` entries are gone). The
plugin builds every drafter with a private copy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import CheckpointSpec, write_checkpoint
from support.harness import build_drafter

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qwen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = CheckpointSpec("qwen3_next", "nvfp4", layout="c")  # loads on stock vLLM too
    return write_checkpoint(tmp_path_factory.mktemp("qwen") / "ckpt", spec).path


def test_stock_vllm_overwrites_the_targets_packed_modules_mapping(qwen: Path) -> None:
    r = build_drafter(qwen, plugin=False)
    assert r.ok, r.error_text
    before = r.raw["target_config_before_draft"]["packed_modules_mapping"]
    after = r.raw["target_config_after_draft"]["packed_modules_mapping"]
    assert "in_proj_qkvz" in before and "in_proj_qkvz" not in after


def test_plugin_keeps_the_targets_quant_config(qwen: Path) -> None:
    r = build_drafter(qwen, plugin=True)
    assert r.ok, r.error_text
    assert r.raw["target_config_before_draft"] == r.raw["target_config_after_draft"]
