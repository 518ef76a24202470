"""core.learned: an observation of vLLM's drafter -> a profile the resolver plans with."""

from __future__ import annotations

import pytest

from vllm_draft_quant.core.learned import (
    Feed,
    LearnedLayer,
    LearnError,
    NoDraftLayers,
    Observation,
    fed_name,
    learned_profile,
    mapping_rows,
    profile_rows,
)
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.core.resolver import place_drafter, resolve
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.errors import UnknownDrafterError
from vllm_draft_quant.profiles import profile_for_draft

L = "model.layers.2"
C = "model.mtp_block.0"


def _ernie_like() -> Observation:
    """What the dry run records for an ERNIE-style drafter (flat checkpoint names)."""
    layers = (
        LearnedLayer(path=f"{L}.mtp_block.self_attn.qkv_proj", prefix=f"{L}.self_attn.qkv_proj",
                     kind=ModuleKind.LINEAR),
        LearnedLayer(path=f"{L}.mtp_block.mlp.experts", prefix=f"{L}.mlp.experts",
                     kind=ModuleKind.EXPERTS),
        LearnedLayer(path=f"{L}.mtp_block.mlp.gate", prefix=f"{L}.mlp.gate", kind=ModuleKind.FIXED),
        LearnedLayer(path=f"{L}.proj", prefix=f"{L}.proj", kind=ModuleKind.PLAIN),
        LearnedLayer(path="lm_head", prefix="lm_head", kind=ModuleKind.LM_HEAD),
        LearnedLayer(path=f"{L}.head", prefix=f"{L}.head", kind=ModuleKind.LM_HEAD),
    )
    feeds = [
        Feed(tensor=f"{C}.self_attn.v_proj.weight", param=f"{L}.mtp_block.self_attn.qkv_proj.weight", shard="v"),
        Feed(tensor=f"{C}.self_attn.q_proj.weight", param=f"{L}.mtp_block.self_attn.qkv_proj.weight", shard="q"),
        Feed(tensor=f"{C}.self_attn.k_proj.weight", param=f"{L}.mtp_block.self_attn.qkv_proj.weight", shard="k"),
        Feed(tensor=f"{C}.self_attn.q_proj.bias", param=f"{L}.mtp_block.self_attn.qkv_proj.bias", shard="q"),
        Feed(tensor=f"{C}.mlp.gate.weight", param=f"{L}.mtp_block.mlp.gate.weight"),
        Feed(tensor="model.mtp_norm.0.weight", param=f"{L}.norm.weight"),  # not a layer: ignored
        Feed(tensor=f"{C}.proj.weight", param=f"{L}.proj.weight"),
        Feed(tensor="lm_head.weight", param="lm_head.weight"),
        Feed(tensor=f"{C}.shared_head.head.weight", param=f"{L}.head.weight"),
        Feed(tensor="lm_head.weight", param=f"{L}.head.weight"),  # GLM-style second feeder
    ]
    for e in (1, 0):
        for s, p in (("w2", "down_proj"), ("w1", "gate_proj"), ("w3", "up_proj")):
            param = f"{L}.mtp_block.mlp.experts.{'w2' if s == 'w2' else 'w13'}_weight"
            feeds.append(Feed(tensor=f"{C}.mlp.experts.{e}.{p}.weight", param=param, shard=s,
                              expert=e))
    return Observation(drafter="ErnieLikeMTP", layers=layers, feeds=tuple(feeds))


def test_learned_rows_follow_vllm_shard_order() -> None:
    rows = mapping_rows(learned_profile(_ernie_like()))
    assert rows[f"{L}.self_attn.qkv_proj"] == (
        "linear", tuple(f"{C}.self_attn.{p}_proj" for p in "qkv"))
    assert rows[f"{L}.mlp.experts"] == ("experts", tuple(
        f"{C}.mlp.experts.{e}.{p}" for e in (0, 1) for p in ("gate_proj", "up_proj", "down_proj")))
    assert rows[f"{L}.mlp.gate"] == ("fixed", (f"{C}.mlp.gate",))
    assert rows[f"{L}.proj"] == ("plain", (f"{C}.proj",))
    assert rows["lm_head"] == ("lm_head", ("lm_head",))
    # two checkpoint modules feed the NextN head: the one nearest its prefix owns it,
    # the other is recorded as also feeding it (the adapter drops it from the stream)
    assert rows[f"{L}.head"] == ("lm_head", (f"{C}.shared_head.head",))
    head = next(s for s in learned_profile(_ernie_like()).globals if s.runtime == f"{L}.head")
    assert head.also_fed_by == ("lm_head",)
    assert f"{L}.norm" not in rows


