"""INT4 producers: GPTQ ``dynamic`` / ``modules_in_block_to_quantize``, AWQ, AutoRound
``block_name_to_quantize`` / ``extra_config``, compressed-tensors WNA16, ``moe_wna16``;
bits and group size from header shapes; the vLLM config built for a stored layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.evidence import classify
from vllm_draft_quant.core.intent import intent_from_configs
from vllm_draft_quant.core.schemes import IntLayout, ModuleKind, Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError

LIN = ModuleKind.LINEAR


def decide(qc: dict[str, Any], name: str, kind: ModuleKind = LIN) -> Scheme:
    intent = intent_from_configs(None, qc)
    assert intent is not None
    return intent.decide([name], name, kind).scheme


def gptq(**kw: Any) -> dict[str, Any]:
    return {"quant_method": "gptq", "bits": 4, "group_size": 128, "desc_act": False,
            "sym": True, **kw}


# ------------------------------------------------------------------ GPTQ grammar
def test_gptq_negative_dynamic_rule_opts_mtp_out() -> None:
    qc = gptq(dynamic={r"-:mtp\..*": {}})
    assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.UNQUANTIZED
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED
    assert decide(qc, "model.layers.0.self_attn.o_proj") is Scheme.INT4


def test_gptq_dynamic_is_re_match_anchored_at_the_start() -> None:
    qc = gptq(dynamic={r"-:layers\.2\..*": {}})  # re.match: no hit inside the name
    assert decide(qc, "model.layers.2.self_attn.o_proj") is Scheme.INT4
    qc = gptq(dynamic={r"-:.*layers\.2\..*": {}})
    assert decide(qc, "model.layers.2.self_attn.o_proj") is Scheme.UNQUANTIZED


def test_gptq_dynamic_first_matching_key_wins() -> None:
    """An earlier positive key shadows a later negative one, as vLLM's loop does."""
    ahead = gptq(dynamic={r"+:mtp\.fc": {"group_size": 32}, r"-:mtp\..*": {}})
    assert decide(ahead, "mtp.fc") is Scheme.INT4
    assert decide(ahead, "mtp.layers.0.mlp.down_proj") is Scheme.UNQUANTIZED
    behind = gptq(dynamic={r"-:mtp\..*": {}, r"+:mtp\.fc": {"group_size": 32}})
    assert decide(behind, "mtp.fc") is Scheme.UNQUANTIZED


def test_gptq_positive_dynamic_bits_change_the_scheme() -> None:
    qc = gptq(dynamic={r"+:.*mlp\.experts.*": {"bits": 8}})
    assert decide(qc, "mtp.layers.0.mlp.experts.0.down_proj") is Scheme.UNKNOWN
    assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.INT4


def test_gptq_modules_in_block_to_quantize_is_substring_and_flattened() -> None:
    qc = gptq(modules_in_block_to_quantize=[["self_attn.q_proj", "self_attn.k_proj"],
                                            ["mlp.down_proj"]])
    assert decide(qc, "model.layers.0.self_attn.q_proj") is Scheme.INT4
    assert decide(qc, "model.layers.0.mlp.down_proj") is Scheme.INT4
    assert decide(qc, "model.layers.0.self_attn.o_proj") is Scheme.UNQUANTIZED


def test_gptq_lm_head_flag() -> None:
    head = ModuleKind.LM_HEAD
    assert decide(gptq(), "lm_head", head) is Scheme.UNQUANTIZED
    assert decide(gptq(lm_head=True), "lm_head", head) is Scheme.INT4


@pytest.mark.parametrize("bad", [{"-:(": {}}, ["-:mtp"], {"+:x": 3}])
def test_gptq_bad_dynamic_names_the_field(bad: Any) -> None:
    with pytest.raises(ConfigError, match=r"quantization_config\.dynamic"):
        intent_from_configs(None, gptq(dynamic=bad))


# ------------------------------------------------------------------ AWQ / AutoRound / moe_wna16
def test_awq_modules_to_not_convert_is_substring() -> None:
    qc = {"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True,
          "modules_to_not_convert": ["mtp"]}
    assert decide(qc, "mtp.layers.0.mlp.experts.0.up_proj") is Scheme.UNQUANTIZED
    assert decide(qc, "model.layers.0.mlp.down_proj") is Scheme.INT4


def auto_round(**kw: Any) -> dict[str, Any]:
    return {"quant_method": "auto-round", "bits": 4, "group_size": 128, "sym": True,
            "data_type": "int", **kw}


def test_auto_round_block_names_list_or_comma_string() -> None:
    for blocks in (["model.layers"], "model.layers,model.visual.blocks"):
        qc = auto_round(block_name_to_quantize=blocks)
        assert decide(qc, "model.layers.1.self_attn.o_proj") is Scheme.INT4
        assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.UNQUANTIZED
    qc = auto_round(to_quant_block_names=["model.layers"])
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED


def test_auto_round_extra_config_exact_suffix_and_regex() -> None:
    qc = auto_round(extra_config={"mtp.fc": {"bits": 16}, r"mtp\.layers\.0\.mlp.*": {"bits": 16}})
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED
    assert decide(qc, "model.mtp.fc") is Scheme.UNQUANTIZED  # suffix match
    assert decide(qc, "mtp.layers.0.mlp.experts.0.up_proj") is Scheme.UNQUANTIZED
    assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.INT4


def test_auto_round_extra_config_wins_over_block_names() -> None:
    qc = auto_round(block_name_to_quantize=["model.layers"], extra_config={"mtp.fc": {"bits": 4}})
    assert decide(qc, "mtp.fc") is Scheme.INT4
    assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.UNQUANTIZED


def test_moe_wna16_reads_the_linear_method() -> None:
    qc = {"quant_method": "moe_wna16", "linear_quant_method": "awq", "bits": 4,
          "group_size": 128, "zero_point": True, "modules_to_not_convert": ["mtp"]}
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED
    assert formats.for_vllm_name("moe_wna16") is formats.MOE_WNA16
    with pytest.raises(ConfigError, match="linear_quant_method"):
        intent_from_configs(None, {**qc, "linear_quant_method": "fp8"})


def test_compressed_tensors_wna16_parses_int4() -> None:
    qc = {"quant_method": "compressed-tensors", "format": "pack-quantized",
          "config_groups": {"g": {"targets": ["Linear"], "weights": {
              "num_bits": 4, "type": "int", "strategy": "group", "group_size": 32}}},
          "ignore": ["re:mtp.*"]}
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED
    assert decide(qc, "model.layers.0.mlp.down_proj") is Scheme.INT4


# ------------------------------------------------------------------ layouts from shapes
def ev(params: dict[str, tuple[str, tuple[int, ...]]]) -> tuple[StoredFormat, IntLayout | None]:
    e = classify("m", {f"m.{k}": d for k, (d, _) in params.items()},
                 {f"m.{k}": s for k, (_, s) in params.items()})
    return e.format, e.layout


@pytest.mark.parametrize(("out", "inp", "group", "bits"),
                         [(256, 128, 32, 4), (64, 512, 128, 4), (128, 256, -1, 4), (96, 64, 32, 8)])
