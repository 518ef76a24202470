"""Draft weights from their own checkpoint (issue 9), through vLLM's own draft path.

For every case of ``matrix_separate.CASES`` (a target folder and the speculative config
vLLM is given), built on the CPU platform with the plugin and without it (stock):

- with the plugin the drafter loads, every module the plan names is built in the
  precision the *draft* checkpoint stores it in, and every parameter equals that
  checkpoint's bytes (``values.py``);
- the plan is the draft checkpoint's own: `plan(target, speculative_config=...)` equals
  the plan of the draft folder itself (the target's quant config plays no part), and no
  draft module carries the target's quant config (stock Qwen3-Next/DeepSeek drafters do);
- the target model is built the same with and without the plugin, in its own scheme,
  and the draft build leaves the target's quant config object unchanged;
- ``model`` naming the target's own folder changes nothing: same modules, same bytes as
  leaving ``model`` out;
- stock vLLM shows the outcome recorded in ``matrix_separate.STOCK``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from matrix_separate import CASES, STOCK, Case, Stock, Written, write_case
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from values import load_checkpoint, mismatches

from vllm_draft_quant import Plan, Scheme, plan
from vllm_draft_quant.checkpoint.facts import CheckpointFacts, load_facts, plan_from_facts
from vllm_draft_quant.checkpoint.speculative import draft_source

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

# MoE (MTP) cases first: a worker process creates vLLM's distributed state once, from its
# first case, and a dense first case (Llama) leaves no expert-parallel group for the MoE
# cases after it ("expert parallel group is not initialized").
KEYS = sorted(CASES, key=lambda k: (CASES[k].method != "mtp", k))
SAME_FOLDER = [k for k in KEYS if CASES[k].draft is None]

_METHODS = {
    Scheme.UNQUANTIZED: ("Unquantized",),
    Scheme.NVFP4: ("ModelOptLinearMethod", "ModelOptNvFp4FusedMoE"),
    Scheme.FP8: ("ModelOptLinearMethod", "ModelOptFp8MoEMethod"),
}
_WEIGHT = {Scheme.UNQUANTIZED: "bfloat16", Scheme.NVFP4: "uint8", Scheme.FP8: "float8_e4m3fn"}


@dataclass
class Built:
    case: Case
    target: Written
    draft: Written
    spec: dict[str, Any]
    facts: CheckpointFacts
    plan: Plan
    on: DraftResult
    off: DraftResult
    implicit_on: DraftResult | None = None  # same-folder cases: without "model"
    implicit_off: DraftResult | None = None


def built_wrong(p: Plan, result: DraftResult) -> list[str]:
    """Planned modules vLLM built in another precision than their tensors are stored in."""
    wrong = []
    for d in p.modules:
        if d.kind == "plain":  # a torch nn.Linear: no quant method to observe
            continue
        m = result.modules.get(d.module)
        if m is None:
            wrong.append(f"{d.module} (not built)")
            continue
        weights = [x for n, x in m.params.items() if n.endswith("weight") and "scale" not in n]
        if (
            not m.quant_method
            or not m.quant_method.startswith(_METHODS[d.scheme])
            or not weights
            or any(x.dtype != _WEIGHT[d.scheme] for x in weights)
        ):
            wrong.append(d.module)
    return sorted(wrong)


def value_mismatches(b: Built, result: DraftResult) -> list[str]:
    templates = {m.prefix: list(m.checkpoint_modules) for m in b.facts.names.modules}
    ckpt = {b.facts.names.canonical(k): v for k, v in load_checkpoint(b.draft.path).items()}
    return mismatches(b.plan, result.modules, result.load_dump(), ckpt, templates)


def measured(b: Built, result: DraftResult) -> Stock:
    """What a build shows, in the terms of ``matrix_separate.Stock``."""
    if not result.ok:
        return Stock("loud", result.error_type, result.error_text)
    wrong = built_wrong(b.plan, result)
    if wrong or result.sentinel_modules():
        return Stock("silent", wrong=tuple(wrong))
    return Stock("ok")


def _request(target: Written, spec: dict[str, Any] | None) -> BuildRequest:
    return BuildRequest(target.path, engine_args={"speculative_config": spec} if spec else None)


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[str, Built]]:
    """Write every case's folders and queue its builds, plugin on and off."""
    written = {k: write_case(CASES[k], root / "ckpt") for k in KEYS}
    # (key, explicit?) in build order: every MoE case (with the same-folder cases again
    # without "model") before the dense EAGLE3 ones, see KEYS
    order = [(k, True) for k in KEYS if CASES[k].method == "mtp"]
    order += [(k, False) for k in SAME_FOLDER]
    order += [(k, True) for k in KEYS if CASES[k].method != "mtp"]
    reqs = [
        _request(
            written[k][0],
            written[k][2] if explicit else {"method": "mtp", "num_speculative_tokens": 1},
        )
        for k, explicit in order
    ]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=False, workdir=root / "off")

    def finish() -> dict[str, Built]:
        results = {o: (a, b) for o, a, b in zip(order, on(), off(), strict=True)}
        out: dict[str, Built] = {}
        for k in KEYS:
            target, draft, spec = written[k]
            src = draft_source(target.path, spec)
            facts = load_facts(src.draft_dir, drafter=src.drafter, target_layers=src.target_layers)
            a, b = results[(k, True)]
            out[k] = Built(CASES[k], target, draft, spec, facts, plan_from_facts(facts), a, b)
            if (k, False) in results:
                out[k].implicit_on, out[k].implicit_off = results[(k, False)]
        return out

    return finish


