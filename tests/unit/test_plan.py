"""plan(): the JSON contract, evidence against config, missing weights, overrides, errors."""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from pathlib import Path
from typing import Any

import pydantic
import pytest
from _plan_checks import QUANTIZABLE_KINDS, assert_plan_follows_stored_formats, stored_scheme
from _st_writer import write_safetensors
from hypothesis import given
from hypothesis import strategies as st
from strategies import json_values, mtp_formats
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint

from vllm_draft_quant import (
    CheckpointError,
    ConfigError,
    ConflictError,
    DraftQuantError,
    MissingDraftWeightsError,
    Overrides,
    Plan,
    Scheme,
    UnknownDrafterError,
    plan,
)
from vllm_draft_quant.core.names import module_of

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
QUANTS = (("modelopt", "nvfp4"), ("modelopt", "fp8"), ("compressed-tensors", "nvfp4"))
SCHEMES = {"unquantized", "nvfp4", "fp8", "fp8_block", "mxfp4", "int4", "unknown"}
SOURCES = {"evidence", "exclude-rule", "override", "default"}
DRAFTERS = {"step3p5": "Step3p5MTP", "qwen3_next": "Qwen3NextMTP",
            "deepseek_v3": "DeepSeekMTPModel"}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], WrittenCheckpoint]:
    """One checkpoint per family in layout a (BF16 MTP, not excluded) and g (all quantized)."""
    out = {}
    for fam in FAMILIES:
        for layout in ("a", "g"):
            path = tmp_path_factory.mktemp(f"{fam}-{layout}")
            out[fam, layout] = write_checkpoint(path, CheckpointSpec(fam, "nvfp4", layout=layout))
    return out


def _rewrite_config(path: Path, edit: Any) -> None:
    """Apply ``edit`` to config.json (and hf_quant_config.json if present)."""
    for name in ("config.json", "hf_quant_config.json"):
        f = path / name
        if f.exists():
            data = json.loads(f.read_text())
            edit(name, data)
            f.write_text(json.dumps(data))


# ---------------------------------------------------------------- JSON shape
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layout", ["a", "g"])
def test_plan_json_has_exactly_the_documented_shape(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], family: str, layout: str
) -> None:
    p = plan(ckpts[family, layout].path)
    doc = json.loads(p.to_json())
    assert list(doc) == ["drafter", "mode", "modules", "conflicts", "warnings"]
    assert doc["drafter"] == DRAFTERS[family]
    assert doc["mode"] == "auto"
    assert isinstance(doc["modules"], list) and doc["modules"]
    for m in doc["modules"]:
        assert list(m) == ["module", "scheme", "source", "reason", "checkpoint_tensors",
                           "stored", "layer", "checkpoint_file"]
        assert m["layer"] is None or isinstance(m["layer"], int)
        assert isinstance(m["checkpoint_file"], str) and m["checkpoint_file"].endswith(".safetensors")
        assert isinstance(m["module"], str) and isinstance(m["reason"], str) and m["reason"]
        assert m["scheme"] in SCHEMES and m["source"] in SOURCES
        assert isinstance(m["checkpoint_tensors"], list)
        assert all(isinstance(t, str) for t in m["checkpoint_tensors"])
        assert m["checkpoint_tensors"] == sorted(m["checkpoint_tensors"])
    assert isinstance(doc["conflicts"], list)
    for c in doc["conflicts"]:
        assert list(c) == ["module", "message", "cause", "handled"]
        assert c["handled"] is True  # auto mode: the plugin builds them as stored
        assert all(isinstance(c[k], str) for k in ("module", "message", "cause"))
    # layout a: config says quantized, tensors are BF16 -> conflicts are recorded
    assert bool(doc["conflicts"]) == (layout == "a")
    assert json.loads(p.to_json(indent=None)) == doc