def test_same_observation_same_profile_whatever_the_feed_order() -> None:
    obs = _ernie_like()
    shuffled = obs.model_copy(update={"feeds": tuple(reversed(obs.feeds)),
                                      "layers": tuple(reversed(obs.layers))})
    assert learned_profile(obs) == learned_profile(shuffled)
    assert Observation.model_validate_json(obs.model_dump_json()) == obs


def test_learned_profile_plans_through_the_unchanged_resolver() -> None:
    profile = learned_profile(_ernie_like())
    _, names = place_drafter({"num_hidden_layers": 2, "num_nextn_predict_layers": 1}, profile,
                             origin="config.json")
    assert names.layers == ()
    dtypes = {f"{C}.self_attn.{p}_proj.weight": "U8" for p in "qkv"}
    dtypes |= {f"{C}.self_attn.{p}_proj.{s}": d for p in "qkv"
               for s, d in (("weight_scale", "F8_E4M3"), ("weight_scale_2", "F32"),
                            ("input_scale", "F32"))}
    dtypes[f"{C}.proj.weight"] = "BF16"
    dtypes["lm_head.weight"] = "BF16"
    draft = {n: d for n, d in dtypes.items() if names.is_draft_name(n)}
    assert draft == dtypes
    plan = resolve(names, None, draft, origin="m")
    by = plan.by_module()
    assert by[f"{L}.self_attn.qkv_proj"].scheme is Scheme.NVFP4
    assert by["lm_head"].scheme is Scheme.UNQUANTIZED
    assert by[f"{L}.proj"].kind is ModuleKind.PLAIN


def test_nothing_reached_a_layer_is_one_error_naming_the_drafter() -> None:
    obs = Observation(drafter="SomeMTP", layers=_ernie_like().layers,
                      feeds=(Feed(tensor="model.norm.weight", param="model.norm.weight"),))
    with pytest.raises(LearnError, match="SomeMTP") as e:
        learned_profile(obs, origin="/m")
    assert isinstance(e.value, UnknownDrafterError)
    assert "VLLM_DRAFT_QUANT=off" in str(e.value)


def test_a_drafter_without_layers_has_nothing_to_plan() -> None:
    """vLLM's ExtractHiddenStatesModel builds one cache-only attention layer and loads no
    weight: that is `NoDraftLayers` (the adapter loads it as stock vLLM does in every
    mode), not the "cannot learn" error that made ``strict`` refuse a load stock vLLM
    does fine."""
    obs = Observation(drafter="ExtractHiddenStatesModel", layers=(),
                      feeds=(Feed(tensor="model.norm.weight", param="model.norm.weight"),))
    with pytest.raises(NoDraftLayers, match="ExtractHiddenStatesModel builds no linear"):
        learned_profile(obs, origin="/m")


def test_one_module_owning_two_layers_cannot_be_decided() -> None:
    layers = (LearnedLayer(path="a", prefix="a", kind=ModuleKind.LINEAR),
              LearnedLayer(path="b", prefix="b", kind=ModuleKind.LINEAR))
    feeds = (Feed(tensor="x.weight", param="a.weight"), Feed(tensor="x.weight", param="b.weight"))
    with pytest.raises(LearnError, match="feeds both"):
        learned_profile(Observation(drafter="TwoMTP", layers=layers, feeds=feeds))


@pytest.mark.parametrize(("name", "fed"), [
    ("a.weight", "a.weight"), ("a.weight_scale", None), ("a.input_scale", None),
    ("a.weight_scale_2", None), ("a.weight_packed", "a.weight"), ("a.bias", "a.bias"),
    ("a.self_attn.k_scale", None), ("a.e_score_correction_bias", "a.e_score_correction_bias"),
])
def test_side_tensors_are_not_fed(name: str, fed: str | None) -> None:
    assert fed_name(name) == fed