built = early_fixture(start_built)


@pytest.mark.parametrize("key", KEYS)
def test_plugin_loads_draft_in_its_stored_precision(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.on.ok, b.on.error_text
    assert b.plan.modules
    assert built_wrong(b.plan, b.on) == []
    assert b.on.sentinel_modules() == []


@pytest.mark.parametrize("key", KEYS)
def test_plugin_values_equal_draft_checkpoint_bytes(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.on.ok, b.on.error_text
    assert value_mismatches(b, b.on) == []


@pytest.mark.parametrize("key", KEYS)
def test_plan_is_the_draft_checkpoints_own(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    via_target = plan(b.target.path, speculative_config=b.spec)
    assert via_target == b.plan
    if b.case.method == "mtp":  # an MTP folder plans on its own, same answer
        assert plan(b.draft.path) == b.plan
    assert {m.module for m in b.plan.modules} <= set(b.on.modules) | {
        m.module for m in b.plan.modules if m.kind == "plain"
    }
    assert b.on.raw["draft_architecture"] in (b.plan.drafter, *b.facts.profile.architecture_aliases)


@pytest.mark.parametrize("key", KEYS)
def test_target_keeps_its_own_quantization(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.on.ok, b.on.error_text

    def summary(r: DraftResult) -> dict[str, Any]:
        return {
            p: (m.quant_method, {n: x.dtype for n, x in m.params.items()})
            for p, m in r.target_modules.items()
        }

    on = summary(b.on)
    assert on and on == summary(b.off)
    quantized = [p for p, m in b.on.target_modules.items() if m.quantized]
    target_scheme = getattr(b.case.target, "scheme", "bf16")
    if not getattr(b.case.target, "quantized", True):
        target_scheme = "bf16"
    assert bool(quantized) == (target_scheme != "bf16"), quantized
    assert b.on.raw["target_config_after_draft"] == b.on.raw["target_config_before_draft"]


@pytest.mark.parametrize("key", [k for k in KEYS if CASES[k].draft is not None])
def test_draft_never_gets_the_targets_quant_config(key: str, built: dict[str, Built]) -> None:
    """Each quant config on a draft module is the draft folder's own (or one the plugin
    built for a stored scheme, which excludes nothing); a BF16 draft gets none at all."""
    b = built[key]
    assert b.on.ok, b.on.error_text
    configs = b.on.raw["draft_quant_configs"]
    for qc in configs:
        assert qc.get("exclude_modules", []) in ([], b.draft.exclusions), qc
    draft_quantized = any(t.format != "bf16" for t in b.draft.tensors.values())
    if not draft_quantized:
        assert configs == []
    # the bug this guards against: stock Qwen3-Next/DeepSeek drafters carry the target's
    target = b.off.raw.get("target_config_before_draft")
    if b.off.ok and target and b.case.method == "mtp" and "step3p5" not in key:
        assert [q["class"] for q in b.off.raw["draft_quant_configs"]] == [target["class"]]


@pytest.mark.parametrize("key", SAME_FOLDER)
def test_same_folder_changes_nothing(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.implicit_on is not None and b.implicit_off is not None
    assert b.on.ok and b.implicit_on.ok, (b.on.error_text, b.implicit_on.error_text)
    assert b.on.modules == b.implicit_on.modules
    a, c = b.on.load_dump(), b.implicit_on.load_dump()
    assert a.keys() == c.keys()
    import torch

    def raw(t: Any) -> Any:
        return t.detach().contiguous().reshape(-1).view(torch.uint8)

    assert all(a[n].dtype == c[n].dtype and torch.equal(raw(a[n]), raw(c[n])) for n in a)
    assert (b.off.ok, b.off.error_type) == (b.implicit_off.ok, b.implicit_off.error_type)


@pytest.mark.parametrize("key", KEYS)
def test_stock_outcome(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    got = measured(b, b.off)
    expected = STOCK.get(key)
    assert expected is not None, f"no stock outcome recorded for {key}: measured {got}"
    assert got.outcome == expected.outcome, (got, expected)
    if expected.outcome == "loud":
        assert got.error_type == expected.error_type, got
        assert expected.match and got.match and expected.match in got.match, got
    elif expected.outcome == "silent":
        assert got.wrong == expected.wrong, got
    else:
        assert value_mismatches(b, b.off) == []


def test_score(built: dict[str, Built]) -> None:
    """The headline: every case loads right with the plugin; how many stock vLLM gets right."""
    plugin_ok = sum(b.on.ok and not built_wrong(b.plan, b.on) for b in built.values())
    stock = [measured(b, b.off).outcome for b in built.values()]
    assert plugin_ok == len(KEYS)
    assert (stock.count("ok"), stock.count("loud"), stock.count("silent")) == STOCK_SCORE


STOCK_SCORE = tuple(sum(s.outcome == o for s in STOCK.values()) for o in ("ok", "loud", "silent"))