def test_plan_is_immutable_and_stable(ckpts: dict[tuple[str, str], WrittenCheckpoint]) -> None:
    path = ckpts["step3p5", "g"].path
    p = plan(path)
    with pytest.raises(pydantic.ValidationError):
        p.mode = "strict"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        p.modules[0].scheme = Scheme.FP8  # type: ignore[misc]
    assert isinstance(p.modules, tuple)
    again = plan(str(path))
    assert again == p and again.digest() == p.digest() and again.to_json() == p.to_json()
    assert p.decision(p.modules[0].module) == p.modules[0]
    assert p.decision("model.layers.0.self_attn.o_proj") is None
    assert set(p.by_module()) == {m.module for m in p.modules}
    assert p.summary().startswith("Step3p5MTP: ")


def test_plain_decisions_and_the_plan_model_agree(
        ckpts: dict[tuple[str, str], WrittenCheckpoint]) -> None:
    """``fix`` and ``graft`` read the resolver's plain dataclasses (no pydantic); the
    public `Plan` is built from them field for field, so the two must keep the same
    fields (names, order, defaults) and carry the same values."""
    import dataclasses

    from vllm_draft_quant.checkpoint.facts import decisions_from_facts, load_facts
    from vllm_draft_quant.core import decisions
    from vllm_draft_quant.core import plan as plan_model

    for plain, model in ((decisions.Decision, plan_model.ModuleDecision),
                         (decisions.ConflictRecord, plan_model.Conflict),
                         (decisions.Decisions, plan_model.Plan)):
        fields = dataclasses.fields(plain)
        assert [f.name for f in fields] == list(model.model_fields), plain
        for f in fields:
            default = model.model_fields[f.name].default
            assert f.default is dataclasses.MISSING or f.default == default, (plain, f.name)
    for (family, layout), ck in ckpts.items():
        facts = load_facts(ck.path)
        d = decisions_from_facts(facts)
        p = plan(ck.path)
        assert Plan.of(d) == p and all(m.checkpoint_file for m in d.modules), (family, layout)


def test_invalid_mode_is_a_config_error(ckpts: dict[tuple[str, str], WrittenCheckpoint]) -> None:
    with pytest.raises(ConfigError, match="mode"):
        plan(ckpts["step3p5", "g"].path, mode="lenient")  # type: ignore[arg-type]


# ------------------------------------------------------- evidence vs. config
@pytest.mark.parametrize("family", FAMILIES)
def test_evidence_beats_a_rule_that_says_unquantized(tmp_path: Path, family: str) -> None:
    """Everything quantized, but the config also excludes the attention: auto follows the
    tensors and records a conflict per module; strict refuses."""
    w = write_checkpoint(tmp_path, CheckpointSpec(family, "nvfp4", layout="g"))
    attn = sorted(n for n in w.mtp_modules if ".self_attn." in n)

    def edit(name: str, data: dict[str, Any]) -> None:
        q = data["quantization"] if name == "hf_quant_config.json" else data["quantization_config"]
        q["exclude_modules" if "exclude_modules" in q else "ignore"] += attn

    _rewrite_config(tmp_path, edit)
    p = plan(tmp_path)
    assert_plan_follows_stored_formats(p, w)
    attn_modules = {d.module for d in p.modules if any(".self_attn." in t for t in d.checkpoint_tensors)}
    assert attn_modules
    for d in p.modules:
        if d.module in attn_modules:
            assert (d.scheme, d.source) == (Scheme.NVFP4, "evidence")
    assert {c.module for c in p.conflicts} == attn_modules
    assert all("config says unquantized" in c.message for c in p.conflicts)
    with pytest.raises(ConflictError) as info:
        plan(tmp_path, mode="strict")
    assert f"see: vllm-draft-quant plan {tmp_path}" in str(info.value)


@pytest.mark.parametrize("family", FAMILIES)
def test_evidence_beats_a_config_that_says_quantized(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], family: str
) -> None:
    w = ckpts[family, "a"]  # BF16 MTP that the exclusions do not mention (a graft)
    p = plan(w.path)
    assert_plan_follows_stored_formats(p, w)
    quantizable = [d for d in p.modules if d.kind in QUANTIZABLE_KINDS]
    assert all(d.scheme is Scheme.UNQUANTIZED and d.source == "evidence" for d in quantizable)
    assert {c.module for c in p.conflicts} == {d.module for d in quantizable}
    with pytest.raises(ConflictError):
        plan(w.path, mode="strict")
    assert plan(ckpts[family, "g"].path, mode="strict").conflicts == ()


