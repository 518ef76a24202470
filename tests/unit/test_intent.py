"""QuantIntent: parsing each producer's config, and what it says about draft modules."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from strategies import (
    draft_layer_counts,
    hidden_layer_counts,
    json_values,
    profiles,
    rule_lists,
    target_names,
)

from vllm_draft_quant.core.intent import QuantIntent, intent_from_configs
from vllm_draft_quant.core.names import NameMap, RuntimeModule
from vllm_draft_quant.core.rules import make_rules
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.errors import ConfigError, DraftQuantError
from vllm_draft_quant.profiles import profile_for_draft

N_EXPERTS = 4
NVFP4_W = {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16}


# ------------------------------------------------------------------ builders
PRODUCERS = ("modelopt", "compressed-tensors", "quark", "gptq", "fp8")
GRAMMAR = {"modelopt": "modelopt", "compressed-tensors": "compressed-tensors",
           "quark": "quark", "gptq": "substring", "fp8": "exact"}


def configs(producer: str, rules: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(hf_quant_config, quantization_config) of ``producer`` excluding ``rules``."""
    if producer == "modelopt":
        return {"quantization": {"quant_algo": "NVFP4", "exclude_modules": rules}}, None
    if producer == "compressed-tensors":
        return None, {"quant_method": "compressed-tensors", "format": "nvfp4-pack-quantized",
                      "config_groups": {"group_0": {"targets": ["Linear"], "weights": NVFP4_W}},
                      "ignore": rules}
    if producer == "quark":
        return None, {"quant_method": "quark", "exclude": rules,
                      "global_quant_config": {"weight": {"dtype": "fp8_e4m3"}}}
    if producer == "gptq":
        return None, {"quant_method": "gptq", "bits": 4, "modules_to_not_convert": rules}
    return None, {"quant_method": "fp8", "weight_block_size": [128, 128], "ignored_layers": rules}


def parse(producer: str, rules: list[str]) -> QuantIntent:
    intent = intent_from_configs(*configs(producer, rules))
    assert intent is not None
    return intent


def decisions(intent: QuantIntent, nm: NameMap) -> dict[str, tuple[Scheme, bool, str | None]]:
    """What the config says about every drafter module: (scheme, partial, deciding rule)."""
    out = {}
    for m in nm.modules:
        d = intent.decide(m.checkpoint_names(range(N_EXPERTS)), m.prefix, m.spec.kind)
        out[m.prefix] = (d.scheme, d.partial, d.rule.text if d.rule else None)
    return out


def draft_names(nm: NameMap) -> list[tuple[str, ModuleKind]]:
    return [(n, m.spec.kind) for m in nm.modules
            for n in (m.prefix, *m.checkpoint_names(range(N_EXPERTS)))]


def hits_draft(grammar: str, text: str, names: list[tuple[str, ModuleKind]]) -> bool:
    (rule,) = make_rules([text], grammar=grammar, origin="probe")
    return any(rule.matches(n, k) or rule.matches(n) for n, k in names)


def module(nm: NameMap, suffix: str) -> RuntimeModule:
    (m,) = [m for m in nm.modules if m.prefix.endswith(suffix)]
    return m


