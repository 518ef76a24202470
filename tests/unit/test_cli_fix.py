"""``fix``: diff, --write with .bak, idempotence, the entries chosen per family."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest
from _cli_support import FAMILIES, PRODUCERS, ckpt, digest, exclusions, load, run_cli

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.checkpoint.facts import load_facts

# What fix adds to a ModelOpt config, per family and all-BF16 layout (FINDINGS.md):
# Step-3.5 exact checkpoint names never match its runtime prefixes -> layer wildcard;
# DeepSeek's head is `model.layers.N.head` at runtime -> that runtime name.
EXPECTED_MODELOPT = {
    ("step3p5", "a"): ["model.layers.2*"],
    ("step3p5", "b"): [],
    ("step3p5", "c"): ["model.layers.2*"],
    ("qwen3_next", "a"): ["mtp.layers.0*", "mtp.fc"],
    ("qwen3_next", "b"): [],
    ("qwen3_next", "c"): [],
    ("deepseek_v3", "a"): ["model.layers.2*"],
    ("deepseek_v3", "b"): [],
    ("deepseek_v3", "c"): ["model.layers.2.head"],
}


@pytest.mark.parametrize(("family", "layout"), sorted(EXPECTED_MODELOPT))
@pytest.mark.parametrize("scheme", ["nvfp4", "fp8"])
def test_modelopt_entries(family: str, layout: str, scheme: str, tmp_path: Path,
                          capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", family, scheme, layout=layout)
    before_cfg = exclusions(model)
    before = digest(model)
    added = EXPECTED_MODELOPT[(family, layout)]
    code, out, _ = run_cli(capsys, "fix", model)
    assert code == (1 if added else 0)
    assert digest(model) == before  # no --write: nothing written
    for e in added:
        assert f'+      "{e}"' in out and f"exclusion would be added: {e}" in out
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0
    assert exclusions(model) == before_cfg + added
    hq = load(model / "hf_quant_config.json")["quantization"]["exclude_modules"]
    assert hq == before_cfg + added
    assert "stock vLLM (without the plugin) builds every draft module" in out
    assert core_plan(model).conflicts == ()


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_write_keeps_bak_then_idempotent(family: str, producer: str, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", family, producer=producer, layout="a")
    originals = {f.name: f.read_bytes() for f in model.glob("*.json")}
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0, out
    changed = [n for n in originals if (model / n).read_bytes() != originals[n]]
    assert "config.json" in changed
    for name in changed:
        assert (model / f"{name}.bak").read_bytes() == originals[name]
        assert f"wrote {model / name}" in out
    assert not list(model.glob(".*"))  # no temp or lock file left behind
    after = digest(model)
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0 and "nothing to change" in out
    assert digest(model) == after
    code, out, _ = run_cli(capsys, "fix", model)
    assert code == 0 and "---" not in out
    assert core_plan(model).conflicts == ()


@pytest.mark.parametrize("family", FAMILIES)
def test_compressed_tensors_whole_layer_is_one_pattern(family: str, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A BF16 draft layer in a compressed-tensors export: one ``re:`` entry (on the layer's
    checkpoint and runtime roots), not one exact name per module and expert."""
    model = ckpt(tmp_path / "m", family, producer="compressed-tensors", layout="a")
    before = exclusions(model)
    run_cli(capsys, "fix", model, "--write")
    added = [e for e in exclusions(model) if e not in before]
    facts = load_facts(model)
    patterns = [e for e in added if e.startswith("re:")]
    assert len(patterns) == len(facts.names.layers) == 1
    assert [e for e in added if not e.startswith("re:")] == (
        ["mtp.fc"] if family == "qwen3_next" else [])
    layer = facts.names.layers[0]
    assert re.match(patterns[0][3:], layer.checkpoint_root + ".x")
    assert re.match(patterns[0][3:], layer.runtime_root + ".x")
    assert not re.match(patterns[0][3:], layer.checkpoint_root + "0.x")  # not layer 20, 200
    for m in core_plan(model).modules:
        if m.kind not in ("plain", "fixed"):
            for t in m.checkpoint_tensors:
                assert any(re.match(p[3:], t) for p in patterns) or \
                    t.rsplit(".", 1)[0] in added


