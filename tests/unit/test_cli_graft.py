"""``graft``: copy draft layers, restore per-layer lists, extend exclusions, idempotence."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from _cli_support import (  # noqa: F401 - copy_mode is a fixture
    FAMILIES,
    PRODUCERS,
    ckpt,
    copy_mode,
    digest,
    exclusions,
    load,
    pair,
    run_cli,
)

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.checkpoint.headers import read_header
from vllm_draft_quant.checkpoint.index import CheckpointFiles
from vllm_draft_quant.repair.fixer import compute_fix
from vllm_draft_quant.repair.graft import GRAFT_SHARD

#: every graft here runs on the in-kernel copy path and on the plain one
pytestmark = pytest.mark.usefixtures("copy_mode")


def _tensor_bytes(folder: Path, name: str) -> bytes:
    files = CheckpointFiles(folder)
    shard = folder / files.shard_of(name)
    header = read_header(shard)
    begin, end = header.tensors[name].data_offsets
    with open(shard, "rb") as f:
        f.seek(header.bytes_read + begin)
        return f.read(end - begin)


def _draft_names(folder: Path) -> list[str]:
    facts = load_facts(folder)
    roots = tuple(f"{x.checkpoint_root}." for x in facts.names.layers)
    return [n for n in facts.files.weight_names() if n.startswith(roots) or n.startswith("mtp.")]


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_graft_then_plan(family: str, producer: str, tmp_path: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    target, source = pair(tmp_path, family, producer=producer, sharded=True)
    src_before = digest(source)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0, err
    assert f"new shard: {GRAFT_SHARD}" in out
    assert digest(source) == src_before  # SOURCE is only read
    grafted = _draft_names(target)
    assert grafted == _draft_names(source)
    for name in grafted:
        assert CheckpointFiles(target).shard_of(name) == GRAFT_SHARD
        assert _tensor_bytes(target, name) == _tensor_bytes(source, name)
    p = core_plan(target)
    assert p.conflicts == ()
    assert {m.scheme.value for m in p.modules} == {"unquantized"}
    core_plan(target, mode="strict")  # raises on any conflict
    # the exclusions are exactly what fix would write: fix finds nothing left to do
    facts = load_facts(target)
    assert not compute_fix(facts, plan_from_facts(facts)).changed


@pytest.mark.parametrize("family", FAMILIES)
def test_graft_is_idempotent(family: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    target, source = pair(tmp_path, family, num_mtp_layers=2)
    assert run_cli(capsys, "graft", target, "--from", source)[0] == 0
    after = digest(target)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0 and "already grafted, nothing to change" in out
    assert "already present and identical" in out
    assert digest(target) == after


def test_single_file_target_gets_an_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    target, source = pair(tmp_path, "step3p5")
    assert not (target / "model.safetensors.index.json").exists()
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0 and "created model.safetensors.index.json" in out
    index = load(target / "model.safetensors.index.json")
    names = read_header(target / "model.safetensors").tensors
    assert {n: "model.safetensors" for n in names}.items() <= index["weight_map"].items()
    total = sum(i.data_offsets[1] - i.data_offsets[0]
                for f in ("model.safetensors", GRAFT_SHARD)
                for i in read_header(target / f).tensors.values())
    assert index["metadata"]["total_size"] == total


def test_truncated_layer_lists_restored(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    target, source = pair(tmp_path, "step3p5", truncate=True, num_mtp_layers=3)
    src_cfg = load(source / "config.json")
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0
    cfg = load(target / "config.json")
    for key in ("layer_types", "partial_rotary_factors", "swiglu_limits", "swiglu_limits_shared",
                "rope_theta"):
        assert cfg[key] == src_cfg[key], key
        assert f"config.json: {key} restored from SOURCE (2 -> 5 entries)" in out
    assert cfg["num_nextn_predict_layers"] == 3
    assert load(target / "config.json.bak")["layer_types"] == src_cfg["layer_types"][:2]


def test_subset_of_layers_and_count(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, source = pair(tmp_path, "deepseek_v3", num_mtp_layers=2, truncate=False)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source, "--layers", "2")
    assert code == 0, out
    assert load(target / "config.json")["num_nextn_predict_layers"] == 1
    assert "num_nextn_predict_layers 2 -> 1" in out
    assert core_plan(target).conflicts == ()
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)  # now the rest
    assert code == 0 and "model.layers.2: already present and identical" in out
    assert load(target / "config.json")["num_nextn_predict_layers"] == 2
    assert exclusions(target)[-2:] == ["model.layers.2*", "model.layers.3*"]


def test_layers_must_exist_and_be_contiguous(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    target, source = pair(tmp_path, "step3p5", num_mtp_layers=2)
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source, "--layers", "7")
    assert code == 2 and err.count("\n") == 1
    assert "--layers 7: SOURCE" in err and "has no draft layer 7; its 2 draft layers are 2, 3 " \
        "(model.layers.2, model.layers.3); draft layers are numbered as in tensor names, " \
        "after the model's 2 layers (num_hidden_layers 2 + 0..1)" in err
    code, _, err = run_cli(capsys, "graft", target, "--from", source, "--layers", "0,7")
    assert code == 2 and "has no draft layers 0 or 7" in err
    code, _, err = run_cli(capsys, "graft", target, "--from", source, "--layers", "3")
    assert code == 2 and "would hold draft layer 3 without 2: vLLM numbers draft layers " \
        "from the first without gaps; add 2 to --layers" in err
    assert digest(target) == before


def test_refuses_different_existing_tensors_without_force(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    source = ckpt(tmp_path / "source", "step3p5", layout="a")
    target = ckpt(tmp_path / "target", "step3p5", layout="d", sharded=True, mtp_own_shard=True)
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "--force" in err
    assert digest(target) == before
    code, out, err = run_cli(capsys, "graft", target, "--from", source, "--force")
    assert code == 0, err
    assert "deleted shard holding only replaced tensors: model-mtp.safetensors" in out
    assert not (target / "model-mtp.safetensors").exists()
    p = core_plan(target)
    assert p.conflicts == () and {m.scheme.value for m in p.modules} == {"unquantized"}
    assert all(not n.endswith(("weight_scale", "input_scale", "weight_scale_2"))
               for n in _draft_names(target))


def test_force_rewrites_a_mixed_shard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = ckpt(tmp_path / "source", "qwen3_next", layout="a")
    target = ckpt(tmp_path / "target", "qwen3_next", layout="g")  # one file, MTP quantized
    target_only = [n for n in CheckpointFiles(target).weight_names() if not n.startswith("mtp.")]
    kept = {n: _tensor_bytes(target, n) for n in target_only}
    code, out, err = run_cli(capsys, "graft", target, "--from", source, "--force")
    assert code == 0, err
    assert "rewrote shard without the replaced tensors: model.safetensors" in out
    assert {n: _tensor_bytes(target, n) for n in target_only} == kept
    assert set(read_header(target / "model.safetensors").tensors) == set(target_only)
    assert core_plan(target).conflicts == ()


@pytest.mark.parametrize("key", ["hidden_size", "vocab_size", "num_hidden_layers"])
def test_config_mismatch_refused(key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                 ) -> None:
    target, source = pair(tmp_path, "deepseek_v3")
    cfg = load(source / "config.json")
    cfg[key] += 16
    (source / "config.json").write_text(json.dumps(cfg))
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and key in err
    assert digest(target) == before


def test_family_mismatch_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = ckpt(tmp_path / "t", "step3p5", layout="a", with_mtp=False)
    source = ckpt(tmp_path / "s", "deepseek_v3", layout="a")
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "same model family" in err


def test_shape_mismatch_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A SOURCE whose draft projection differs from TARGET's layers (after unpacking NVFP4)."""
    from vllm_draft_quant.demo import tensors as T

    target, source = pair(tmp_path, "step3p5")
    shard = source / "model.safetensors"
    header = read_header(shard)
    rows = []
    with open(shard, "rb") as f:
        for name, info in sorted(header.tensors.items(), key=lambda kv: kv[1].data_offsets):
            f.seek(header.bytes_read + info.data_offsets[0])
            data = f.read(info.data_offsets[1] - info.data_offsets[0])
            shape = info.shape
            if name == "model.layers.2.self_attn.o_proj.weight":
                shape, data = (shape[0] // 2, shape[1]), data[: len(data) // 2]
            rows.append((name, T.RawTensor(info.dtype, shape, data)))
    T.write_safetensors(shard, rows)
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "self_attn.o_proj.weight" in err and "shape" in err
    assert digest(target) == before


def test_quantized_source_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = ckpt(tmp_path / "t", "step3p5", layout="a", with_mtp=False)
    source = ckpt(tmp_path / "s", "step3p5", layout="g")
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "unquantized" in err


def test_source_without_draft_layers_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                             ) -> None:
    target = ckpt(tmp_path / "t", "qwen3_next", layout="a", with_mtp=False)
    source = ckpt(tmp_path / "s", "qwen3_next", layout="a", with_mtp=False)
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "SOURCE has no draft-layer tensors" in err