_quant = st.sampled_from(QUANTS)


@functools.cache
def _mtp_modules(family: str, n_mtp: int) -> list[str]:
    """The MTP module names the factory writes for a family (same for every layout)."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = CheckpointSpec(family, "fp8", num_mtp_layers=n_mtp)  # type: ignore[arg-type]
        return sorted(write_checkpoint(tmp, spec).mtp_modules)


@given(family=st.sampled_from(FAMILIES), quant=_quant, n_mtp=st.integers(1, 2), data=st.data())
def test_auto_follows_evidence_and_strict_raises_exactly_on_disagreement(
    family: str, quant: tuple[str, str], n_mtp: int, data: st.DataObject
) -> None:
    """Random stored formats per MTP layer and a random exact exclusion list: auto plans the
    stored format and records a conflict exactly where the config disagrees (or excludes
    only some shards of a fused module); strict raises iff there is one."""
    producer, scheme = quant
    layout = tuple(data.draw(mtp_formats(scheme)) for _ in range(n_mtp))
    candidates = _mtp_modules(family, n_mtp)
    excluded = set(data.draw(st.lists(st.sampled_from(candidates), unique=True, max_size=12)))
    with tempfile.TemporaryDirectory() as tmp:
        spec = CheckpointSpec(family, scheme, producer, layout=layout,  # type: ignore[arg-type]
                              exclusions=tuple(sorted(excluded)), num_mtp_layers=n_mtp)
        w = write_checkpoint(Path(tmp) / "m", spec)
        p = plan(w.path)
        assert_plan_follows_stored_formats(p, w)
        expected: set[str] = set()
        for d in p.modules:
            if d.kind not in QUANTIZABLE_KINDS:
                continue
            modules = {module_of(t) for t in d.checkpoint_tensors}
            hit = modules & excluded
            stored = stored_scheme(w, d.checkpoint_tensors)
            said = "unquantized" if hit == modules else scheme
            if (hit and hit != modules) or said != stored:
                expected.add(d.module)
            if said != stored:
                assert d.source == "evidence"
            elif hit == modules:
                assert d.source == "exclude-rule"
        assert {c.module for c in p.conflicts} == expected
        if expected:
            with pytest.raises(ConflictError):
                plan(w.path, mode="strict")
        else:
            assert plan(w.path, mode="strict") == p.model_copy(update={"mode": "strict"})


@given(family=st.sampled_from(FAMILIES), quant=_quant, data=st.data())
def test_target_only_exclusions_change_no_plan(
    family: str, quant: tuple[str, str], data: st.DataObject
) -> None:
    """Exclusions naming only target-model modules leave every draft decision as it was."""
    producer, scheme = quant
    layout = data.draw(mtp_formats(scheme))
    with tempfile.TemporaryDirectory() as tmp:
        base = write_checkpoint(Path(tmp) / "a", CheckpointSpec(
            family, scheme, producer, layout=layout))  # type: ignore[arg-type]
        target = sorted({t.module for t in base.tensors.values() if not t.mtp}
                        - {"lm_head"})  # Qwen3-Next's drafter builds its own lm_head
        extra = data.draw(st.lists(st.sampled_from(target), unique=True, min_size=1, max_size=20))
        if producer == "modelopt":  # and a subtree rule per target layer
            extra += [f"model.layers.{i}*" for i in range(base.config["num_hidden_layers"])]
        w = write_checkpoint(Path(tmp) / "b", CheckpointSpec(
            family, scheme, producer, layout=layout,  # type: ignore[arg-type]
            exclusions=(*_mtp_exclusions_of(base), *extra)))
        a, b = plan(base.path), plan(w.path)

        def key(p: Plan) -> list[tuple[str, str, str]]:
            return [(d.module, d.scheme.value, d.source) for d in p.modules]

        assert key(a) == key(b)
        assert [c.module for c in a.conflicts] == [c.module for c in b.conflicts]


def _mtp_exclusions_of(w: WrittenCheckpoint) -> list[str]:
    """The exact MTP exclusions the factory wrote (layout's 'exact' mode)."""
    return [e for e in w.exclusions if e in w.mtp_modules]


# ---------------------------------------------------------- missing weights
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("sharded", [False, True])
def test_missing_draft_weights_name_the_graft_command(
    tmp_path: Path, family: str, sharded: bool
) -> None:
    w = write_checkpoint(tmp_path, CheckpointSpec(family, "nvfp4", with_mtp=False,
                                                  sharded=sharded))
    assert not w.mtp_tensor_names()
    with pytest.raises(MissingDraftWeightsError) as info:
        plan(tmp_path)
    msg = str(info.value)
    assert f"vllm-draft-quant graft {tmp_path}" in msg
    assert str(tmp_path) in msg and DRAFTERS[family] in msg
    assert isinstance(info.value, CheckpointError)


# ---------------------------------------------------------------- overrides
def test_overrides_win_by_runtime_or_checkpoint_name(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], tmp_path: Path
) -> None:
    path = ckpts["step3p5", "g"].path
    ov = Overrides(modules={"model.layers.2.mtp_block.self_attn.qkv_proj": Scheme.FP8,
                            "model.layers.2.mlp.down_proj": Scheme.UNQUANTIZED})
    p = plan(path, overrides=ov)
    qkv = p.decision("model.layers.2.mtp_block.self_attn.qkv_proj")
    down = p.decision("model.layers.2.mtp_block.mlp.down_proj")
    assert qkv is not None and (qkv.scheme, qkv.source) == (Scheme.FP8, "override")
    assert down is not None and (down.scheme, down.source) == (Scheme.UNQUANTIZED, "override")
    untouched = p.decision("model.layers.2.mtp_block.self_attn.o_proj")
    assert untouched is not None and untouched.source == "default"
    f = tmp_path / "ov.yaml"
    f.write_text("version: 1\nmodules:\n  'model.layers.2.mlp.*': fp8\n")
    p = plan(path, overrides=f)
    assert {d.module for d in p.modules if d.source == "override"} == {
        "model.layers.2.mtp_block.mlp.gate_up_proj", "model.layers.2.mtp_block.mlp.down_proj"}
    with pytest.raises(ConfigError, match="'extra'"):
        f.write_text("version: 1\nmodules: {}\nextra: 1\n")
        plan(path, overrides=f)