# ------------------------------------------------------------- valid configs
@pytest.mark.parametrize(
    ("hf_quant", "qc", "producer", "scheme"),
    [
        ({"quantization": {"quant_algo": "NVFP4", "exclude_modules": ["lm_head"]}}, None,
         "modelopt", Scheme.NVFP4),
        ({"quantization": {"quant_algo": "FP8"}}, None, "modelopt", Scheme.FP8),
        (None, {"quant_method": "modelopt", "quant_algo": "FP8_PB_WO", "ignore": []},
         "modelopt", Scheme.FP8_BLOCK),
        (None, {"quant_method": "modelopt_fp4",
                "quantization": {"quant_algo": "NVFP4", "exclude_modules": []}},
         "modelopt", Scheme.NVFP4),
        (None, configs("compressed-tensors", [])[1], "compressed-tensors", Scheme.NVFP4),
        (None, {"quant_method": "compressed-tensors", "format": "float-quantized",
                "config_groups": {"g": {"targets": ["Linear"],
                                        "weights": {"num_bits": 8, "type": "float"}}}},
         "compressed-tensors", Scheme.FP8),
        (None, {"quant_method": "compressed-tensors",
                "config_groups": {"g": {"targets": ["Linear"], "weights": {
                    "num_bits": 8, "type": "float", "strategy": "block"}}}},
         "compressed-tensors", Scheme.FP8_BLOCK),
        (None, {"quant_method": "compressed-tensors", "format": "mxfp4-pack-quantized",
                "config_groups": {"g": {"targets": ["Linear"], "weights": {
                    "num_bits": 4, "type": "float", "group_size": 32}}}},
         "compressed-tensors", Scheme.MXFP4),
        (None, {"quant_method": "compressed-tensors", "format": "pack-quantized",
                "config_groups": {"g": {"targets": ["Linear"], "weights": {
                    "num_bits": 4, "type": "int"}}}},
         "compressed-tensors", Scheme.INT4),
        (None, configs("quark", [])[1], "quark", Scheme.FP8),
        (None, {"quant_method": "quark", "global_quant_config": {"weight": {"dtype": "fp4"}}},
         "quark", Scheme.MXFP4),
        (None, configs("gptq", [])[1], "gptq", Scheme.INT4),
        (None, {"quant_method": "awq"}, "awq", Scheme.INT4),
        (None, {"quant_method": "gptq", "bits": 8}, "gptq", Scheme.UNKNOWN),
        (None, {"quant_method": "auto-round", "bits": 4, "group_size": 128}, "auto-round",
         Scheme.INT4),
        (None, {"quant_method": "moe_wna16", "bits": 4, "group_size": 64}, "moe_wna16",
         Scheme.INT4),
        (None, configs("fp8", [])[1], "fp8", Scheme.FP8_BLOCK),
        (None, {"quant_method": "fp8"}, "fp8", Scheme.FP8),
        (None, {"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}, "mxfp4",
         Scheme.MXFP4),
    ],
)
def test_each_producer_parses(hf_quant: Any, qc: Any, producer: str, scheme: Scheme) -> None:
    intent = intent_from_configs(hf_quant, qc)
    assert intent is not None
    assert (intent.producer, intent.scheme) == (producer, scheme)


def test_no_quant_config_is_no_intent() -> None:
    assert intent_from_configs(None, None) is None


def test_modelopt_files_are_merged() -> None:
    """hf_quant_config.json and config.json describe the same export: exclusions merge."""
    intent = intent_from_configs(
        {"quantization": {"quant_algo": "NVFP4", "exclude_modules": ["lm_head"]}},
        {"quant_method": "modelopt", "quant_algo": "FP8", "ignore": ["model.layers.2*"]},
    )
    assert intent is not None and intent.scheme is Scheme.NVFP4  # algorithm: hf_quant_config
    assert intent.exclusions.matches("lm_head")
    assert intent.exclusions.matches("model.layers.2.eh_proj")


def test_mixed_precision_per_layer() -> None:
    intent = intent_from_configs({"quantization": {
        "quant_algo": "MIXED_PRECISION",
        "quantized_layers": {"model.layers.2.mlp.gate_proj": {"quant_algo": "NVFP4"},
                             "model.layers.2.mlp.up_proj": {"quant_algo": "NVFP4"},
                             "model.layers.2.mlp.down_proj": {"quant_algo": "FP8"}}}}, None)
    assert intent is not None
    gate_up = ["model.layers.2.mlp.gate_proj", "model.layers.2.mlp.up_proj"]
    assert intent.decide(gate_up, "x.gate_up_proj", ModuleKind.LINEAR).scheme is Scheme.NVFP4
    assert intent.decide(["model.layers.2.mlp.down_proj"], "x.down_proj",
                         ModuleKind.LINEAR).scheme is Scheme.FP8
    assert intent.decide(["model.layers.2.eh_proj"], "x.eh_proj",
                         ModuleKind.LINEAR).scheme is Scheme.UNQUANTIZED


@given(data=st.data())
def test_mixed_precision_does_not_depend_on_listing_order(data: st.DataObject) -> None:
    """Shards of one fused module listed with different algorithms: no order decides."""
    entries = [("a.q_proj", "NVFP4"), ("a.k_proj", "FP8"), ("a.v_proj", "NVFP4"),
               ("b.o_proj", "FP8")]
    order = data.draw(st.permutations(entries))
    intent = intent_from_configs({"quantization": {
        "quant_algo": "MIXED_PRECISION",
        "quantized_layers": {n: {"quant_algo": a} for n, a in order}}}, None)
    assert intent is not None
    d = intent.decide(["a.q_proj", "a.k_proj", "a.v_proj"], "a.qkv_proj", ModuleKind.LINEAR)
    assert d.scheme is Scheme.UNKNOWN
    assert "fp8, nvfp4" in d.reason


# ------------------------------------------------------------ malformed configs
MALFORMED: list[tuple[Any, Any, str]] = [
    ({}, None, "'quantization'"),
    ({"quantization": []}, None, "'quantization'"),
    ({"quantization": {"exclude_modules": []}}, None, "quant_algo"),
    ({"quantization": {"quant_algo": 4}}, None, "quant_algo"),
    ({"quantization": {"quant_algo": "INT3"}}, None, "quant_algo"),
    ({"quantization": {"quant_algo": "NVFP4", "exclude_modules": "lm_head*"}}, None, None),
    ({"quantization": {"quant_algo": "NVFP4", "exclude_modules": {"lm_head": 1}}}, None,
     "exclude_modules"),
    ({"quantization": {"quant_algo": "NVFP4", "exclude_modules": ["lm_head", 7]}}, None,
     "exclude_modules[1]"),
    ({"quantization": {"quant_algo": "MIXED_PRECISION"}}, None, "quantized_layers"),
    ({"quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": []}}, None,
     "quantized_layers"),
    ({"quantization": {"quant_algo": "MIXED_PRECISION", "quantized_layers": {"x": "NVFP4"}}},
     None, "quantized_layers['x']"),
    ({"quantization": {"quant_algo": "MIXED_PRECISION",
                       "quantized_layers": {"x": {"quant_algo": None}}}}, None, "quant_algo"),
    (None, {}, "quant_method"),
    (None, {"quant_method": 3}, "quant_method"),
    (None, {"quant_method": "modelopt"}, "quant_algo"),
    (None, {"quant_method": "modelopt", "quant_algo": "NVFP4", "ignore": 5}, "ignore"),
    (None, {"quant_method": "compressed-tensors"}, "config_groups"),
    (None, {"quant_method": "compressed-tensors", "config_groups": {}}, "config_groups"),
    (None, {"quant_method": "compressed-tensors", "config_groups": {"g": []}}, "config_groups.g"),
    (None, {"quant_method": "compressed-tensors", "config_groups": {"g": {"weights": NVFP4_W}}},
     "config_groups.g.targets"),
    (None, {"quant_method": "compressed-tensors",
            "config_groups": {"g": {"targets": "Linear", "weights": 4}}}, "config_groups.g.weights"),
    (None, {"quant_method": "compressed-tensors",
            "config_groups": {"g": {"targets": [1], "weights": NVFP4_W}}}, "targets[0]"),
    (None, {"quant_method": "compressed-tensors",
            "config_groups": {"g": {"targets": ["re:(("], "weights": NVFP4_W}}}, "targets[0]"),
    (None, {**configs("compressed-tensors", [])[1], "ignore": {"lm_head": True}}, "ignore"),  # type: ignore[dict-item]
    (None, {"quant_method": "quark", "exclude": 1}, "exclude"),
    (None, {"quant_method": "quark", "global_quant_config": "fp8"}, "global_quant_config"),
    (None, {"quant_method": "gptq", "modules_to_not_convert": [None]},
     "modules_to_not_convert[0]"),
    (None, {"quant_method": "fp8", "ignored_layers": "lm_head", "weight_block_size": None}, None),
    (None, {"quant_method": "fp8", "ignored_layers": [["lm_head"]]}, "ignored_layers[0]"),
]