def test_gptq_bits_and_group_from_shapes(out: int, inp: int, group: int, bits: int) -> None:
    g = inp // group if group > 0 else 1
    got = ev({"qweight": ("I32", (inp * bits // 32, out)), "qzeros": ("I32", (g, out * bits // 32)),
              "scales": ("BF16", (g, out)), "g_idx": ("I32", (inp,))})
    assert got == (StoredFormat.GPTQ_INT4, IntLayout(bits, group, True, True))


def test_awq_bits_and_group_from_shapes() -> None:
    got = ev({"qweight": ("I32", (128, 32)), "qzeros": ("I32", (4, 32)),
              "scales": ("F16", (4, 256))})
    assert got == (StoredFormat.AWQ_INT4, IntLayout(4, 32, True))


def test_gptq_without_g_idx_told_from_awq_by_shapes() -> None:
    got = ev({"qweight": ("I32", (16, 256)), "qzeros": ("I32", (4, 32)),
              "scales": ("F16", (4, 256))})
    assert got == (StoredFormat.GPTQ_INT4, IntLayout(4, 32, True))


def test_compressed_tensors_pack_quantized_from_shapes() -> None:
    sym = ev({"weight_packed": ("I32", (256, 16)), "weight_scale": ("BF16", (256, 4)),
              "weight_shape": ("I64", (2,))})
    assert sym == (StoredFormat.CT_WNA16, IntLayout(4, 32, False))
    asym = ev({"weight_packed": ("I32", (256, 16)), "weight_scale": ("BF16", (256, 4)),
               "weight_zero_point": ("I32", (32, 4)), "weight_shape": ("I64", (2,))})
    assert asym == (StoredFormat.CT_WNA16, IntLayout(4, 32, True))


def test_stacked_experts_use_the_last_two_dims() -> None:
    got = ev({"qweight": ("I32", (8, 16, 256)), "qzeros": ("I32", (8, 4, 32)),
              "scales": ("BF16", (8, 4, 256)), "g_idx": ("I32", (8, 128))})
    assert got == (StoredFormat.GPTQ_INT4, IntLayout(4, 32, True, True))


def test_contradicting_shapes_are_not_guessed() -> None:
    fmt, layout = ev({"qweight": ("I32", (16, 256)), "qzeros": ("I32", (4, 32)),
                      "scales": ("F16", (5, 256)), "g_idx": ("I32", (999,))})
    assert layout is None and fmt is StoredFormat.GPTQ_INT4  # dtypes only: no bits claimed


# ------------------------------------------------------------------ configs built for a layout
def test_each_int4_layout_gets_a_vllm_config_of_its_own_producer() -> None:
    lay = IntLayout(4, 32, True, True)
    gp = formats.vllm_config_for_stored(StoredFormat.GPTQ_INT4, lay)
    aw = formats.vllm_config_for_stored(StoredFormat.AWQ_INT4, IntLayout(4, 64, True))
    ct = formats.vllm_config_for_stored(StoredFormat.CT_WNA16, IntLayout(4, -1, False))
    assert gp is not None and gp.method == "gptq" and gp.config["group_size"] == 32
    assert gp.config["desc_act"] is False and gp.config["lm_head"] is True
    assert aw is not None and aw.method == "awq" and aw.config["group_size"] == 64
    assert ct is not None and ct.method == "compressed-tensors"
    w = ct.config["config_groups"]["group_0"]["weights"]
    assert (w["strategy"], w["group_size"], w["symmetric"]) == ("channel", None, True)
    assert formats.vllm_config_for_stored(StoredFormat.MODELOPT_NVFP4, lay) is None


def test_runtime_scheme_of_gptq_and_awq_configs() -> None:
    for name in ("auto_gptq", "auto_awq", "moe_wna16"):
        fmt = formats.for_vllm_name(name)
        assert fmt is not None
        assert fmt.runtime_scheme(name, {"weight_bits": 4}) is Scheme.INT4
        assert fmt.runtime_scheme(name, {"weight_bits": 8}) is Scheme.UNKNOWN


# ------------------------------------------------------------------ per-layer configs
def test_quark_layer_quant_config_per_layer_then_global() -> None:
    qc = {"quant_method": "quark", "global_quant_config": {"weight": {"dtype": "fp4"}},
          "layer_quant_config": {"mtp.layers.0.mlp.experts.*": {"weight": {"dtype": "uint4"}},
                                 "mtp.fc": {"weight": None}},
          "exclude": ["lm_head"]}
    assert decide(qc, "mtp.layers.0.mlp.experts.0.up_proj") is Scheme.INT4
    assert decide(qc, "mtp.fc") is Scheme.UNQUANTIZED
    assert decide(qc, "mtp.layers.0.self_attn.o_proj") is Scheme.MXFP4
    assert decide(qc, "lm_head", ModuleKind.LM_HEAD) is Scheme.UNQUANTIZED


def test_modelopt_mixed_precision_fp8_block_experts() -> None:
    hf = {"quantization": {"quant_algo": "MIXED_PRECISION", "kv_cache_quant_algo": None,
                           "quantized_layers": {
                               "model.layers.0.self_attn.o_proj": {"quant_algo": "NVFP4"},
                               "mtp.layers.0.mlp.experts.0.up_proj": {"quant_algo": "FP8_PB_WO"},
                               "mtp.layers.0.mlp.experts.1.up_proj": {
                                   "quant_algo": "fp8_block_scales"},
                               "mtp.fc": {"quant_algo": "W4A16_NVFP4"}}}}
    intent = intent_from_configs(hf, None)
    assert intent is not None
    experts = ["mtp.layers.0.mlp.experts.0.up_proj", "mtp.layers.0.mlp.experts.1.up_proj"]
    got = intent.decide(experts, "mtp.layers.0.mlp.experts", ModuleKind.EXPERTS)
    assert got.scheme is Scheme.FP8_BLOCK
    assert intent.decide(["mtp.fc"], "mtp.fc", LIN).scheme is Scheme.NVFP4
    assert intent.decide(["mtp.layers.0.self_attn.o_proj"], "mtp.layers.0.self_attn.o_proj",
                         LIN).scheme is Scheme.UNQUANTIZED


def test_plan_flags_a_group_size_the_config_does_not_say() -> None:
    """GPTQ group 32 in the config, the module packed with group 64: the tensors win and
    the plan names both group sizes (vLLM would build group 32 and fail on the shapes)."""
    from vllm_draft_quant.core.names import NameMap
    from vllm_draft_quant.core.resolver import resolve
    from vllm_draft_quant.profiles import profile_for_draft

    profile = profile_for_draft("Qwen3NextMTP")
    names = NameMap(profile, num_hidden_layers=2, num_draft_layers=1)
    intent = intent_from_configs(None, gptq(group_size=32))
    m = "mtp.layers.0.self_attn.o_proj"
    dtypes = {f"{m}.qweight": "I32", f"{m}.qzeros": "I32", f"{m}.scales": "BF16",
              f"{m}.g_idx": "I32"}
    shapes = {f"{m}.qweight": (16, 128), f"{m}.qzeros": (2, 16), f"{m}.scales": (2, 128),
              f"{m}.g_idx": (128,)}
    plan = resolve(names, intent, dtypes, shapes=shapes)
    d = plan.decision(m)
    assert d is not None and d.scheme is Scheme.INT4 and d.source == "evidence"
    assert d.layout == IntLayout(4, 64, True, True)
    assert any("group size 32" in c.message and "group size 64" in c.message
               for c in plan.conflicts)
    same = resolve(names, intent_from_configs(None, gptq(group_size=64)), dtypes, shapes=shapes)
    assert same.conflicts == () and same.decision(m).source == "default"  # type: ignore[union-attr]


# ------------------------------------------------------------------ block FP8 under weight_scale
@pytest.mark.parametrize(("weight", "scale"), [
    ((256, 512), (2, 4)),  # ModelOpt FP8_PB_WO 2-D: [ceil(out/128), in/128]
    ((300, 256), (3, 2)),  # a partial last output block
    ((256, 512), (2, 1, 4, 1)),  # ModelOpt's 4-D grid (modelopt.py:KFp8Block128)
    ((4, 256, 512), (4, 2, 4)),  # stacked experts
    ((128, 512), (1, 4)),  # one block of rows, four of columns
    ((128, 128), (1, 1, 1, 1)),  # ModelOpt's grid of one block
])
def test_modelopt_block_fp8_weight_scale_is_block_from_shapes(
        weight: tuple[int, ...], scale: tuple[int, ...]) -> None:
    """The old code read ``weight`` F8_E4M3 + ``weight_scale`` as per-tensor FP8 whatever
    the scale's shape (so a FP8_PB_WO module was planned, and built, per tensor)."""
    fmt, layout = ev({"weight": ("F8_E4M3", weight), "weight_scale": ("F32", scale)})
    assert fmt.scheme is Scheme.FP8_BLOCK, fmt  # old code: modelopt-fp8 (per tensor)
    assert (fmt.value, layout) == ("fp8-block-weight-scale", None)


@pytest.mark.parametrize("scale", [(), (1,), (1, 1), (256,), (256, 1)])
def test_per_tensor_and_per_channel_fp8_scales_stay_fp8(scale: tuple[int, ...]) -> None:
    fmt, _ = ev({"weight": ("F8_E4M3", (256, 512)), "weight_scale": ("F32", scale),
                 "input_scale": ("F32", ())})
    assert fmt is StoredFormat.MODELOPT_FP8 and fmt.scheme is Scheme.FP8


def test_block_fp8_under_weight_scale_builds_modelopt_fp8_pb_wo() -> None:
    spec = formats.vllm_config_for_stored(StoredFormat.FP8_BLOCK_SCALE, None)
    assert spec is not None and spec.method == "modelopt"
    assert spec.config["quantization"]["quant_algo"] == "FP8_PB_WO"
    assert formats.MODELOPT.runtime_scheme("modelopt", {"quant_method": "FP8_PB_WO"}) \
        is Scheme.FP8_BLOCK
    assert formats.MODELOPT.runtime_scheme("modelopt", {"quant_method": "FP8"}) is Scheme.FP8


def test_quark_runtime_scheme_is_the_global_one_with_per_layer_configs() -> None:
    """The adapter's copy of a Quark config drops ``layer_quant_config`` (the per-layer
    schemes get configs of their own), so an MXFP4 global config still builds the MXFP4
    draft modules; the old code returned None and refused them (UnsupportedSchemeError)."""
    qc = {"global_quant_config": {"weight": {"dtype": "fp4"}},
          "layer_quant_config": {"mtp.layers.0.self_attn.*": {"weight": {"dtype": "fp8_e4m3"}}}}
    assert formats.QUARK.runtime_scheme("quark", {"quant_config": qc}) is Scheme.MXFP4


def test_factory_memo_follows_the_group_size(tmp_path: Path) -> None:
    """The factory memoizes tensors; a case that switches ``_formats_int4.GROUP`` (the
    INT4 matrix's g64 rows) still gets tensors of its own group size."""
    from support import CheckpointSpec, _formats_int4, write_checkpoint

    def scales(root: Path) -> set[tuple[int, ...]]:
        w = write_checkpoint(root, CheckpointSpec("qwen3_next", "int4", "gptq", layout="g"))
        return {t.shape for n, t in w.tensors.items() if n.endswith(".scales")}

    g32 = scales(tmp_path / "g32")
    saved = _formats_int4.GROUP
    _formats_int4.GROUP = 64
    try:
        g64 = scales(tmp_path / "g64")
    finally:
        _formats_int4.GROUP = saved
    assert g32 != g64
    assert scales(tmp_path / "again") == g32