@pytest.mark.parametrize("family", ["qwen3_next", "deepseek_v3", "glm4_moe"])
def test_compressed_tensors_experts_are_one_pattern(family: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Quantized attention, BF16 MLP not excluded: every expert by one ``re:`` entry (was
    one exact name per expert and projection: ~500 lines per layer for GLM-4.6)."""
    model = ckpt(tmp_path / "m", family, producer="compressed-tensors", layout="f",
                 exclusions=())
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0, out
    added = exclusions(model)
    experts = [e for e in added if "experts" in e and not e.endswith("_proj")]
    assert len(experts) == 1 and experts[0].startswith("re:") and experts[0].endswith(r"experts\.")
    assert not any(re.search(r"experts\.\d", e) for e in added)
    assert "builds every draft module in its stored precision" in out
    assert core_plan(model).conflicts == ()


def test_wrong_exact_entry_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "deepseek_v3", layout="g",
                 exclusions=("model.layers.2.self_attn.q_a_proj",
                             "model.layers.2.self_attn.kv_a_proj_with_mqa"))
    assert core_plan(model).conflicts
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0, out
    assert "removed (it covered a quantized draft module)" in out
    assert not any(e.startswith("model.layers.2.") for e in exclusions(model))
    assert core_plan(model).conflicts == ()


def test_wrong_wildcard_reported_not_removed(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="d", exclusions=("model.layers.2*",))
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 1
    assert "not fixed: entry 'model.layers.2*' also excludes quantized draft modules" in out
    assert out.count("not fixed:") == 1
    assert "model.layers.2*" in exclusions(model)


def test_stock_limit_reported_qwen_fc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "qwen3_next", layout="g")
    code, out, _ = run_cli(capsys, "fix", model)
    assert code == 0 and "nothing to change" in out
    assert "stock vLLM cannot load the drafter correctly" in out
    assert "mtp.fc" in out and "plugin" in out


def test_stock_limit_reported_step3p5_compressed_tensors(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", producer="compressed-tensors", layout="b")
    code, out, _ = run_cli(capsys, "fix", model)
    assert code == 0 and "compressed-tensors Step-3.5" in out


def test_keeps_file_formatting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    for name in ("config.json", "hf_quant_config.json"):
        obj = load(model / name)
        (model / name).write_text(json.dumps(obj, indent=4))  # no final newline
    old = (model / "config.json").read_text().splitlines()
    run_cli(capsys, "fix", model, "--write")
    text = (model / "config.json").read_text()
    assert not text.endswith("\n")
    changes = [line for line in difflib.ndiff(old, text.splitlines()) if line[:1] in "+-"]
    pad = " " * 12  # a 4-space indent at depth 3 (ndiff puts "- " or "+ " before it)
    assert changes == [f'- {pad}"lm_head"', f'+ {pad}"lm_head",', f'+ {pad}"model.layers.2*"']


def test_unquantized_checkpoint_nothing_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                              ) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    cfg = load(model / "config.json")
    del cfg["quantization_config"]
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "hf_quant_config.json").unlink()
    before = digest(model)
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0 and "no quantization config" in out
    assert digest(model) == before


def test_unsupported_producer_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "deepseek_v3", layout="a")
    cfg = load(model / "config.json")
    cfg["quantization_config"] = {"quant_method": "fp8", "weight_block_size": [128, 128]}
    (model / "config.json").write_text(json.dumps(cfg))
    (model / "hf_quant_config.json").unlink()
    before = digest(model)
    code, _, err = run_cli(capsys, "fix", model, "--write")
    assert code == 2 and "ModelOpt and compressed-tensors" in err
    assert digest(model) == before


def test_exclusion_list_of_wrong_type_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    cfg = load(model / "config.json")
    cfg["quantization_config"]["ignore"] = {"x": 1}
    (model / "config.json").write_text(json.dumps(cfg))
    before = digest(model)
    code, _, err = run_cli(capsys, "fix", model, "--write")
    assert code == 2 and err.count("\n") == 1
    assert digest(model) == before


def test_sharded_and_multi_layer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = ckpt(tmp_path / "m", "step3p5", layout="a", num_mtp_layers=3, sharded=True,
                 mtp_own_shard=True)
    code, _, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0
    assert exclusions(model)[-3:] == ["model.layers.2*", "model.layers.3*", "model.layers.4*"]
    assert core_plan(model).conflicts == ()


def test_quantization_config_inside_text_config(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """A multimodal wrapper (Step-3.7 style) keeps the text model's keys in text_config."""
    model = ckpt(tmp_path / "m", "step3p5", layout="a")
    inner = load(model / "config.json")
    wrapped = {"architectures": ["Step3p7ForConditionalGeneration"], "model_type": "step3p7",
               "text_config": inner}
    (model / "config.json").write_text(json.dumps(wrapped, indent=2))
    code, _, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0
    cfg = load(model / "config.json")
    assert "quantization_config" not in cfg
    assert cfg["text_config"]["quantization_config"]["ignore"][-1] == "model.layers.2*"
    assert core_plan(model).conflicts == ()


def test_partially_excluded_fused_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Only q_proj excluded: stock vLLM would raise "some but not all shards"; fix adds the
    fused runtime name, which vLLM's matcher checks before the shards."""
    model = ckpt(tmp_path / "m", "qwen3_next", layout="a",
                 exclusions=("mtp.layers.0.self_attn.q_proj",))
    code, out, _ = run_cli(capsys, "fix", model, "--write")
    assert code == 0, out
    assert exclusions(model)[-3:] == ["mtp.layers.0*", "mtp.fc", "mtp.layers.0.self_attn.qkv_proj"]
    assert core_plan(model).conflicts == ()


def test_diff_marks_missing_final_newline() -> None:
    from vllm_draft_quant.repair.fixer import unified_diff

    diff = unified_diff("c.json", '{\n  "a": 1\n}', '{\n  "a": 2\n}')
    assert diff.endswith("\n }\n\\ No newline at end of file\n")
    assert diff.count("\\ No newline at end of file") == 1


def test_fix_speculative_config_fixes_the_draft_checkpoint(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """An EAGLE3 draft (planned with its target's layer count) whose config does not
    exclude its BF16 fc and lm_head: fixed in the draft's folder; the target untouched."""
    from support.eagle3 import Eagle3Spec, LlamaTargetSpec, write_eagle3_draft, write_llama_target

    target = write_llama_target(tmp_path / "llama", LlamaTargetSpec("nvfp4")).path
    draft = write_eagle3_draft(tmp_path / "eagle3", Eagle3Spec(attn="fp8", mlp="fp8")).path
    for name, path in (("config.json", ("quantization_config", "ignore")),
                       ("hf_quant_config.json", ("quantization", "exclude_modules"))):
        obj = load(draft / name)
        obj[path[0]][path[1]] = []
        (draft / name).write_text(json.dumps(obj, indent=2))
    spec = json.dumps({"method": "eagle3", "model": str(draft)})
    code, _, err = run_cli(capsys, "fix", draft)
    assert code == 2 and "--speculative-config" in err  # alone it cannot be placed
    before_target = digest(target)
    code, out, _ = run_cli(capsys, "fix", target, "--speculative-config", spec, "--write")
    assert code == 0, out
    assert f"the drafter loads from {draft}" in out
    assert "exclusion added: fc" in out and "exclusion added: lm_head" in out
    assert "builds every draft module in its stored precision" in out
    assert load(draft / "hf_quant_config.json")["quantization"]["exclude_modules"] == [
        "fc", "lm_head"]
    assert digest(target) == before_target
    code, out, _ = run_cli(capsys, "fix", target, "--speculative-config", spec)
    assert code == 0 and "nothing to change" in out
    assert core_plan(target, speculative_config=spec).conflicts == ()


# ------------------------------------------------------------------- issue 18: many rules
@pytest.mark.parametrize("producer", PRODUCERS)
def test_many_exclusions_are_matched_without_per_call_compiling(
        producer: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 6: 100,000 entries hung fix (every pattern compiled per call through
    fnmatch, whose cache holds 32,768; one regex of all globs compiled per rule set).
    Now each pattern is compiled at most once, lazily: the number of compilations does
    not grow with the list (timings live in benchmarks/bench_match.py)."""
    import fnmatch
    import re

    model = ckpt(tmp_path / "m", "deepseek_v3", producer=producer, layout="a")
    n = 4_000
    extra = [f"model.layers.0.mlp.experts.{i}.gate_proj" for i in range(n // 2)]
    extra += [f"re:model\\.layers\\.0\\.mlp\\.experts\\.{i}\\.up_proj" if producer !=
              "modelopt" else f"model.layers.0.mlp.experts.{i}.up_proj*" for i in range(n // 2)]
    for name in ("config.json", "hf_quant_config.json"):
        path = model / name
        if not path.exists():
            continue
        cfg = load(path)
        node = cfg.get("quantization_config") or cfg["quantization"]
        key = "ignore" if "ignore" in node or producer != "modelopt" else "exclude_modules"
        node[key] = [*(node.get(key) or []), *extra]
        path.write_text(json.dumps(cfg))
    calls = {"fnmatch": 0, "translate": 0, "compile": 0}
    real_translate, real_compile = fnmatch.translate, re.compile

    def counting(name: str, real: object) -> object:
        def wrapper(*a: object, **k: object) -> object:
            calls[name] += 1
            return real(*a, **k)  # type: ignore[operator]
        return wrapper

    monkeypatch.setattr(fnmatch, "fnmatch", counting("fnmatch", fnmatch.fnmatch))
    monkeypatch.setattr(fnmatch, "fnmatchcase", counting("fnmatch", fnmatch.fnmatchcase))
    monkeypatch.setattr(fnmatch, "translate", counting("translate", real_translate))
    monkeypatch.setattr(re, "compile", counting("compile", real_compile))
    code, out, err = run_cli(capsys, "fix", model)
    assert code == 1, err
    assert "model.layers.2*" in out or r"re:model\.layers\.2\." in out
    assert calls["fnmatch"] < 100, calls  # a few outside matching (file globs), not per entry
    assert calls["translate"] < 1000, calls
    # compressed-tensors: each re: entry compiled once per list read (configs, stock model)
    assert calls["compile"] < (4 * n if producer != "modelopt" else 1000), calls