@pytest.mark.parametrize(("hf_quant", "qc", "field"), MALFORMED)
def test_malformed_configs_raise_config_error_naming_the_field(
    hf_quant: Any, qc: Any, field: str | None
) -> None:
    if field is None:  # a single string where a list is expected: one rule, accepted
        assert intent_from_configs(hf_quant, qc) is not None
        return
    with pytest.raises(ConfigError) as info:
        intent_from_configs(hf_quant, qc, hf_quant_origin="hq.json", config_origin="cfg.json")
    msg = str(info.value)
    assert field in msg
    assert ("hq.json" if hf_quant is not None else "cfg.json") in msg


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


@st.composite
def mutated_configs(draw: st.DrawFn) -> tuple[Any, Any]:
    """A valid config of some producer with one field replaced, deleted or added."""
    producer = draw(st.sampled_from([*PRODUCERS, "mixed"]))
    if producer == "mixed":
        pair: tuple[Any, Any] = ({"quantization": {
            "quant_algo": "MIXED_PRECISION",
            "quantized_layers": {"model.layers.2.mlp.gate_proj": {"quant_algo": "NVFP4"}}}},
            {"quant_method": "modelopt", "quant_algo": "MIXED_PRECISION", "ignore": ["lm_head"]})
    else:
        pair = configs(producer, ["lm_head", "model.layers.2.eh_proj"])
    pair = copy.deepcopy(pair)
    side = 0 if pair[1] is None else (1 if pair[0] is None else draw(st.integers(0, 1)))
    root = pair[side]
    path = draw(st.sampled_from(_paths(root)))
    parent = root
    for key in path[:-1]:
        parent = parent[key]
    action = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
    if action == "delete":
        del parent[path[-1]]
    elif action == "add" and isinstance(parent, dict):
        parent[draw(st.text(max_size=8))] = draw(json_values)
    else:
        parent[path[-1]] = draw(json_values)
    return pair


