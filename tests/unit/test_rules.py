"""Rule grammars and the compiled RuleSet: semantics per producer, order independence."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import (
    GRAMMARS,
    grammar_rule_lists,
    json_values,
    module_kinds,
    module_names,
    rule_lists,
)

from vllm_draft_quant.core.rules import Rule, RuleSet, make_rules
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.errors import ConfigError

ORIGIN = "cfg.json: quantization.exclude_modules"


def _rules(grammar: str, texts: list[str]) -> tuple[Rule, ...]:
    return make_rules(texts, grammar=grammar, origin=ORIGIN)


def _reference_first(rules: tuple[Rule, ...], names: list[str], kind: ModuleKind | None) -> Rule | None:
    hits = [r for r in rules if any(r.matches(n, kind) for n in names)]
    return min(hits, key=lambda r: (r.text, r.origin)) if hits else None


# ----------------------------------------------------------------- properties
@given(gr=grammar_rule_lists, names=st.lists(module_names, min_size=1, max_size=5),
       kind=st.none() | module_kinds)
def test_compiled_ruleset_agrees_with_each_rule(
    gr: tuple[str, list[str]], names: list[str], kind: ModuleKind | None
) -> None:
    """The fast paths (hash lookup, one combined glob regex) answer like the rules one by one."""
    grammar, texts = gr
    rules = _rules(grammar, texts)
    rs = RuleSet(rules)
    for n in names:
        assert rs.matches(n, kind) == any(r.matches(n, kind) for r in rules), n
    assert rs.first_match(names, kind) == _reference_first(rules, names, kind)


@given(gr=grammar_rule_lists, names=st.lists(module_names, min_size=1, max_size=5),
       kind=st.none() | module_kinds, data=st.data())
def test_decision_does_not_depend_on_rule_order(
    gr: tuple[str, list[str]], names: list[str], kind: ModuleKind | None, data: st.DataObject
) -> None:
    grammar, texts = gr
    shuffled = data.draw(st.permutations(texts))
    a, b = RuleSet(_rules(grammar, texts)), RuleSet(_rules(grammar, shuffled))
    for n in names:
        assert a.matches(n, kind) == b.matches(n, kind)
    fa, fb = a.first_match(names, kind), b.first_match(names, kind)
    # origins carry the list index, so compare what the rule says
    assert (fa and fa.text) == (fb and fb.text)


@given(grammar=st.sampled_from(GRAMMARS), entries=json_values)
def test_make_rules_raises_only_config_error(grammar: str, entries: object) -> None:
    try:
        rules = make_rules(entries, grammar=grammar, origin=ORIGIN)
    except ConfigError as e:
        assert ORIGIN in str(e)
    else:
        assert all(isinstance(r, Rule) for r in rules)
        RuleSet(rules)


@given(texts=rule_lists("modelopt"), name=module_names)
def test_adding_a_rule_never_unmatches(texts: list[str], name: str) -> None:
    """Exclusion is monotone: a name excluded by some rules stays excluded with more."""
    base = RuleSet(_rules("modelopt", texts))
    more = RuleSet(_rules("modelopt", [*texts, "model.layers.0.mlp*"]))
    assert not base.matches(name) or more.matches(name)


@given(n=st.integers(0, 99), digit=st.integers(0, 9), suffix=module_names)
def test_modelopt_trailing_star_is_a_subtree(n: int, digit: int, suffix: str) -> None:
    """ModelOpt ``model.layers.4*`` is the module tree at layer 4, not layers 40-49."""
    rs = RuleSet(_rules("modelopt", [f"model.layers.{n}*"]))
    assert rs.matches(f"model.layers.{n}")
    assert rs.matches(f"model.layers.{n}.{suffix}")
    assert not rs.matches(f"model.layers.{n}{digit}")
    assert not rs.matches(f"model.layers.{n}{digit}.{suffix}")


def test_modelopt_grammar() -> None:
    rs = RuleSet(_rules("modelopt", ["*.mlp.experts.*", "lm_head", "mtp*", "model.layers.[0-2].*"]))
    assert rs.matches("model.layers.61.mlp.experts.7.up_proj")
    assert not rs.matches("model.layers.61.mlp.experts")  # the glob asks for a child
    assert rs.matches("lm_head") and not rs.matches("lm_head_extra")
    assert rs.matches("mtp") and rs.matches("mtp.fc") and not rs.matches("mtp_fc")
    assert rs.matches("model.layers.2.self_attn.q_proj")
    assert not rs.matches("model.layers.3.self_attn.q_proj")
    assert not rs.matches("model.layers.20.self_attn.q_proj")
    # only `<letter or digit>*` reads as a subtree; anything else is a plain glob
    assert RuleSet(_rules("modelopt", ["*"])).matches("model.layers.3.mlp.gate_proj")
    assert RuleSet(_rules("modelopt", ["model.layers.3.mlp.gate_*"])).matches(
        "model.layers.3.mlp.gate_up_proj")
    assert not RuleSet(_rules("modelopt", ["model.layers.3.mlp.gate*"])).matches(
        "model.layers.3.mlp.gate_up_proj")


@given(texts=rule_lists("modelopt"), name=module_names)
def test_modelopt_rules_match_within_fnmatch(texts: list[str], name: str) -> None:
    """A ModelOpt rule matches a subset of what fnmatch (vLLM) would; it differs only
    where a subtree rule ``path*`` meets a longer sibling (``path0``, ``path_x``)."""
    for r in _rules("modelopt", texts):
        if r.matches(name):
            assert fnmatch.fnmatchcase(name, r.text)
        elif fnmatch.fnmatchcase(name, r.text):
            root = r.text[:-1]
            assert r.form == "tree" and name.startswith(root) and name[len(root)] != "."


def test_compressed_tensors_grammar() -> None:
    rs = RuleSet(_rules("compressed-tensors",
                        ["re:.*mlp\\.gate$", "re:model\\.layers\\.4", "lm_head", "FusedMoE"]))
    assert rs.matches("model.layers.1.mlp.gate")
    assert not rs.matches("model.layers.1.mlp.gate_proj")
    # re.match: anchored at the start only
    assert rs.matches("model.layers.40.self_attn.q_proj")
    assert not rs.matches("mtp.model.layers.4.self_attn.q_proj")
    # a class name matches by module kind, not by name
    assert rs.matches("model.layers.3.mlp.experts", ModuleKind.EXPERTS)
    assert not rs.matches("model.layers.3.mlp.experts", ModuleKind.LINEAR)
    assert not rs.matches("FusedMoE")
    linear = RuleSet(_rules("compressed-tensors", ["Linear"]))
    for kind in ModuleKind:
        assert linear.matches("anything", kind) == (kind in (ModuleKind.LINEAR,
                                                             ModuleKind.EXPERTS,
                                                             ModuleKind.LM_HEAD))
    assert not linear.matches("anything")  # no kind known: a class rule cannot match


def test_quark_grammar() -> None:
    rs = RuleSet(_rules("quark", ["lm_head", "*.mlp.gate", "re:.*shared_head.*",
                                  "model.layers.4*"]))
    assert rs.matches("lm_head")
    assert rs.matches("model.layers.3.mlp.gate") and not rs.matches("model.layers.3.mlp.gate_proj")
    assert rs.matches("model.layers.61.shared_head.head")
    assert rs.matches("model.layers.40.mlp.gate_proj")  # quark globs are plain fnmatch


def test_substring_grammar() -> None:
    """transformers' modules_to_not_convert: containment, so ``layers.4`` hits layer 40."""
    rs = RuleSet(_rules("substring", ["lm_head", "layers.4."]))
    assert rs.matches("model.lm_head") and rs.matches("lm_head")
    assert rs.matches("model.layers.4.mlp") and not rs.matches("model.layers.40.mlp")
    assert RuleSet(_rules("substring", ["layers.4"])).matches("model.layers.40.mlp")


