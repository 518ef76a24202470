"""Planning a DeepSeek-V3-scale checkpoint opens only the shards that hold draft tensors.

The checkpoint is synthetic (`tests/support/synthetic.py`): 61 target
layers + 1 MTP layer, 256 experts, ~92k tensor names over 163 shards, real
headers and sparse data (~690 GB apparent, a few MB on disk).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.synthetic import (
    SyntheticCheckpoint,
    SyntheticSpec,
    write_synthetic_checkpoint,
)

from vllm_draft_quant import Scheme
from vllm_draft_quant.checkpoint import index as index_module
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.core.names import module_of

SCHEME_OF = {"fp8_block": Scheme.FP8_BLOCK, "nvfp4": Scheme.NVFP4, "bf16": Scheme.UNQUANTIZED}


@pytest.fixture(scope="module")
def deepseek_v3(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCheckpoint:
    return write_synthetic_checkpoint(tmp_path_factory.mktemp("dsv3"))


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names of the shard files whose header the checkpoint reader reads."""
    seen: list[str] = []
    real = index_module.read_header

    def counting(path: Path, *, file: str | None = None):  # type: ignore[no-untyped-def]
        seen.append(Path(path).name)
        return real(path, file=file)

    monkeypatch.setattr(index_module, "read_header", counting)
    return seen


def test_the_synthetic_checkpoint_is_deepseek_v3_sized(deepseek_v3: SyntheticCheckpoint) -> None:
    assert 90_000 <= deepseek_v3.num_tensors <= 93_000
    assert len(deepseek_v3.shards) == 163
    assert set(deepseek_v3.weight_map.values()) == set(deepseek_v3.shards)
    assert deepseek_v3.total_size > 600 * 10**9  # declared, never written
    on_disk = sum(os.stat(deepseek_v3.path / s).st_blocks * 512 for s in deepseek_v3.shards)
    assert on_disk < 100 * 2**20, "shards are not sparse"
    assert 1 <= len(deepseek_v3.draft_shards) <= 6


def test_plan_opens_only_the_shards_holding_draft_tensors(
    deepseek_v3: SyntheticCheckpoint, opened: list[str]
) -> None:
    facts = load_facts(deepseek_v3.path)
    p = plan_from_facts(facts)
    assert sorted(opened) == sorted(deepseek_v3.draft_shards)  # each once, no other
    assert facts.files.files_opened == 1 + len(deepseek_v3.draft_shards)  # + the index
    # header bytes only: a few MB read out of ~690 GB
    assert facts.files.bytes_read < 32 * 2**20

    assert p.drafter == "DeepSeekMTPModel"
    mods = p.by_module()
    assert len(mods["model.layers.61.mlp.experts"].checkpoint_tensors) == 256 * 3 * 2
    for d in p.modules:
        formats = {deepseek_v3.mtp_module_formats[module_of(t)] for t in d.checkpoint_tensors}
        assert len(formats) == 1
        assert d.scheme is SCHEME_OF[formats.pop()], d.module
        assert all(t.startswith("model.layers.61.") for t in d.checkpoint_tensors)
    assert mods["model.layers.61.self_attn.fused_qkv_a_proj"].scheme is Scheme.FP8_BLOCK
    assert mods["model.layers.61.eh_proj"].scheme is Scheme.UNQUANTIZED


def test_nvfp4_export_with_bf16_mtp_at_smaller_scale(tmp_path: Path, opened: list[str]) -> None:
    """The grafted-MTP case: NVFP4 target, BF16 MTP excluded by a subtree rule."""
    spec = SyntheticSpec(num_hidden_layers=12, num_mtp_layers=2, num_experts=32,
                         num_shards=20, scheme="nvfp4", mtp_scheme="bf16")
    ckpt = write_synthetic_checkpoint(tmp_path, spec)
    facts = load_facts(tmp_path)
    p = plan_from_facts(facts, mode="strict")
    assert sorted(opened) == sorted(ckpt.draft_shards)
    assert {d.scheme for d in p.modules} == {Scheme.UNQUANTIZED}
    assert {d.module.split(".")[2] for d in p.modules} == {"12", "13"}
    assert p.conflicts == ()


def test_spec_is_validated() -> None:
    with pytest.raises(ValueError, match="mtp_scheme"):
        SyntheticSpec(scheme="nvfp4", mtp_scheme="fp8_block")
    with pytest.raises(ValueError, match="num_shards"):
        SyntheticSpec(num_shards=0)
