"""Draft weights from their own checkpoint: `core.speculative`, `plan(speculative_config=)`
and ``vllm-draft-quant plan --speculative-config``. Pure (no vLLM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _cli_support import FAMILIES, ckpt, run_cli
from support.eagle3 import (
    Eagle3Spec,
    EagleSpec,
    LlamaTargetSpec,
    write_eagle3_draft,
    write_eagle_pair,
    write_llama_target,
)

from vllm_draft_quant import (
    ConfigError,
    MissingDraftWeightsError,
    Scheme,
    UnknownDrafterError,
    plan,
)
from vllm_draft_quant.checkpoint.speculative import draft_source, parse_speculative_config


def _pair(tmp_path: Path, family: str, scheme: str = "nvfp4") -> tuple[Path, Path]:
    """(quantized target without MTP weights, its BF16 original)."""
    target = ckpt(tmp_path / "target", family, scheme, with_mtp=False)
    draft = ckpt(tmp_path / "bf16", family, scheme, quantized=False, seed=1)
    return target, draft


def _mtp(model: Path | None = None) -> str:
    spec: dict[str, object] = {"method": "mtp", "num_speculative_tokens": 3}
    if model is not None:
        spec["model"] = str(model)
    return json.dumps(spec)


def test_unquantized_factory_checkpoint_has_no_quant_config(tmp_path: Path) -> None:
    folder = ckpt(tmp_path / "m", "qwen3_next", quantized=False)
    assert "quantization_config" not in json.loads((folder / "config.json").read_text())
    assert not (folder / "hf_quant_config.json").exists()


@pytest.mark.parametrize("family", FAMILIES)
def test_plan_comes_from_the_draft_checkpoint(family: str, tmp_path: Path) -> None:
    target, draft = _pair(tmp_path, family)
    with pytest.raises(MissingDraftWeightsError, match="--speculative-config"):
        plan(target)  # the quantized export has no MTP weights
    p = plan(target, speculative_config=_mtp(draft))
    assert p == plan(draft)
    assert p.modules and all(m.scheme is Scheme.UNQUANTIZED for m in p.modules)
    assert not p.conflicts


@pytest.mark.parametrize("family", FAMILIES)
def test_a_quantized_draft_next_to_a_bf16_target(family: str, tmp_path: Path) -> None:
    target = ckpt(tmp_path / "target", family, quantized=False)
    draft = ckpt(tmp_path / "draft", family, "fp8", layout="d", seed=1)
    p = plan(target, speculative_config={"method": "mtp", "model": str(draft)})
    assert p == plan(draft)
    assert any(m.scheme is Scheme.FP8 for m in p.modules)
    assert p != plan(target)


@pytest.mark.parametrize("family", FAMILIES)
def test_same_folder_changes_nothing(family: str, tmp_path: Path) -> None:
    target = ckpt(tmp_path / "m", family, layout="a")
    assert plan(target, speculative_config=_mtp(target)) == plan(target)
    assert plan(target, speculative_config=_mtp()) == plan(target)
    src = draft_source(target, _mtp())
    assert not src.separate and src.draft_dir == src.target_dir


def test_draft_source_mtp(tmp_path: Path) -> None:
    target, draft = _pair(tmp_path, "deepseek_v3")
    src = draft_source(target, _mtp(draft))
    assert (src.method, src.separate, src.draft_dir, src.drafter) == ("mtp", True, draft, None)
    # vLLM's deprecated per-family method names mean "mtp"
    assert draft_source(target, {"method": "deepseek_mtp", "model": str(draft)}).method == "mtp"
    # no method: vLLM infers mtp from the draft's config
    assert draft_source(target, {"model": str(draft)}).method == "mtp"


def test_draft_source_eagle3(tmp_path: Path) -> None:
    target = write_llama_target(tmp_path / "llama", LlamaTargetSpec(num_hidden_layers=3)).path
    draft = write_eagle3_draft(tmp_path / "my-eagle3", Eagle3Spec("fp8", "fp8", "fp8")).path
    src = draft_source(target, {"method": "eagle3", "model": str(draft)})
    assert (src.method, src.drafter, src.target_layers) == ("eagle3", "LlamaForCausalLMEagle3", 3)
    assert draft_source(target, {"model": str(draft)}).method == "eagle3"  # as vLLM infers
    p = plan(target, speculative_config={"method": "eagle3", "model": str(draft)})
    assert p.modules[0].module == "model.layers.3.self_attn.qkv_proj"
    assert p.drafter == "Eagle3LlamaForCausalLM"


@pytest.mark.parametrize(("family", "drafter"), [("minicpm", "EagleMiniCPMForCausalLM"),
                                                  ("deepseek", "EagleDeepSeekMTPModel")])
def test_draft_source_eagle(family: str, drafter: str, tmp_path: Path) -> None:
    """EAGLE-1 (``"method": "eagle"``): the drafter vLLM names (``Eagle`` + the draft's
    architecture; a DeepSeek-V3 config becomes ``DeepSeekMTPModel`` first), its layers
    after the target's, planned from the draft folder's own tensors and config."""
    target, draft, spec = write_eagle_pair(tmp_path, EagleSpec(family, "nvfp4", "a"))  # type: ignore[arg-type]
    src = draft_source(target.path, spec)
    assert (src.method, src.drafter, src.target_layers) == ("eagle", drafter, 2)
    p = plan(target.path, speculative_config=spec)
    assert p == plan(draft.path, drafter=drafter, target_layers=2)
    assert p.drafter == drafter and all(d.scheme.value == "unquantized" for d in p.modules)


def test_draft_source_eagle_without_a_profile(tmp_path: Path) -> None:
    target, _, spec = write_eagle_pair(tmp_path, EagleSpec("llama"))
    with pytest.raises(UnknownDrafterError, match=r"'eagle'.*EagleLlamaForCausalLM"):
        draft_source(target.path, spec)


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("{not json", ConfigError, "not valid JSON"),
        ("[1, 2]", ConfigError, "expected a JSON object"),
        ('{"method": 3}', ConfigError, "'method' must be a string"),
        ('{"method": "mtp", "model": 7}', ConfigError, "'model' must be a string"),
        ('{"method": "eagle3"}', ConfigError, "needs 'model'"),
        ('{"method": "ngram", "num_speculative_tokens": 3}', UnknownDrafterError, "'ngram'"),
        ('{"method": "eagle"}', ConfigError, "needs 'model'"),
    ],
)
def test_bad_speculative_configs(
    value: str, error: type[Exception], match: str, tmp_path: Path
) -> None:
    target = ckpt(tmp_path / "m", "step3p5", layout="b")
    with pytest.raises(error, match=match):
        draft_source(target, value)


def test_parse_keeps_vllms_other_fields() -> None:
    got = parse_speculative_config('{"method": "mtp", "num_speculative_tokens": 3}')
    assert got == {"method": "mtp", "num_speculative_tokens": 3}


def test_cli_shows_where_each_module_comes_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target, draft = _pair(tmp_path, "qwen3_next")
    code, out, err = run_cli(capsys, "plan", target, "--speculative-config", _mtp(draft))
    assert code == 0, err
    assert f"draft weights from {draft} (speculative_config.model)" in out
    assert f"not from the target {target}" in out
    header = next(line for line in out.splitlines() if "MODULE" in line)
    assert header.split() == ["LAYER", "MODULE", "STORED", "DECIDED", "SOURCE", "FROM"]
    rows = [line for line in out.splitlines() if " BF16 " in line]
    assert rows and all(line.split()[-1] == "draft:model.safetensors" for line in rows)
    code, out, _ = run_cli(capsys, "plan", target, "--speculative-config", _mtp(draft), "--json")
    doc = json.loads(out)
    assert {k: doc[k] for k in json.loads(plan(draft).to_json())} == json.loads(plan(draft).to_json())


def test_cli_same_folder_names_the_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ckpt(tmp_path / "m", "deepseek_v3", layout="b", sharded=True, mtp_own_shard=True)
    code, out, _ = run_cli(capsys, "plan", target, "--speculative-config", _mtp())
    assert code == 0
    assert f"draft weights from the target's own folder {target}" in out
    assert "target:model-mtp.safetensors" in out


def test_cli_eagle3(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = write_llama_target(tmp_path / "llama", LlamaTargetSpec("nvfp4")).path
    draft = write_eagle3_draft(tmp_path / "d", Eagle3Spec("nvfp4", "nvfp4", "nvfp4")).path
    spec = json.dumps({"method": "eagle3", "model": str(draft)})
    code, out, err = run_cli(capsys, "plan", target, "--speculative-config", spec)
    assert code == 0, err
    assert "layer 0 = checkpoint layers.0, runtime model.layers.2" in out
    assert "Eagle3LlamaForCausalLM: 6 modules (5 nvfp4, 1 unquantized)" in out
    # alone, an EAGLE3 folder cannot be placed: the error says how to plan it
    code, _, err = run_cli(capsys, "plan", draft)
    assert code == 2 and "--speculative-config" in err


def test_cli_bad_speculative_config_is_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ckpt(tmp_path / "m", "step3p5", layout="b")
    code, _, err = run_cli(capsys, "plan", target, "--speculative-config", "{oops")
    assert code == 2 and "not valid JSON" in err


def test_help_documents_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli(capsys, "plan", "--help")
    out = capsys.readouterr().out
    assert "--speculative-config JSON" in out and '"method": "eagle3"' in out


def test_cli_fix_eagle_says_stock_vllm_reads_the_targets_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Stock vLLM builds EagleMiniCPM (and EagleDeepSeekMTP) on the *target's* quant
    config: ``fix`` on the draft folder says so, instead of promising that the fixed draft
    config makes stock vLLM load it right."""
    target, _, spec = write_eagle_pair(tmp_path, EagleSpec("minicpm", "nvfp4", "a"))
    code, out, _ = run_cli(capsys, "fix", str(target.path), "--speculative-config",
                           json.dumps(spec))
    assert code == 1
    assert f"with the target's quantization config ({target.path})" in out
    assert "builds every draft module in its stored precision" not in out
