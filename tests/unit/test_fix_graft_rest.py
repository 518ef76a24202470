"""`fix` and `graft` for the drafters vLLM 0.33.0 cannot build on the CPU, held to their
profiles' stock-vLLM facts (issue 17: "for every family").

DeepSeek-V4 (``deepseek_v4/cpu/mtp.py`` raises NotImplementedError) has no load test
in ``tests/integration/test_cli_load*.py``; MiMo-V2 and Qwen4Exp have one now (factory
families ``mimo_v2`` and ``qwen4_exp``, without QSA, in ``test_cli_load_more.py``) and
keep their rows here. Here each gets tiny
ModelOpt NVFP4 checkpoints written from its profile (``support.profiled``), layouts
a, b and c (BF16 draft: exclusions silent about it, one namespace wildcard, every
module by exact checkpoint name), and:

- before the fix, the stock-vLLM model (`repair.stock`, reading the family's
  ``StockBehaviour``) builds the recorded layouts' BF16 draft modules quantized (the
  failure exists), the others not;
- ``fix --write`` leaves no unquantized draft module that the model says stock vLLM
  builds quantized, reports no stock limit, and a second ``fix`` has nothing to change;
- ``graft`` into a target without draft weights writes the exclusions that do the same,
  and a second graft changes nothing.

Qwen4Exp renumbers every ``mtp.`` entry by ``num_hidden_layers`` before matching
(``qwen4_exp/nvidia/mtp.py:_remap_ignored_layers``): ``fix`` must write checkpoint
numbers there, never runtime ones (vLLM would shift those past the draft layer).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_support import digest, run_cli
from support.profiled import TARGET_LAYERS, write_profiled

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.profiles.deepseek_v4 import DEEPSEEK_V4_MTP
from vllm_draft_quant.profiles.mimo_v2 import MIMO_V2_MTP
from vllm_draft_quant.profiles.qwen4_exp import QWEN4_EXP_MTP
from vllm_draft_quant.repair.stock import shifted, stock_quantizes

PROFILES = {"deepseek_v4": DEEPSEEK_V4_MTP, "qwen4_exp": QWEN4_EXP_MTP, "mimo_v2": MIMO_V2_MTP}
#: layouts whose BF16 draft modules stock vLLM builds quantized before the fix (the
#: stock model's reading of each profile; DeepSeek-V4's runtime names model.layers.N.*
#: are never its checkpoint names mtp.k.*)
FAILS_BEFORE = {
    ("deepseek_v4", "a"),
    ("deepseek_v4", "b"),
    ("deepseek_v4", "c"),
    ("qwen4_exp", "a"),
    ("mimo_v2", "a"),
}
CASES = [(f, lay) for f in PROFILES for lay in "abc"]


def _exclusions(model: Path) -> list[str]:
    return list(
        json.loads((model / "hf_quant_config.json").read_text())["quantization"]["exclude_modules"]
    )


def stock_wrong(model: Path, profile: DrafterProfile) -> list[str]:
    """BF16 draft modules the stock-vLLM model builds quantized with ``model``'s exclusions."""
    entries = _exclusions(model)
    return [
        d.module
        for d in core_plan(model).modules
        if d.kind != "plain"
        and d.stored == "unquantized"
        and stock_quantizes(
            producer="modelopt",
            scheme=Scheme.NVFP4,
            profile=profile,
            prefix=d.module,
            kind=d.kind,
            entries=entries,
            num_hidden_layers=TARGET_LAYERS,
        )
        is not False
    ]