@given(pair=mutated_configs())
def test_damaged_configs_raise_only_config_error(pair: tuple[Any, Any]) -> None:
    """Wrong types or missing keys anywhere: a ConfigError, never KeyError/TypeError/..."""
    try:
        intent = intent_from_configs(*pair)
    except ConfigError:
        return
    if intent is None:
        return
    nm = NameMap(profile_for_draft("DeepSeekMTPModel"), num_hidden_layers=2, num_draft_layers=1)
    decisions(intent, nm)  # deciding must not fail either


@given(hf_quant=st.dictionaries(st.sampled_from(["quantization", "producer", "x"]), json_values),
       qc=st.none() | st.dictionaries(
           st.sampled_from(["quant_method", "quant_algo", "ignore", "config_groups",
                            "exclude", "modules_to_not_convert", "quantization"]),
           json_values) | st.sampled_from(PRODUCERS).flatmap(
           lambda p: st.dictionaries(st.sampled_from(["ignore", "config_groups", "exclude",
                                                       "global_quant_config", "quant_algo"]),
                                     json_values).map(lambda d: {**d, "quant_method": p})))
def test_arbitrary_configs_raise_only_config_error(hf_quant: dict[str, Any],
                                                   qc: dict[str, Any] | None) -> None:
    for pair in ((hf_quant, qc), (None, qc), (hf_quant, None)):
        try:
            intent_from_configs(*pair)
        except DraftQuantError as e:
            assert isinstance(e, ConfigError)


# ----------------------------------------------------------------- properties
@given(producer=st.sampled_from(PRODUCERS), profile=profiles, n_hidden=hidden_layer_counts,
       n_draft=draft_layer_counts, data=st.data())
def test_rules_matching_only_target_layers_never_change_a_draft_decision(
    producer: str, profile: Any, n_hidden: int, n_draft: int, data: st.DataObject
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    grammar = GRAMMAR[producer]
    names = draft_names(nm)
    draft_like = st.sampled_from(sorted({n for n, _ in names}))
    base = data.draw(rule_lists(grammar, draft_like, max_size=5), label="base rules")
    candidates = data.draw(rule_lists(grammar, target_names(nm), max_size=8), label="target rules")
    target_only = [t for t in candidates if not hits_draft(grammar, t, names)]
    event(f"{len(target_only)} target-only rules")
    before = decisions(parse(producer, base), nm)
    assert decisions(parse(producer, [*base, *target_only]), nm) == before
    mixed = data.draw(st.permutations([*base, *target_only]))
    assert decisions(parse(producer, mixed), nm) == before


@given(profile=profiles, n_hidden=hidden_layer_counts, data=st.data())
def test_a_config_group_targeting_only_target_layers_changes_no_draft_decision(
    profile: Any, n_hidden: int, data: st.DataObject
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=1)
    names = draft_names(nm)
    candidates = data.draw(rule_lists("compressed-tensors", target_names(nm), max_size=6))
    targets = [t for t in candidates if not hits_draft("compressed-tensors", t, names)]
    if not targets:
        return
    _, qc = configs("compressed-tensors", ["lm_head"])
    assert qc is not None
    before = decisions(intent_from_configs(None, qc), nm)  # type: ignore[arg-type]
    fp8 = {"targets": targets, "weights": {"num_bits": 8, "type": "float"}}
    for name in ("group_a_first", "z_last"):
        qc2 = copy.deepcopy(qc)
        qc2["config_groups"][name] = fp8
        assert decisions(intent_from_configs(None, qc2), nm) == before  # type: ignore[arg-type]


@given(producer=st.sampled_from(PRODUCERS), profile=profiles, n_hidden=hidden_layer_counts,
       data=st.data())
def test_intent_does_not_depend_on_rule_order(
    producer: str, profile: Any, n_hidden: int, data: st.DataObject
) -> None:
    nm = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=2)
    draft_like = st.sampled_from(sorted({n for n, _ in draft_names(nm)}))
    rules = data.draw(rule_lists(GRAMMAR[producer], draft_like | target_names(nm), max_size=10))
    shuffled = data.draw(st.permutations(rules))
    assert decisions(parse(producer, shuffled), nm) == decisions(parse(producer, rules), nm)