def test_profile_rows_of_a_hand_profile() -> None:
    profile = profile_for_draft("DeepSeekMTPModel")
    names = NameMap(profile, num_hidden_layers=2, num_draft_layers=1)
    present = {f"{L}.self_attn.{p}" for p in ("q_a_proj", "kv_a_proj_with_mqa", "q_b_proj",
                                              "kv_b_proj", "o_proj")}
    present |= {f"{L}.mlp.experts.{e}.{p}" for e in (0, 1)
                for p in ("gate_proj", "up_proj", "down_proj")}
    rows = profile_rows(names, present)
    assert rows[f"{L}.self_attn.fused_qkv_a_proj"] == (
        "linear", (f"{L}.self_attn.q_a_proj", f"{L}.self_attn.kv_a_proj_with_mqa"))
    assert f"{L}.self_attn.kv_a_proj_with_mqa" not in rows  # the variant is inactive
    assert rows[f"{L}.mlp.experts"][1][:3] == tuple(
        f"{L}.mlp.experts.0.{p}" for p in ("gate_proj", "up_proj", "down_proj"))


def test_no_quant_config_is_recorded_but_keeps_the_kind() -> None:
    """A non-replicated linear vLLM built with no quant config stays ``linear`` in the
    learned profile (the plan overrides per-config workarounds such as Qwen's ``mtp.fc``);
    the flag only tells the conformance test that vLLM passed None. Observations written
    before the field existed still read."""
    obs = _ernie_like()
    flagged = obs.model_copy(update={"layers": tuple(
        layer.model_copy(update={"no_quant_config": layer.kind is ModuleKind.LINEAR})
        for layer in obs.layers)})
    assert mapping_rows(learned_profile(flagged)) == mapping_rows(learned_profile(obs))
    raw = obs.model_dump(mode="json")
    for layer in raw["layers"]:
        del layer["no_quant_config"]
    assert Observation.model_validate(raw) == obs


def test_learned_stock_is_the_cautious_reading_and_names_empty_prefixes() -> None:
    """fix's stock model for a learned drafter: exact observed prefixes (shard names are
    not trusted to exclude a fused layer); a fed quantizable layer built with the prefix
    "" (HY-V3's NextN head) is a limit no entry can lift; the profile lists every tensor
    the drafter read (graft copies those TARGET lacks), the norm outside any layer too."""
    obs = _ernie_like()
    profile = learned_profile(obs)
    assert profile.stock is not None and profile.stock.limits == ()
    assert profile.stock.quant_config == "unknown" and not profile.stock.packed_exclusions
    assert "model.mtp_norm.0.weight" in profile.reads and "lm_head.weight" in profile.reads
    # HY-V3 as the dry run reads it: the head's kind says "built without a quant config"
    # (the prefix "" is shared by every unnamed layer), but stock vLLM quantizes it
    for kind in (ModuleKind.LM_HEAD, ModuleKind.FIXED):
        head = LearnedLayer(path=f"{L}.head", prefix="", kind=kind, layer_class="ParallelLMHead")
        hy = obs.model_copy(update={"layers": (*obs.layers[:-1], head)})
        limits = learned_profile(hy).stock.limits  # type: ignore[union-attr]
        assert [x.text for x in limits] == [
            f"builds {L}.head (ParallelLMHead) with an empty prefix, which no exclusion entry "
            "can name: it is quantized whatever the config says"]


def test_two_layers_under_one_prefix_are_one_module_fed_by_both() -> None:
    """K3DSpark (kimi_k3/nvidia/dspark_mla.py) builds ``context_kv_proj`` under its first
    layer's ``fused_qkv_a_proj`` prefix and loads each ``kv_a_proj_with_mqa`` into both:
    the plan holds one module for the prefix, fed by q_a and kv_a (it kept the last
    layer's sources alone, kv_a, before)."""
    fused = "model.layers.2.self_attn.fused_qkv_a_proj"
    layers = (LearnedLayer(path="model.context_kv_proj", prefix=fused, kind=ModuleKind.LINEAR),
              LearnedLayer(path="model.layers.0.self_attn.fused_qkv_a_proj", prefix=fused,
                           kind=ModuleKind.LINEAR))
    a, kv = "layers.0.self_attn.q_a_proj", "layers.0.self_attn.kv_a_proj_with_mqa"
    feeds = (Feed(tensor=f"{a}.weight", param=f"{layers[1].path}.weight", shard="0"),
             Feed(tensor=f"{kv}.weight", param=f"{layers[1].path}.weight", shard="1"),
             Feed(tensor=f"{kv}.weight", param="model.context_kv_proj.weight", shard="0"))
    prof = learned_profile(Observation(drafter="K3DSparkModel", layers=layers, feeds=feeds))
    assert [(g.runtime, g.checkpoint) for g in prof.globals] == [(fused, (a, kv))]