# ------------------------------------------------------------ config errors
def test_unknown_architecture_and_forced_drafter(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], tmp_path: Path
) -> None:
    src = ckpts["deepseek_v3", "g"].path
    for f in src.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    _rewrite_config(tmp_path, lambda n, d: d.update(architectures=["MysteryForCausalLM"])
                    if n == "config.json" else None)
    with pytest.raises(UnknownDrafterError, match="MysteryForCausalLM"):
        plan(tmp_path)
    assert plan(tmp_path, drafter="DeepSeekMTPModel").drafter == "DeepSeekMTPModel"
    with pytest.raises(UnknownDrafterError, match="known drafters"):
        plan(tmp_path, drafter="EagleNope")


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda d: d.pop("num_hidden_layers"), "num_hidden_layers"),
        (lambda d: d.update(num_hidden_layers="2"), "num_hidden_layers"),
        (lambda d: d.update(num_hidden_layers=-1), "num_hidden_layers"),
        (lambda d: d.update(num_nextn_predict_layers=True), "num_nextn_predict_layers"),
        # a huge count used to build a NameMap of 10**12 layers (hang, then out of memory)
        (lambda d: d.update(num_nextn_predict_layers=10**12), "num_nextn_predict_layers"),
        (lambda d: d.update(architectures="DeepseekV3ForCausalLM"), "architectures"),
        (lambda d: d.update(architectures=[1]), "architectures"),
        (lambda d: d.update(quantization_config=["fp8"]), "quantization_config"),
        (lambda d: d["quantization_config"].pop("quant_method"), "quant_method"),
    ],
)
def test_malformed_config_json_raises_config_error(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], tmp_path: Path, edit: Any, field: str
) -> None:
    for f in ckpts["deepseek_v3", "g"].path.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    _rewrite_config(tmp_path, lambda n, d: edit(d) if n == "config.json" else None)
    with pytest.raises(ConfigError) as info:
        plan(tmp_path)
    assert field in str(info.value) and "config.json" in str(info.value)


