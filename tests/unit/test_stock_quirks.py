"""Stock vLLM's per-drafter behaviour is profile data, and `fix` reads it for every family.

The quirks (``DrafterProfile.stock``) were read off vLLM 0.33.0's drafter code (each
family file cites the functions). Here they are checked against what stock vLLM did
on the same tiny checkpoints before any fix (``STOCK_OUTCOMES_MORE`` in
tests/integration/matrix_more.py, measured with the target loaded first), and `fix`
is shown to report GLM, Qwen3.5 and MiMo limits instead of "no record".
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from _cli_support import ckpt, fix_in_place
from hypothesis import given
from hypothesis import strategies as st

from vllm_draft_quant import profiles
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
from vllm_draft_quant.repair.fixer import compute_fix
from vllm_draft_quant.repair.stock import stock_quantizes

NEW_FAMILIES = ("glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo", "glm5", "qwen3_5",
                "glm4_moe_lite")
LAYOUTS = "abcdefg"

#: ModelOpt layouts stock vLLM 0.33.0 did not load correctly before any fix
#: (matrix_more.STOCK_OUTCOMES_MORE); every other layout loaded right.
MEASURED_WRONG = {
    ("glm4_moe", "nvfp4"): "acdefg",
    ("glm4_moe", "fp8"): "acdef",
    ("qwen3_5_moe", "nvfp4"): "ag",
    ("qwen3_5_moe", "fp8"): "a",
    ("qwen3_5_moe_vl", "nvfp4"): "ag",
    ("qwen3_5_moe_vl", "fp8"): "a",
    ("mimo", "nvfp4"): "abcef",
    ("mimo", "fp8"): "abcef",
    ("glm5", "nvfp4"): "acdef",
    ("glm5", "fp8"): "acdef",
    ("qwen3_5", "nvfp4"): "ag",
    ("qwen3_5", "fp8"): "a",
    ("glm4_moe_lite", "nvfp4"): "acdef",
    ("glm4_moe_lite", "fp8"): "acdef",
}
#: wrong for a reason no exclusion list changes: GLM's NextN head is also fed the
#: target's BF16 lm_head (size mismatch against the NVFP4 head)
LIMIT_NOT_MODULE = {("glm4_moe", "nvfp4", "g")}


def test_every_family_records_its_stock_behaviour() -> None:
    by_arch = {p.architecture: p.stock for p in profiles.PROFILES}
    assert all(s is not None for s in by_arch.values()), by_arch
    # FINDINGS.md "Drafter classes": Step-3.5, Qwen4Exp and the EAGLE3 drafters parse the
    # draft's own config
    draft_parsers = {a for a, s in by_arch.items() if s is not None and s.quant_config == "draft"}
    assert draft_parsers == {"Step3p5MTP", "Eagle3LlamaForCausalLM", "Qwen4ExpMTP",
                             "Eagle3Qwen3ForCausalLM", "Eagle3DeepseekV2ForCausalLM"}
    # a fresh parse has no packed-module mapping; the target's object keeps one; Qwen4Exp
    # puts its own on its fresh parse (qwen4_exp/nvidia/mtp.py:_make_draft_vllm_config)
    assert all(s is not None and s.packed_exclusions == (s.quant_config == "target")
               for a, s in by_arch.items() if a != "Qwen4ExpMTP")
    forced = {a for a, s in by_arch.items() if s is not None and s.always_unquantized}
    assert forced == {"Qwen3NextMTP", "Qwen3_5MoeMTP", "Qwen3_5MTP"}


def test_registry_collects_one_module_per_family() -> None:
    assert tuple(p for m in profiles.FAMILY_MODULES for p in m.PROFILES) == profiles.PROFILES
    assert len(profiles.PROFILES) == len(profiles.FAMILY_MODULES)
    assert len(profiles.PROFILES) == 17
    with pytest.raises(ValueError, match="claimed by more than one"):
        profiles._check_unique("target architectures", ["A", "B", "A"])


def _wrong_modules(model: Path, scheme: str) -> list[str]:
    facts = load_facts(model)
    assert facts.intent is not None
    entries = [r.text for r in facts.intent.exclusions.rules]
    out = []
    for d in plan_from_facts(facts).modules:
        if not d.kind.quantizable:
            continue
        q = stock_quantizes(producer="modelopt", scheme=Scheme(scheme), profile=facts.profile,
                            prefix=d.module, kind=d.kind, entries=entries)
        if q is None or q != (d.stored is not StoredFormat.UNQUANTIZED):
            out.append(d.module)
    return out


@pytest.mark.parametrize("scheme", ["nvfp4", "fp8"])
@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_stock_model_agrees_with_measured_outcomes(family: str, scheme: str,
                                                   tmp_path: Path) -> None:
    """The recorded quirks predict which unfixed layouts stock vLLM got wrong."""
    for layout in LAYOUTS:
        model = ckpt(tmp_path / layout, family, scheme, layout=layout)
        wrong = _wrong_modules(model, scheme)
        measured_wrong = layout in MEASURED_WRONG[(family, scheme)]
        if (family, scheme, layout) in LIMIT_NOT_MODULE:
            assert wrong == [] and measured_wrong
            facts = load_facts(model)
            limits = compute_fix(facts, plan_from_facts(facts)).stock_limits
            assert any("also loads lm_head" in x and "fails" in x for x in limits), limits
        else:
            assert bool(wrong) == measured_wrong, (layout, wrong)


def _expected(family: str, producer: str, scheme: str, layout: str) -> set[str]:
    if layout != "g":
        return set()
    out = set()
    if family.startswith("qwen3_5") and producer == "modelopt" and scheme == "nvfp4":
        out.add("builds mtp.fc unquantized whatever the config says")
    if family == "glm4_moe" and (producer, scheme) != ("compressed-tensors", "nvfp4"):
        out.add("also loads lm_head")  # the target's BF16 head into the quantized NextN head
    if family == "glm4_moe" and producer == "compressed-tensors":
        out.add("builds model.layers.2.head unquantized")  # ParallelLMHead is never a target
    return out


@pytest.mark.parametrize("producer", ["modelopt", "compressed-tensors"])
@pytest.mark.parametrize("family", ["glm4_moe", "qwen3_5_moe", "mimo"])
def test_fix_knows_stock_matching_for_more_families(family: str, producer: str,
                                                    tmp_path: Path) -> None:
    """After fix, the stock model builds every module in its stored precision, and the
    only limits left are the recorded ones (no "no record")."""
    for scheme in ("nvfp4", "fp8"):
        for layout in LAYOUTS:
            model = ckpt(tmp_path / f"{scheme}-{layout}", family, scheme, producer=producer,
                         layout=layout)
            limits = fix_in_place(model)
            assert not any("no record" in x for x in limits), limits
            expected = _expected(family, producer, scheme, layout)
            assert len(limits) == len(expected), (scheme, layout, limits)
            for words in expected:
                assert any(words in x for x in limits), (scheme, layout, limits)
            if producer == "modelopt" and not limits:
                assert _wrong_modules(model, scheme) == [], (scheme, layout)
            assert fix_in_place(model) == limits  # a second fix changes nothing


def test_a_profile_without_stock_facts_still_says_no_record(tmp_path: Path) -> None:
    model = ckpt(tmp_path / "m", "glm4_moe", "nvfp4", layout="a")
    facts = load_facts(model)
    bare = dataclasses.replace(facts, profile=dataclasses.replace(facts.profile, stock=None))
    limits = compute_fix(bare, plan_from_facts(bare)).stock_limits
    assert limits == ["stock vLLM 0.33.0: no record of how Glm4MoeMTPModel reads exclusions; "
                      "try the plugin"]


# --------------------------------------------- issue 18: the compiled stock matcher agrees
def _modelopt_reference(prefix: str, entries: list[str], packed: dict[str, list[str]]
                        ) -> bool | None:
    """vLLM's ``is_layer_excluded`` as the model had it before compiling (per call)."""
    import fnmatch

    if not entries:
        return False
    proj = prefix.rsplit(".", 1)[-1]
    listed = set(entries)
    if proj in packed and prefix in listed:
        skipped: bool | None = True
    elif proj in packed:
        shards = {prefix.replace(proj, s) in listed for s in packed[proj]}
        if len(shards) > 1:
            return None
        skipped = shards.pop()
    elif "experts" in prefix:
        skipped = any(prefix in e for e in entries if "experts" in e)
    else:
        skipped = prefix in listed
    if skipped:
        return True
    if any(e != prefix and e in prefix for e in entries):
        return True
    return any(fnmatch.fnmatch(prefix, e) for e in entries)


_parts = st.sampled_from(["model", "layers", "3", "45", "mlp", "experts", "0", "gate_proj",
                          "up_proj", "qkv_proj", "q_proj", "self_attn", "mtp_block"])
_prefixes = st.lists(_parts, min_size=1, max_size=6).map(".".join)
_entries = st.lists(_prefixes | st.just("") | _prefixes.map(lambda p: p + "*")
                    | _prefixes.map(lambda p: p[: len(p) // 2])
                    | _prefixes.map(lambda p: "*" + p[len(p) // 2:]), max_size=10)


@given(prefix=_prefixes, entries=_entries, packed=st.booleans())
def test_compiled_stock_matcher_agrees_with_the_reference(prefix: str, entries: list[str],
                                                          packed: bool) -> None:
    from vllm_draft_quant.repair.stock import _modelopt_excluded

    mapping = {"qkv_proj": ["q_proj", "k_proj", "v_proj"]} if packed else {}
    assert _modelopt_excluded(prefix, entries, mapping) == _modelopt_reference(
        prefix, entries, mapping)