def test_same_folder_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = ckpt(tmp_path / "t", "step3p5", layout="a")
    code, _, err = run_cli(capsys, "graft", target, "--from", target)
    assert code == 2 and "same folder" in err


def test_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, source = pair(tmp_path, "qwen3_next", truncate=True)
    before = digest(target)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source, "--dry-run")
    assert code == 0 and "dry run: nothing was written" in out
    assert "+++ b/config.json" in out and "exclusion would be added: mtp.fc" in out
    assert digest(target) == before


def test_progress_of_the_copy_and_of_a_rerun_comparison(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """stderr is not a terminal here: a line every 10% and a summary, for the copy and for
    the byte comparison of a rerun or a --dry-run (which used to be silent)."""
    from vllm_draft_quant.repair import shard_io

    monkeypatch.setattr(shard_io, "CHUNK", 4096)  # tiny tensors: report often enough
    monkeypatch.setattr(shard_io, "KERNEL_STEP", 4096)
    target, source = pair(tmp_path, "deepseek_v3")
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0
    copy_lines = [ln for ln in err.splitlines() if ln.startswith("copying draft tensors: ")]
    assert copy_lines[0].startswith("copying draft tensors:  10% (")
    assert copy_lines[-2].startswith("copying draft tensors: 100% (")
    assert re.fullmatch(r"copying draft tensors: copied .* \([\d,]+ bytes\) in \d+\.\d\d s, "
                        r"\d+\.\d MB/s", copy_lines[-1])
    for argv in (["graft", target, "--from", source], ["graft", target, "--from", source,
                                                        "--dry-run"]):
        code, out, err = run_cli(capsys, *argv)
        assert code == 0 and "already present and identical" in out
        lines = err.splitlines()
        assert [ln.split(": ")[1][:4] for ln in lines[:-1]] == [
            f"{p:3d}%" for p in range(10, 101, 10)]
        assert lines[-1].startswith("comparing the draft tensors TARGET already has: compared ")


def test_changes_are_reported_after_they_are_made(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """"exclusion added" only once the transaction is committed: a failed copy prints none."""
    import vllm_draft_quant.repair.graft as graft_mod

    target, source = pair(tmp_path, "step3p5")
    real = graft_mod.write_shard

    def fail(*a: object, **k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(graft_mod, "write_shard", fail)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and "No space left" in err
    assert "exclusion added" not in out and "grafted into" not in out
    monkeypatch.setattr(graft_mod, "write_shard", real)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0
    assert out.index("exclusion added") > out.index("new shard:")
    assert out.rstrip().endswith(f"grafted into {target}")


@pytest.mark.parametrize("family", ["glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo"])
def test_graft_every_mtp_family(family: str, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """Every MTP family the plugin plans, beyond the first three: copied byte for byte,
    planned without conflicts, the exclusions fix would write, idempotent."""
    target, source = pair(tmp_path, family, sharded=True)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0, err
    grafted = _draft_names(target)
    assert grafted and grafted == _draft_names(source)
    for name in grafted:
        assert _tensor_bytes(target, name) == _tensor_bytes(source, name)
    assert core_plan(target, mode="strict").conflicts == ()
    facts = load_facts(target)
    assert not compute_fix(facts, plan_from_facts(facts)).changed
    after = digest(target)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0 and "already grafted, nothing to change" in out
    assert digest(target) == after


def test_graft_refuses_a_separate_draft_model_clearly(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from support.eagle3 import Eagle3Spec, write_eagle3_draft

    bf16 = write_eagle3_draft(tmp_path / "bf16", Eagle3Spec()).path
    fp8 = write_eagle3_draft(tmp_path / "fp8", Eagle3Spec(attn="fp8", mlp="fp8")).path
    before = digest(fp8)
    code, _, err = run_cli(capsys, "graft", fp8, "--from", bf16)
    assert code == 2 and err.count("\n") == 1
    assert "Eagle3LlamaForCausalLM is a separate draft model" in err
    assert "--speculative-config" in err and digest(fp8) == before


# ----------------------------------------------------------------- issue 18: reliability
def _reshape(shard: Path, name: str, shape: tuple[int, ...]) -> None:
    """Rewrite ``shard`` with tensor ``name`` stored in another (consistent) shape."""
    from vllm_draft_quant.demo import tensors as T

    header = read_header(shard)
    rows = []
    with open(shard, "rb") as f:
        for n, info in sorted(header.tensors.items(), key=lambda kv: kv[1].data_offsets):
            f.seek(header.bytes_read + info.data_offsets[0])
            data = f.read(info.data_offsets[1] - info.data_offsets[0])
            if n == name:
                per = len(data) // max(1, math.prod(info.shape))
                want = per * math.prod(shape)
                data = (data * (want // max(1, len(data)) + 1))[:want]
                rows.append((n, T.RawTensor(info.dtype, shape, data)))
            else:
                rows.append((n, T.RawTensor(info.dtype, info.shape, data)))
    T.write_safetensors(shard, rows)


@pytest.mark.parametrize(("family", "name", "shape"), [
    ("step3p5", "model.layers.2.eh_proj.weight", (128, 128)),        # [hidden, 2*hidden]
    ("step3p5", "model.layers.2.enorm.weight", (64,)),               # [hidden]
    ("step3p5", "model.layers.2.shared_head.output.weight", (128, 128)),  # [vocab, hidden]
    ("deepseek_v3", "model.layers.2.shared_head.head.weight", (512, 128)),
    ("deepseek_v3", "model.layers.2.embed_tokens.weight", (256, 64)),
    ("deepseek_v3", "model.layers.2.mlp.gate.weight", (8, 128)),     # [experts, hidden]
    ("qwen3_next", "mtp.fc.weight", (128, 384)),
    ("qwen3_next", "mtp.layers.0.self_attn.k_proj.weight", (96, 128)),  # kv_heads*head_dim
    ("qwen4_exp", "mtp.pre_fc_norm_hidden.weight", (384,)),  # [hidden or hc_count*hidden]
])
def test_tensors_target_lacks_are_checked_against_its_config(
        family: str, name: str, shape: tuple[int, ...], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 3: eh_proj, shared_head.*, enorm, ... have no counterpart in TARGET; a wrong
    width was grafted and reported as success. Now the config's sizes decide."""
    target, source = pair(tmp_path, family)
    _reshape(source / "model.safetensors", name, shape)
    before = digest(target)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and out == "", out
    assert err.count("\n") == 1 and name in err and str(list(shape)) in err
    assert "config.json implies" in err
    assert digest(target) == before


@pytest.mark.parametrize("family", ["deepseek_v3", "qwen3_next", "step3p5", "glm4_moe", "mimo",
                                    "qwen3_5_moe", "qwen3_5_moe_vl", "qwen4_exp"])
def test_config_shapes_accept_every_factory_family(family: str, tmp_path: Path) -> None:
    from vllm_draft_quant.repair.shapes import check_config_shapes, expected_shape
    from vllm_draft_quant.repair.shard_io import sources_of

    source = ckpt(tmp_path / "s", family, layout="a")
    facts = load_facts(source)
    tensors = [t for shard in sorted(set(facts.files.shards))
               for t in sources_of(source / shard) if facts.names.is_draft_name(t.name)]
    check_config_shapes(facts, tensors)
    ruled = [t.name for t in tensors if expected_shape(facts.text_config, t.name)]
    assert len(ruled) > len(tensors) // 2  # most tensors have a rule


@pytest.mark.parametrize("command", ["fix", "graft"])
def test_an_existing_bak_is_never_overwritten(command: str, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 2: the user's own config.json.bak survives; the backup gets a new name."""
    if command == "fix":
        target = ckpt(tmp_path / "m", "deepseek_v3", layout="a")
        argv: list[Any] = ["fix", target, "--write"]
    else:
        target, source = pair(tmp_path, "deepseek_v3")
        argv = ["graft", target, "--from", source]
    mine = b'{"mine": true}\n'
    (target / "config.json.bak").write_bytes(mine)
    (target / "config.json.bak.1").write_bytes(mine)
    old = (target / "config.json").read_bytes()
    code, out, err = run_cli(capsys, *argv)
    assert code in (0, 1), err
    assert (target / "config.json.bak").read_bytes() == mine
    assert (target / "config.json.bak.1").read_bytes() == mine
    assert (target / "config.json.bak.2").read_bytes() == old
    assert "config.json.bak.2" in out and "config.json.bak was kept" in out


def test_graft_output_comes_after_the_fact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 5: a SOURCE that shrinks mid-copy; the output used to say exclusions were
    added and tensors written, although the rollback left TARGET byte-identical."""
    from vllm_draft_quant.cli import graft as graft_cli

    target, source = pair(tmp_path, "deepseek_v3", num_mtp_layers=2)
    before = digest(target)
    shard = source / "model.safetensors"

    class Shrinks:
        def __init__(self, *a: Any, **k: Any) -> None:
            self.calls = 0

        def __enter__(self) -> Shrinks:
            return self

        def __exit__(self, *a: object) -> None:
            pass

        def __call__(self, n: int) -> None:
            self.calls += 1
            if self.calls == 3:
                with open(shard, "r+b") as f:
                    f.truncate(read_header(shard).bytes_read + 16)

    from vllm_draft_quant.repair import shard_io

    monkeypatch.setattr(graft_cli, "Progress", Shrinks)
    # the copy reports progress per step; small steps so the third comes mid-copy
    monkeypatch.setattr(shard_io, "CHUNK", 256)
    monkeypatch.setattr(shard_io, "KERNEL_STEP", 256)
    code, out, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2
    assert out == "", out  # nothing claimed
    assert err.count("\n") == 1 and "rolled back" in err and "as before" in err
    assert digest(target) == before


def test_graft_reports_in_the_past_tense_after_success(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    target, source = pair(tmp_path, "qwen3_next", truncate=True)
    code, out, _ = run_cli(capsys, "graft", target, "--from", source)
    assert code == 0
    assert "copied" in out and "exclusion added: mtp.fc" in out
    assert out.rstrip().endswith(f"grafted into {target}")


def test_deeply_nested_config_is_bad_input(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 8: a deeply nested config.json made graft's deep copy hit RecursionError
    (exit 3); it is refused as bad input, in one line."""
    target, source = pair(tmp_path, "step3p5")
    cfg = load(target / "config.json")
    cfg["extra"] = json.loads("[" * 600 + "]" * 600)
    (target / "config.json").write_text(json.dumps(cfg))
    before = digest(target)
    code, _, err = run_cli(capsys, "graft", target, "--from", source)
    assert code == 2 and err.count("\n") == 1 and "nested" in err
    assert digest(target) == before


@pytest.mark.parametrize("layers", ["a,b", "-1", ",", "4x"])
def test_layers_errors_are_one_line(layers: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 9: --layers errors printed three usage lines first."""
    target, source = pair(tmp_path, "step3p5")
    code, out, err = run_cli(capsys, "graft", target, "--from", source, "--layers", layers)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--layers" in err and "usage" not in err


def test_a_plain_float_parameter_is_an_unquantized_source() -> None:
    """HY-V4's attention sink (``self_attn.learnable_sink_param``, no ``weight`` beside it)
    is stored BF16: graft refused every HY-V4 source ("stores draft module ...self_attn as
    unknown"); a quantized module, or a weight no format claims, is still refused."""
    from vllm_draft_quant.repair.graft import quantized_source_modules

    a = "model.mtp_layers.0.self_attn"
    bf16 = {f"{a}.learnable_sink_param": "BF16", f"{a}.o_proj.weight": "BF16",
            f"{a}.q_a_layernorm.weight": "BF16"}
    assert quantized_source_modules(bf16) == []
    nvfp4 = {**bf16, f"{a}.o_proj.weight": "U8", f"{a}.o_proj.weight_scale": "F8_E4M3",
             f"{a}.o_proj.weight_scale_2": "F32"}
    assert [m for m, _ in quantized_source_modules(nvfp4)] == [f"{a}.o_proj"]
    assert quantized_source_modules({f"{a}.o_proj.weight": "I8"})  # unknown, not float
