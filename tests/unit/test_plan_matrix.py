"""The acceptance matrix: every factory checkpoint plans every draft module as stored.

Three families x {ModelOpt NVFP4, ModelOpt FP8, compressed-tensors NVFP4} x layouts
a..g (BF16 MTP with no / wildcard / exact exclusions; quantized MTP with a BF16 head;
attention BF16 + MLP quantized; attention quantized + MLP BF16; everything quantized
incl. head/fc), then sharded, own-shard and multi-layer variants of a few.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from _plan_checks import QUANTIZABLE_KINDS, assert_plan_follows_stored_formats
from support import LAYOUTS, CheckpointSpec, MtpFormats, write_checkpoint

from vllm_draft_quant import ConflictError, Scheme, plan
from vllm_draft_quant.checkpoint import index as index_module
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
QUANTS = (("modelopt", "nvfp4"), ("modelopt", "fp8"), ("compressed-tensors", "nvfp4"))
MATRIX = [
    pytest.param(f, p, s, lay, id=f"{f}-{p}-{s}-{lay}")
    for f, (p, s), lay in itertools.product(FAMILIES, QUANTS, sorted(LAYOUTS))
]


@pytest.mark.parametrize(("family", "producer", "scheme", "layout"), MATRIX)
def test_every_draft_module_is_planned_as_stored(
    tmp_path: Path, family: str, producer: str, scheme: str, layout: str
) -> None:
    spec = CheckpointSpec(family, scheme, producer, layout)  # type: ignore[arg-type]
    w = write_checkpoint(tmp_path, spec)
    p = plan(tmp_path)
    assert_plan_follows_stored_formats(p, w)
    quantized = LAYOUTS[layout].quantized
    groups = {d.group for d in p.modules if d.kind in QUANTIZABLE_KINDS
              and d.scheme is not Scheme.UNQUANTIZED}
    assert groups == set(quantized)
    if layout == "a":  # the exclusions do not mention the BF16 MTP: config disagrees
        assert p.conflicts
        with pytest.raises(ConflictError):
            plan(tmp_path, mode="strict")
    else:  # the config describes the tensors: nothing to resolve
        assert p.conflicts == ()
        assert plan(tmp_path, mode="strict").modules == p.modules


VARIANTS = [
    pytest.param(f, p, s, lay, sharded, own, id=f"{f}-{p}-{s}-{lay}-{'sharded' if sharded else ''}"
                 f"{'-own' if own else ''}")
    for f in FAMILIES
    for (p, s), lay, sharded, own in [
        (("modelopt", "nvfp4"), "a", True, False),
        (("modelopt", "fp8"), "d", True, True),
        (("compressed-tensors", "nvfp4"), "e", False, True),
        (("modelopt", "nvfp4"), "g", True, True),
    ]
]


@pytest.mark.parametrize(("family", "producer", "scheme", "layout", "sharded", "own"), VARIANTS)
def test_sharded_checkpoints_open_only_the_shards_with_draft_tensors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, family: str, producer: str, scheme: str,
    layout: str, sharded: bool, own: bool,
) -> None:
    spec = CheckpointSpec(family, scheme, producer, layout, sharded=sharded,  # type: ignore[arg-type]
                          mtp_own_shard=own)
    w = write_checkpoint(tmp_path, spec)
    assert len(w.files) > 1
    opened: list[str] = []
    real = index_module.read_header

    def counting(path: Path, *, file: str | None = None):  # type: ignore[no-untyped-def]
        opened.append(Path(path).name)
        return real(path, file=file)

    monkeypatch.setattr(index_module, "read_header", counting)
    facts = load_facts(tmp_path)
    p = plan_from_facts(facts)
    assert_plan_follows_stored_formats(p, w)
    holding = {w.tensors[t].file for d in p.modules for t in d.checkpoint_tensors}
    assert sorted(opened) == sorted(holding)  # each at most once
    assert facts.files.files_opened == 1 + len(holding)  # + the index
    if own and family != "qwen3_next":  # Qwen3-Next's drafter also loads the target lm_head
        assert opened == ["model-mtp.safetensors"]


@pytest.mark.parametrize("family", FAMILIES)
def test_several_draft_layers_each_planned_as_stored(tmp_path: Path, family: str) -> None:
    layers = (MtpFormats(attn="nvfp4", mlp="bf16", head="nvfp4"),
              MtpFormats(attn="bf16", mlp="nvfp4", head="bf16"),
              MtpFormats(attn="nvfp4", mlp="nvfp4", head="nvfp4"))
    spec = CheckpointSpec(family, "nvfp4", "compressed-tensors", layout=layers,  # type: ignore[arg-type]
                          num_mtp_layers=3, sharded=True)
    w = write_checkpoint(tmp_path, spec)
    p = plan(tmp_path, mode="strict")
    assert_plan_follows_stored_formats(p, w)
    layers = load_facts(tmp_path).names.layers
    assert len(layers) == 3
    for layer in layers:
        planned = [d for d in p.modules if d.module.startswith(layer.runtime_root + ".")]
        assert len(planned) >= 4, layer
