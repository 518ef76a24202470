"""`fixer.compute_fix` over every layout: truthful for the resolver and for stock vLLM.

The stock model (`repair.stock`) was checked against real vLLM 0.33.0 on the same
84 cases (tests/integration/test_cli_load.py): after the fix every ModelOpt case loads
correctly except Qwen3-Next NVFP4 layout g, which `stock_limits` reports.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest
from _cli_support import FAMILIES, PRODUCERS, ckpt, fix_in_place

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.repair.fixer import compute_fix
from vllm_draft_quant.repair.stock import stock_quantizes

LAYOUTS = "abcdefg"


def _expected_limits(family: str, producer: str, scheme: str, layout: str) -> set[str]:
    out = set()
    if family == "step3p5" and producer == "compressed-tensors":
        out.add("compressed-tensors Step-3.5")
    if layout == "g" and family == "qwen3_next" and producer == "modelopt" and scheme == "nvfp4":
        out.add("mtp.fc")
    if layout == "g" and producer == "compressed-tensors" and family != "qwen3_next":
        out.add("head")  # ParallelLMHead is never a compressed-tensors target
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("scheme", ["nvfp4", "fp8"])
@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("family", FAMILIES)
def test_fix_is_truthful(family: str, producer: str, scheme: str, layout: str,
                         tmp_path: Path) -> None:
    model = ckpt(tmp_path / "m", family, scheme, producer=producer, layout=layout)
    limits = fix_in_place(model)
    expected = _expected_limits(family, producer, scheme, layout)
    assert len(limits) == len(expected), limits
    for word in expected:
        assert any(word in line for line in limits), limits
    facts = load_facts(model)
    plan = plan_from_facts(facts)
    assert plan.conflicts == ()
    assert facts.intent is not None
    entries = [r.text for r in facts.intent.exclusions.rules]
    for d in plan.modules:
        kind = ModuleKind(d.kind)
        if not kind.quantizable or any(d.module in line for line in limits):
            continue
        q = stock_quantizes(producer=producer, scheme=Scheme(scheme), profile=facts.profile,
                            architecture=facts.profile.architecture, prefix=d.module,
                            kind=kind, entries=entries)
        if kind is ModuleKind.LM_HEAD and producer == "compressed-tensors":
            continue
        assert q == (d.stored != "unquantized"), d.module
    assert fix_in_place(model) == limits  # a second fix changes nothing
    assert compute_fix(facts, plan).changed is False


@pytest.mark.parametrize("family", FAMILIES)
def test_no_entry_touches_quantized_target_modules(family: str, tmp_path: Path) -> None:
    model = ckpt(tmp_path / "m", family, layout="a", num_mtp_layers=2)
    facts = load_facts(model)
    res = compute_fix(facts, plan_from_facts(facts))
    draft_roots = (*(f"{x.checkpoint_root}." for x in facts.names.layers), "mtp.")
    target_modules = {n.rsplit(".", 1)[0] for n in facts.files.weight_names()
                      if not n.startswith(draft_roots)}
    for e in res.added:
        hit = [m for m in target_modules if e in m or fnmatch.fnmatch(m, e)]
        assert hit == [], (e, hit)