def test_exact_grammar_has_no_wildcards() -> None:
    rs = RuleSet(_rules("exact", ["model.layers.*", "re:.*"]))
    assert rs.matches("model.layers.*") and not rs.matches("model.layers.1")
    assert not rs.matches("anything")


def test_first_match_is_the_smallest_matching_rule() -> None:
    rs = RuleSet(_rules("modelopt", ["model.layers.2*", "*", "model.layers.2.mlp.gate_proj"]))
    r = rs.first_match(["model.layers.2.mlp.gate_proj"])
    assert r is not None and r.text == "*"
    r = rs.first_match(["other"])
    assert r is not None and r.text == "*"
    assert RuleSet(()).first_match(["x"]) is None and not RuleSet(())


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        ({"model.layers.2": True}, "expected a list"),
        (42, "found int"),
        (["ok", 3], "[1]"),
        (["ok", None], "expected a string"),
        (["re:(unclosed"], "not a valid regular expression"),
        (["re:a{99999999999}"], "not a valid regular expression"),  # OverflowError in re
        (["re:" + "(" * 2000 + ")" * 2000], "re:"),  # RecursionError in re
        (["x" * 5000], "characters long"),
    ],
)
def test_malformed_rule_lists_raise_config_error(entries: object, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_rules(entries, grammar="compressed-tensors", origin=ORIGIN)
    assert needle in str(info.value)
    assert ORIGIN in str(info.value)


def test_single_string_is_one_rule_and_none_is_no_rule() -> None:
    assert [r.text for r in make_rules("lm_head", grammar="modelopt", origin=ORIGIN)] == ["lm_head"]
    assert make_rules(None, grammar="modelopt", origin=ORIGIN) == ()


# ------------------------------------------------- issue 18: linear matching, same answers
_glob_chars = st.sampled_from(["*", "?", "[0-9]", "[!a]", "*.", ".*", "["])


@st.composite
def _globs(draw: st.DrawFn) -> str:
    name = draw(module_names)
    cut = draw(st.integers(0, len(name)))
    return name[:cut] + draw(_glob_chars) + draw(st.sampled_from(["", name[cut:], "*"]))


@given(patterns=st.lists(_globs() | module_names, max_size=12),
       names=st.lists(module_names, min_size=1, max_size=6))
def test_glob_index_agrees_with_fnmatchcase(patterns: list[str], names: list[str]) -> None:
    from vllm_draft_quant.core.rules import GlobIndex, glob_matches

    index = GlobIndex(patterns)
    for name in names:
        want = [p for p in dict.fromkeys(patterns)
                if (any(c in p for c in "*?[") and fnmatch.fnmatchcase(name, p)) or p == name]
        assert sorted(index.matching(name)) == sorted(want)
        for p in patterns:
            assert glob_matches(name, p) == fnmatch.fnmatchcase(name, p)