@given(data=st.data())
def test_config_group_order_does_not_matter(data: st.DataObject) -> None:
    groups = {
        "attn": {"targets": ["re:.*self_attn.*"], "weights": {"num_bits": 8, "type": "float"}},
        "mlp": {"targets": ["re:.*mlp.*"], "weights": NVFP4_W},
        "all": {"targets": ["Linear"], "weights": {"num_bits": 4, "type": "int"}},
    }
    nm = NameMap(profile_for_draft("Qwen3NextMTP"), num_hidden_layers=48, num_draft_layers=1)
    order = data.draw(st.permutations(sorted(groups)))
    qc = {"quant_method": "compressed-tensors", "config_groups": {k: groups[k] for k in order}}
    got = decisions(intent_from_configs(None, qc), nm)  # type: ignore[arg-type]
    assert got["mtp.layers.0.self_attn.o_proj"][0] is Scheme.INT4  # "all" sorts first
    assert got == decisions(intent_from_configs(None, {**qc, "config_groups": groups}), nm)


def test_exclusion_of_some_fused_shards_is_partial() -> None:
    nm = NameMap(profile_for_draft("Step3p5MTP"), num_hidden_layers=45, num_draft_layers=1)
    qkv = module(nm, "self_attn.qkv_proj")
    intent = parse("modelopt", ["model.layers.45.self_attn.q_proj"])
    d = intent.decide(qkv.checkpoint_names(), qkv.prefix, qkv.spec.kind)
    assert d.partial and d.scheme is Scheme.NVFP4 and "1 of 3 shards" in d.reason
    intent = parse("modelopt", ["model.layers.45.self_attn.[qkv]_proj"])
    d = intent.decide(qkv.checkpoint_names(), qkv.prefix, qkv.spec.kind)
    assert not d.partial and d.scheme is Scheme.UNQUANTIZED
    # a rule naming the fused runtime module excludes all of it
    d = parse("modelopt", [qkv.prefix]).decide(qkv.checkpoint_names(), qkv.prefix,
                                                qkv.spec.kind)
    assert not d.partial and d.scheme is Scheme.UNQUANTIZED


def test_experts_are_excluded_only_when_every_expert_is() -> None:
    nm = NameMap(profile_for_draft("DeepSeekMTPModel"), num_hidden_layers=61, num_draft_layers=1)
    experts = module(nm, "mlp.experts")
    names = experts.checkpoint_names(range(8))
    some = parse("compressed-tensors", [r"re:.*experts\.[0-3]\..*"])
    assert some.decide(names, experts.prefix, experts.spec.kind).partial
    every = parse("compressed-tensors", [r"re:.*mlp\.experts\..*"])
    d = every.decide(names, experts.prefix, experts.spec.kind)
    assert d.scheme is Scheme.UNQUANTIZED and not d.partial


@given(producer=st.sampled_from(PRODUCERS), kind=st.sampled_from([ModuleKind.PLAIN,
                                                                   ModuleKind.FIXED]))
def test_unquantizable_modules_are_always_unquantized(producer: str, kind: ModuleKind) -> None:
    d = parse(producer, []).decide(["model.layers.61.eh_proj"], "model.layers.61.eh_proj", kind)
    assert d.scheme is Scheme.UNQUANTIZED