@pytest.fixture(scope="module")
def fuzz_dir(ckpts: dict[tuple[str, str], WrittenCheckpoint],
             tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("fuzz-config")
    for f in ckpts["qwen3_next", "g"].path.iterdir():
        (d / f.name).write_bytes(f.read_bytes())
    return d


@given(key=st.sampled_from(["architectures", "num_hidden_layers", "num_nextn_predict_layers",
                            "mtp_num_hidden_layers", "quantization_config", "text_config"]),
       value=json_values)
def test_damaged_config_json_raises_only_project_errors(
    ckpts: dict[tuple[str, str], WrittenCheckpoint], fuzz_dir: Path, key: str, value: Any
) -> None:
    config = dict(ckpts["qwen3_next", "g"].config)
    config[key] = value
    (fuzz_dir / "config.json").write_text(json.dumps(config))
    with contextlib.suppress(DraftQuantError):  # anything else fails the test
        plan(fuzz_dir)


# ------------------------------------------------------------------ variants
def _rewrite_tensors(w: WrittenCheckpoint, keep: Any) -> None:
    """Rewrite a single-file factory checkpoint with ``keep(name, (dtype, shape))``."""
    specs = {}
    for name, t in w.tensors.items():
        got = keep(name, (t.dtype, t.shape))
        if got is not None:
            specs[name] = got
    write_safetensors(w.path / "model.safetensors", specs)


def test_deepseek_layer_without_q_a_proj_plans_kv_a_proj_alone(tmp_path: Path) -> None:
    """q_lora_rank=None: no fused_qkv_a_proj; kv_a_proj_with_mqa is its own module."""
    w = write_checkpoint(tmp_path, CheckpointSpec("deepseek_v3", "nvfp4", layout="g"))
    _rewrite_tensors(w, lambda n, s: None if ".2.self_attn.q_a_proj." in n else s)
    p = plan(tmp_path, mode="strict")
    mods = p.by_module()
    assert "model.layers.2.self_attn.fused_qkv_a_proj" not in mods
    kv = mods["model.layers.2.self_attn.kv_a_proj_with_mqa"]
    assert kv.scheme is Scheme.NVFP4
    assert {module_of(t) for t in kv.checkpoint_tensors} == {
        "model.layers.2.self_attn.kv_a_proj_with_mqa"}


def test_fused_shards_stored_differently_are_a_conflict(tmp_path: Path) -> None:
    w = write_checkpoint(tmp_path, CheckpointSpec("step3p5", "nvfp4", layout="g"))
    k = "model.layers.2.self_attn.k_proj"

    def keep(name: str, spec: tuple[str, tuple[int, ...]]) -> Any:
        if name == f"{k}.weight":
            return ("BF16", (spec[1][0], spec[1][1] * 2))
        return None if name.startswith(k + ".") else spec

    _rewrite_tensors(w, keep)
    p = plan(tmp_path)
    qkv = p.decision("model.layers.2.mtp_block.self_attn.qkv_proj")
    assert qkv is not None and qkv.scheme is Scheme.UNKNOWN
    (c,) = [c for c in p.conflicts if c.module == qkv.module]
    assert "k_proj=unquantized" in c.message and "q_proj=modelopt-nvfp4" in c.message
    with pytest.raises(ConflictError):
        plan(tmp_path, mode="strict")


def test_fused_module_missing_a_shard_is_a_conflict(tmp_path: Path) -> None:
    w = write_checkpoint(tmp_path, CheckpointSpec("qwen3_next", "fp8", layout="g"))
    _rewrite_tensors(w, lambda n, s: None if ".0.mlp.shared_expert.up_proj." in n else s)
    p = plan(tmp_path)
    (c,) = [c for c in p.conflicts if c.module == "mtp.layers.0.mlp.shared_expert.gate_up_proj"]
    assert "missing shards" in c.message and "shared_expert.up_proj" in c.message
