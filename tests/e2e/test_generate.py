"""Greedy generation with MTP speculative decoding: the acceptance rate shows the draft precision.

Each quantized case (``cases.CASES``) against its BF16 original (same float weights):
the plugin's tokens equal the reference's and its acceptance is at least 90 % of the
reference's, for k = 1 and k = 2; stock vLLM (``VLLM_DRAFT_QUANT=off``) either fails or
accepts at most 10 %. The reference itself accepts every draft token and produces the
construction's greedy continuation (``agreeing.py``), and a control whose MTP MLP is
zeroed collapses: the acceptance rate here tells a right draft load from a wrong one.
"""

from __future__ import annotations

from typing import Any

import agreeing
import cases
import pytest

RUNS = [(c, k) for c in cases.CASES for k in c.ks]


def _ids(v: Any) -> str:
    return v.key if isinstance(v, cases.Case) else f"k{v}"


@pytest.mark.parametrize("k", cases.KS, ids=_ids)
def test_reference_accepts_every_draft(generation: dict[str, Any], k: int) -> None:
    ref = generation[f"mimo-bf16/ref/k{k}"]
    assert ref["ok"], ref
    expected = [agreeing.greedy_continuation(p, cases.MAX_TOKENS) for p in cases.PROMPTS]
    assert ref["tokens"] == expected
    assert ref["draft_tokens"] > 0 and cases.acceptance(ref) == 1.0, ref


@pytest.mark.parametrize(("case", "k"), RUNS, ids=_ids)
def test_plugin_matches_reference(generation: dict[str, Any], case: cases.Case, k: int) -> None:
    ref = generation[f"{case.reference}/ref/k{k}"]
    got = generation[f"{case.key}/plugin/k{k}"]
    assert got["ok"], got
    assert got["tokens"] == ref["tokens"]
    assert cases.acceptance(got) >= 0.9 * cases.acceptance(ref), (got, ref)


@pytest.mark.parametrize("case", [c for c in cases.CASES if c.stock], ids=_ids)
def test_stock_fails_or_collapses(generation: dict[str, Any], case: cases.Case) -> None:
    got = generation[f"{case.key}/stock/k{case.ks[0]}"]
    if got["ok"]:
        assert cases.acceptance(got) <= 0.1, got
    else:
        assert got["error_type"] == "AssertionError", got


@pytest.mark.parametrize("case", cases.CONTROLS, ids=_ids)
def test_control_draft_is_rejected(generation: dict[str, Any], case: cases.Case) -> None:
    got = generation[f"{case.key}/plugin/k1"]
    assert got["ok"], got
    assert got["draft_tokens"] > 0 and cases.acceptance(got) <= 0.1, got


@pytest.mark.parametrize("case", [c for c in cases.CASES if c.tp == 2], ids=_ids)
def test_tensor_parallel_equals_the_single_process_run(
    generation: dict[str, Any], case: cases.Case
) -> None:
    """Every rank applies the same plan and loads its shard of the BF16 draft: tokens and
    acceptance equal the single-process run of the same checkpoint."""
    single = next(c for c in cases.CASES if c.tp == 1 and c.kwargs == case.kwargs)
    for k in case.ks:
        got, one = generation[f"{case.key}/plugin/k{k}"], generation[f"{single.key}/plugin/k{k}"]
        assert got["ok"], got
        assert got["tokens"] == one["tokens"]
        assert (got["draft_tokens"], got["accepted"]) == (one["draft_tokens"], one["accepted"])
