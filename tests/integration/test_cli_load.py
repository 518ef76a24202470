"""The CLI's promises, checked by building real vLLM drafters on the CPU.

- ``fix --write``, then stock vLLM (plugin off) builds every draft module in its stored
  precision, on every layout `fix` does not report as a stock limitation; the layouts
  it reports really fail. Each case also builds the checkpoint *before* the fix, so a
  case that stock vLLM already loads correctly proves nothing and is noted as such.
- ``graft`` into a target without draft weights, then a load succeeds with the plugin
  off (the exclusions are fix's) and on, for the three families; before the graft the
  load fails.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from matrix import STOCK_OUTCOMES
from support import CheckpointSpec, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from support.learning import start_learning

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.cli.main import main
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.repair.fixer import compute_fix

# ~80 drafter builds in two module fixtures: minutes, not seconds.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
# compressed-tensors FP8: the factory's target MoE fails on stock vLLM before any draft
# layer loads (w1/w3 input scales differ), so only NVFP4 is checked for that producer.
CASES = [(f, "modelopt", s, lay) for f in FAMILIES for s in ("nvfp4", "fp8") for lay in "abcdefg"]
CASES += [
    (f, "compressed-tensors", "nvfp4", lay)
    for f in ("qwen3_next", "deepseek_v3")
    for lay in "abcdefg"
]
ALL_BF16 = "abc"
# Hand-written exclusions: only one shard of a fused module excluded (stock vLLM raises
# "some but not all shards"); fix adds the fused runtime name.
EXTRA = {
    ("qwen3_next", "modelopt", "nvfp4", "a-partial"): ("mtp.layers.0.self_attn.q_proj",),
    ("deepseek_v3", "modelopt", "fp8", "a-partial"): ("model.layers.2.self_attn.q_a_proj",),
}
CASES += sorted(EXTRA)


def correct(result: DraftResult, model: Path, profile: DrafterProfile | None = None) -> list[str]:
    """Why ``result`` is not a correct load of ``model``'s drafter ([] if it is);
    ``profile``: the mapping learned from vLLM for a drafter without a hand profile."""
    if not result.ok:
        return [result.error_text]
    stored = {m.module: m.stored for m in core_plan(model, profile=profile).modules}
    bad = [
        f"{p}: loaded {'quantized' if m.quantized else 'unquantized'}, stored {stored[p]}"
        for p, m in result.modules.items()
        if p in stored and m.quantized != (stored[p] != "unquantized")
    ]
    return bad + [f"{p}: scale left at -3.4e38" for p in result.sentinel_modules()]


def _fails_on_stock(case: tuple[str, ...]) -> bool:
    """FINDINGS.md: stock vLLM mis-loads this ModelOpt case before any fix."""
    family, producer, scheme, layout = case
    if case in EXTRA:
        return True
    return producer == "modelopt" and STOCK_OUTCOMES[(family, scheme, layout)].outcome != "ok"


#: one fix case: (family, producer, scheme, layout)
Case = tuple[str, ...]


def start_fix_then_load(
    root: Path,
    cases: Sequence[Case],
    *,
    spec: Callable[[Case], CheckpointSpec],
    fails_on_stock: Callable[[Case], bool],
    request: Callable[[Path, Case], BuildRequest],
    fix_codes: tuple[int, ...] = (0,),
    learn: bool = False,
) -> Callable[[], dict[Case, Any]]:
    """Per case: write the checkpoint ``spec(case)`` (before), copy it and run ``fix
    --write`` on the copy (after; its exit code one of ``fix_codes``), and queue stock
    vLLM (plugin off) builds of the copy and, where ``fails_on_stock(case)``, of the
    original (to prove the failure exists without the fix). With ``learn`` (drafters
    without a hand profile) the build service learns each original's mapping first and
    ``fix --learn`` uses it; the fixes then run when the returned function is called. That
    function waits for the builds: ``{case: (before, after, stock limits, result before or
    None, result after, learned profile or None)}``, what `check_fix_then_load` takes."""
    paths = {}
    for case in cases:
        before = write_checkpoint(root / ("-".join(case) + "-before"), spec(case)).path
        paths[case] = (before, root / ("-".join(case) + "-after"))
        shutil.copytree(before, paths[case][1])
    # learned on the original, served to fix --learn for the copy it rewrites
    learned = start_learning(*map(list, zip(*paths.values(), strict=True))) if learn else None

    def fix_and_build(profiles: Sequence[DrafterProfile | None]) -> Callable[[], dict[Case, Any]]:
        requests, meta, slots = [], {}, {}
        for case, profile in zip(cases, profiles, strict=True):
            before, after = paths[case]
            assert (
                main(["fix", str(after), "--write", *(["--learn"] if learn else [])]) in fix_codes
            )
            facts = load_facts(after, profile=profile)
            limits = compute_fix(facts, plan_from_facts(facts)).stock_limits
            meta[case] = (before, after, limits)
            if fails_on_stock(case):
                slots[(case, "before")] = len(requests)
                requests.append(request(before, case))
            slots[(case, "after")] = len(requests)
            requests.append(request(after, case))
        submitted = submit_many(requests, plugin=False, workdir=root / "work")

        def finish() -> dict[Case, Any]:
            results = submitted()
            return {
                case: (
                    *meta[case],
                    results[slots[(case, "before")]] if (case, "before") in slots else None,
                    results[slots[(case, "after")]],
                    profile,
                )
                for case, profile in zip(cases, profiles, strict=True)
            }

        return finish

    if learned is None:
        return fix_and_build([None] * len(cases))
    return lambda: fix_and_build(learned())()


def check_fix_then_load(entry: tuple[Any, ...]) -> None:
    """After ``fix --write`` stock vLLM loads the drafter correctly, unless fix named a
    stock limit (then it really does not); a case built before the fix fails there."""
    before, after, limits, r_before, r_after, profile = entry
    if r_before is not None:
        assert correct(r_before, before, profile) != [], "the failure exists without the fix"
    problems = correct(r_after, after, profile)
    if limits:
        assert problems, f"fix reported {limits} but stock vLLM loaded it correctly"
    else:
        assert problems == [], problems


def start_fixed(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Any]]:
    """Per case: (before, after, stock limits, result before or None, result after)."""
    return start_fix_then_load(
        root,
        CASES,
        spec=lambda case: CheckpointSpec(
            case[0],
            case[2],  # type: ignore[arg-type]
            producer=case[1],  # type: ignore[arg-type]
            layout=case[3][0],  # type: ignore[arg-type]
            exclusions=EXTRA.get(case),
        ),
        fails_on_stock=_fails_on_stock,
        request=lambda path, _: BuildRequest(path, dump=False),
    )


fixed = early_fixture(start_fixed)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_fix_then_stock_load(case: tuple[str, ...], fixed: dict[tuple[str, ...], Any]) -> None:
    check_fix_then_load(fixed[case])


@pytest.mark.parametrize("layout", ALL_BF16)
@pytest.mark.parametrize("family", FAMILIES)
def test_all_bf16_layouts_fixed(
    family: str, layout: str, fixed: dict[tuple[str, ...], Any]
) -> None:
    """The acceptance: every all-BF16-MTP layout of the three families loads on stock vLLM."""
    for scheme in ("nvfp4", "fp8"):
        _, after, limits, _, r_after, _ = fixed[(family, "modelopt", scheme, layout)]
        assert limits == []
        assert correct(r_after, after) == []


def start_graft_then_load(
    root: Path,
    families: Sequence[str],
    *,
    request: Callable[[Path, str], BuildRequest],
    learn: bool = False,
) -> Callable[[], dict[str, Any]]:
    """Per family: write an NVFP4 target without draft weights (before) and a layout-a
    source, ``graft`` the source's draft layers into a copy of the target (after), and
    queue stock builds of both and a plugin build of the copy. With ``learn`` the build
    service learns each source's mapping first and ``graft --learn`` uses it (the grafts
    then run when the returned function is called). That function waits for the builds:
    ``{family: (before, after, stock before, stock after, plugin after, learned profile
    or None)}``, what `check_graft_then_load` takes."""
    paths = {}
    for family in families:
        spec = CheckpointSpec(family, "nvfp4", layout="a")  # type: ignore[arg-type]
        source = write_checkpoint(root / f"{family}-src", spec).path
        before = write_checkpoint(
            root / f"{family}-before", replace(spec, with_mtp=False, sharded=True)
        ).path
        paths[family] = (source, before, root / f"{family}-after")
        shutil.copytree(before, paths[family][2])
    learned = start_learning([s for s, _, _ in paths.values()]) if learn else None

    def graft_and_build(profiles: Sequence[DrafterProfile | None]) -> Callable[[], dict[str, Any]]:
        requests = []
        for family in families:
            source, before, after = paths[family]
            args = ["graft", str(after), "--from", str(source), *(["--learn"] if learn else [])]
            assert main(args) == 0
            requests += [request(before, family), request(after, family)]
        off = submit_many(requests, plugin=False, workdir=root / "off")
        on = submit_many(requests[1::2], plugin=True, workdir=root / "on")

        def finish() -> dict[str, Any]:
            r_off, r_on = off(), on()
            return {
                family: [*paths[family][1:], r_off[2 * i], r_off[2 * i + 1], r_on[i], profiles[i]]
                for i, family in enumerate(families)
            }

        return finish

    if learned is None:
        return graft_and_build([None] * len(families))
    return lambda: graft_and_build(learned())()


def check_graft_then_load(entry: Sequence[Any]) -> None:
    """Before the graft no load; after it stock vLLM (with the exclusions graft wrote)
    and the plugin both build every grafted module unquantized, as stored."""
    _, after, r_before, r_off, r_on, profile = entry
    assert not r_before.ok, "a target without draft weights should not load"
    planned = core_plan(after, profile=profile)
    assert planned.conflicts == ()
    assert correct(r_off, after, profile) == [], "stock vLLM, with the exclusions graft wrote"
    assert correct(r_on, after, profile) == [], "with the plugin"
    modules = {d.module for d in planned.modules}
    assert r_on.modules and all(not m.quantized for p, m in r_on.modules.items() if p in modules)


def start_grafted(session: pytest.Session, root: Path) -> Callable[[], dict[str, Any]]:
    """Per family: (before, after, stock before, stock after, plugin after)."""
    return start_graft_then_load(
        root, FAMILIES, request=lambda path, _: BuildRequest(path, dump=False)
    )


grafted = early_fixture(start_grafted)


@pytest.mark.parametrize("family", FAMILIES)
def test_graft_then_load(family: str, grafted: dict[str, Any]) -> None:
    check_graft_then_load(grafted[family])
