"""NameMap: checkpoint <-> runtime names for every drafter profile, as properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    checkpoint_name_in,
    draft_layer_counts,
    expert_counts,
    hidden_layer_counts,
    module_names,
    target_names,
)

from vllm_draft_quant.core.names import NameMap, module_of
from vllm_draft_quant.profiles import PROFILES, DrafterProfile, profile_for_draft

ALL_PROFILES = pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.architecture)


def _expand(template: str, e: int | None) -> str:
    return template if e is None else template.replace("{e}", str(e))


@ALL_PROFILES
@given(n_hidden=hidden_layer_counts, n_draft=draft_layer_counts, n_experts=expert_counts,
       data=st.data())
def test_checkpoint_runtime_checkpoint_round_trip(
    profile: DrafterProfile, n_hidden: int, n_draft: int, n_experts: int, data: st.DataObject
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    m, shard, name = data.draw(checkpoint_name_in(nm, n_experts))
    hit = nm.runtime_of(name)
    assert hit is not None, name
    rm, i, e = hit
    assert (rm.prefix, i) == (m.prefix, shard)
    # ... and back: the runtime module's checkpoint names hold the name, at that shard
    assert _expand(rm.checkpoint_modules[i], e) == name
    assert name in rm.checkpoint_names(range(n_experts))
    assert nm.module(rm.prefix) is rm
    assert nm.is_draft_name(name)
    assert nm.is_draft_name(name + ".weight_scale")


@ALL_PROFILES
@given(n_hidden=hidden_layer_counts, n_draft=draft_layer_counts, n_experts=expert_counts)
def test_runtime_checkpoint_runtime_round_trip(
    profile: DrafterProfile, n_hidden: int, n_draft: int, n_experts: int
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    for m in nm.modules:
        if not nm.is_active(m):
            continue  # a variant: see test_variant_module_claims_its_shard_when_active
        for name in m.checkpoint_names(range(n_experts)):
            hit = nm.runtime_of(name)
            assert hit is not None and hit[0] is m, (m.prefix, name)


@ALL_PROFILES
@given(n_hidden=hidden_layer_counts, n_draft=draft_layer_counts, n_experts=expert_counts)
def test_fused_expansion_and_its_inverse_agree(
    profile: DrafterProfile, n_hidden: int, n_draft: int, n_experts: int
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    for m in nm.modules:
        if not nm.is_active(m):
            continue
        expanded = m.checkpoint_names(range(n_experts))
        per_shard = n_experts if m.spec.per_expert else 1
        assert len(expanded) == len(set(expanded)) == len(m.checkpoint_modules) * per_shard
        # inverse: every expanded name maps back to this module; sorting by
        # (shard, expert) gives the expansion back in order, every shard covered
        back = []
        for name in expanded:
            rm, i, e = nm.runtime_of(name)  # type: ignore[misc]
            assert rm is m
            assert (e is not None) == ("{e}" in m.checkpoint_modules[i])
            back.append((i, -1 if e is None else e, name))
        assert [n for _, _, n in sorted(back)] == expanded
        assert {i for i, _, _ in back} == set(range(len(m.checkpoint_modules)))
        if m.spec.per_expert:
            assert {e for _, e, _ in back} == set(range(n_experts))


@ALL_PROFILES
@given(n_hidden=hidden_layer_counts, n_draft=draft_layer_counts)
def test_draft_layers_are_placed_from_the_layer_counts(
    profile: DrafterProfile, n_hidden: int, n_draft: int
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    assert [layer.k for layer in nm.layers] == list(range(n_draft))
    runtime_index = profile.root.runtime_index or profile.root.index  # MiMo: they differ
    for layer in nm.layers:
        n = n_hidden + layer.k if profile.root.index == "global" else layer.k
        n_rt = n_hidden + layer.k if runtime_index == "global" else layer.k
        assert layer.checkpoint_root == profile.root.checkpoint.format(n=n)
        assert layer.runtime_root == profile.root.runtime.format(n=n_rt)
    prefixes = [m.prefix for m in nm.modules]
    assert len(prefixes) == len(set(prefixes))
    assert len(nm.modules) == n_draft * len(profile.modules) + len(profile.globals)


@given(data=st.data())
def test_target_layer_names_are_never_draft_names(data: st.DataObject) -> None:
    profile = data.draw(st.sampled_from(PROFILES))
    nm = NameMap(profile, num_hidden_layers=data.draw(hidden_layer_counts),
                 num_draft_layers=data.draw(draft_layer_counts))
    name = data.draw(target_names(nm))
    assert nm.runtime_of(name) is None, name
    assert not nm.is_draft_name(name)
    assert not nm.is_draft_name(name + ".weight")


@pytest.mark.parametrize("n_hidden", [4, 6, 10, 60])
def test_layer_root_is_not_a_prefix_of_a_longer_index(n_hidden: int) -> None:
    """Draft layer 4 must not claim layer 40 (``model.layers.4`` vs ``model.layers.40``)."""
    nm = NameMap(profile_for_draft("DeepSeekMTPModel"), num_hidden_layers=n_hidden,
                 num_draft_layers=1)
    assert nm.is_draft_name(f"model.layers.{n_hidden}.eh_proj.weight")
    for longer in (f"model.layers.{n_hidden}0.eh_proj.weight",
                   f"model.layers.{n_hidden}1.mlp.experts.0.gate_proj"):
        assert not nm.is_draft_name(longer)
        assert nm.runtime_of(module_of(longer)) is None


@given(name=module_names, param=st.sampled_from(["weight", "weight_scale", "input_scale"]))
def test_module_of_strips_the_parameter(name: str, param: str) -> None:
    assert module_of(f"{name}.{param}") == name


def test_variant_module_claims_its_shard_when_active() -> None:
    """DeepSeek: kv_a_proj_with_mqa is a shard of fused_qkv_a_proj, or alone without q_a_proj."""
    nm = NameMap(profile_for_draft("DeepSeekMTPModel"), num_hidden_layers=61, num_draft_layers=1)
    kv = "model.layers.61.self_attn.kv_a_proj_with_mqa"
    full = {kv, "model.layers.61.self_attn.q_a_proj"}
    for present in (None, full):
        rm, shard, _ = nm.runtime_of(kv, present)  # type: ignore[misc]
        assert (rm.prefix, shard) == ("model.layers.61.self_attn.fused_qkv_a_proj", 1)
    rm, shard, _ = nm.runtime_of(kv, {kv})  # type: ignore[misc]
    assert (rm.prefix, shard) == ("model.layers.61.self_attn.kv_a_proj_with_mqa", 0)


def test_negative_layer_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        NameMap(PROFILES[0], num_hidden_layers=-1, num_draft_layers=1)


def test_profiles_use_only_known_placeholders() -> None:
    """Every template has at most the {e} placeholder; runtime names have none."""
    for p in PROFILES:
        for spec in (*p.modules, *p.globals):
            assert "{" not in spec.runtime, (p.architecture, spec.runtime)
            for c in spec.checkpoint:
                assert "{" not in c.replace("{e}", ""), (p.architecture, c)