@pytest.mark.parametrize(("family", "layout"), CASES, ids=["-".join(c) for c in CASES])
def test_fix_makes_the_stock_model_exclude_every_bf16_draft_module(
    family: str, layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = PROFILES[family]
    model = write_profiled(tmp_path / "m", profile, layout)
    assert bool(stock_wrong(model, profile)) == ((family, layout) in FAILS_BEFORE)
    code, out, err = run_cli(capsys, "fix", model, "--write")
    assert code == 0, out + err
    assert (
        "stock vLLM (without the plugin) builds every draft module in its stored precision" in out
    )
    assert stock_wrong(model, profile) == []
    assert core_plan(model).conflicts == ()
    before = digest(model)
    code, out, _ = run_cli(capsys, "fix", model)
    assert code == 0 and "nothing to change" in out and digest(model) == before


def test_qwen4_exp_fix_writes_checkpoint_numbers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """vLLM shifts every ``mtp.`` entry's layer number by num_hidden_layers: a runtime
    number (mtp.layers.2 here) would become mtp.layers.4 and exclude nothing; fix writes
    the checkpoint's mtp.layers.0, which vLLM shifts onto the draft layer."""
    model = write_profiled(tmp_path / "m", QWEN4_EXP_MTP, "a")
    code, _, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0
    added = [e for e in _exclusions(model) if e.startswith("mtp.")]
    assert added == ["mtp.layers.0*", "mtp.fc_embedding", "mtp.fc_hidden"]
    assert shifted(added, "mtp.", TARGET_LAYERS)[0] == "mtp.layers.2*"
    draft = core_plan(model).modules[0].module
    assert draft.startswith("mtp.layers.2.")  # the runtime prefix vLLM builds
    assert (
        stock_quantizes(
            producer="modelopt",
            scheme=Scheme.NVFP4,
            profile=QWEN4_EXP_MTP,
            prefix=draft,
            kind=core_plan(model).modules[0].kind,
            entries=[draft],
            num_hidden_layers=TARGET_LAYERS,
        )
        is True
    )


@pytest.mark.parametrize("family", PROFILES)
def test_graft_writes_what_stock_needs(
    family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile = PROFILES[family]
    source = write_profiled(tmp_path / "source", profile, "a")
    target = write_profiled(tmp_path / "target", profile, "a", with_mtp=False)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0, out + err
    planned = core_plan(target)
    assert planned.conflicts == () and planned.modules
    assert all(d.stored == "unquantized" for d in planned.modules if d.kind != "plain")
    assert stock_wrong(target, profile) == []
    before = digest(target)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0 and "already grafted, nothing to change" in out
    assert digest(target) == before


@pytest.mark.parametrize(
    ("family", "bad", "valid"),
    [
        ("qwen4_exp", "2", "0 (mtp.layers.0)"),
        ("mimo_v2", "1", "0 (model.mtp.layers.0)"),
        ("deepseek_v4", "2", "0 (mtp.0)"),
    ],
)
def test_layers_error_names_the_bad_number_and_the_valid_ones(
    family: str, bad: str, valid: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Locally numbered drafters: the runtime number (num_hidden_layers + k) is not a
    layer number of the checkpoint; the one-line error says which numbers are."""
    profile = PROFILES[family]
    source = write_profiled(tmp_path / "source", profile, "a")
    target = write_profiled(tmp_path / "target", profile, "a", with_mtp=False)
    before = digest(target)
    code, out, err = run_cli(capsys, "graft", target, "--from", source, "--layers", bad)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert (
        f"--layers {bad}: SOURCE" in err
        and f"has no draft layer {bad}; its 1 draft layer is {valid}" in err
    )
    assert digest(target) == before


# ----------------------------------------------------------- a drafter without a profile
def _serve_learned(monkeypatch: pytest.MonkeyPatch, source: Path) -> list[str]:
    """Make the CLI's --learn door answer with a mapping learned (here: written by hand,
    as the dry run would record it) for ERNIE's drafter from ``source``; returns the
    draft tensors it reads."""
    from vllm_draft_quant.checkpoint.index import CheckpointFiles
    from vllm_draft_quant.cli import _learn
    from vllm_draft_quant.core.learned import Feed, LearnedLayer, Observation, learned_profile
    from vllm_draft_quant.core.schemes import ModuleKind

    draft = sorted(n for n in CheckpointFiles(source).weight_names() if ".mtp_" in n)
    o_proj = next(n for n in draft if n.endswith("self_attn.o_proj.weight"))
    layer = LearnedLayer(
        path="model.layers.2.mtp_block.self_attn.o_proj",
        prefix="model.layers.2.self_attn.o_proj",
        kind=ModuleKind.LINEAR,
    )
    feeds = [
        Feed(tensor=n, param=f"{layer.path}.weight" if n == o_proj else f"other.{i}")
        for i, n in enumerate(draft)
    ]
    profile = learned_profile(
        Observation(drafter="ErnieMTPModel", layers=(layer,), feeds=tuple(feeds))
    )
    monkeypatch.setattr(_learn, "learned_profile_of", lambda model, **_: profile)
    return draft


def test_graft_learn_copies_what_the_drafter_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = pair_of(tmp_path, "ernie4_5_moe")
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "add --learn" in err and err.count("\n") == 1
    draft = _serve_learned(monkeypatch, source)
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source, "--learn", "--layers", "2")
    assert (
        code == 2
        and err.count("\n") == 1
        and "--layers 2: ErnieMTPModel's mapping was "
        "learned from vLLM, which numbers no draft layers"
        in err
        and "leave out --layers" in err
    )
    assert digest(target) == before
    code, out, err = run_cli(capsys, "graft", target, "--from", source, "--learn")
    assert code == 0, out + err
    assert (
        f"draft tensors ErnieMTPModel reads (learned from vLLM): copied {len(draft)} tensors" in out
    )
    assert "exclusion added: model.layers.2.self_attn.o_proj" in out
    after = digest(target)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source, "--learn")
    assert code == 0 and "already grafted, nothing to change" in out and digest(target) == after


def pair_of(tmp_path: Path, family: str) -> tuple[Path, Path]:
    from _cli_support import ckpt

    return (
        ckpt(tmp_path / "source", family, layout="a"),
        ckpt(tmp_path / "target", family, layout="a", with_mtp=False),
    )
