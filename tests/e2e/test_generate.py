"""Greedy generation with MTP speculative decoding: the acceptance rate shows the draft precision.

Each quantized case (``cases.CASES``) against its BF16 original (same float weights):
the plugin's tokens equal the reference's and its acceptance is at least 90 % of the
reference's, for k = 1 and k = 2; stock vLLM (``VLLM_DRAFT_QUANT=off``) either fails or
accepts at most 10 %. The reference itself accepts every draft token and produces the
construction's greedy continuation (``agreeing.py``), and a control whose MTP MLP is
zeroed collapses: the acceptance rate here tells a right draft load from a wrong one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cases
import pytest

RUNS = [(c, k) for c in cases.CASES for k in c.ks]


def _ids(v: Any) -> str:
    return v.key if isinstance(v, cases.Case) else f"k{v}"


REFS = sorted({c.reference for c in cases.CASES})


@pytest.mark.parametrize("k", cases.KS, ids=_ids)
@pytest.mark.parametrize("ref_key", REFS)
def test_reference_accepts_every_draft(generation: dict[str, Any], ref_key: str, k: int) -> None:
    ref = generation[f"{ref_key}/ref/k{k}"]
    assert ref["ok"], ref
    assert ref["tokens"] == cases.expected_tokens(cases.REFERENCES[ref_key])
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
        assert got["error_type"] == case.stock_error, got


@pytest.mark.parametrize("case", cases.CONTROLS, ids=_ids)
def test_control_draft_is_rejected(generation: dict[str, Any], case: cases.Case) -> None:
    got = generation[f"{case.key}/plugin/k1"]
    assert got["ok"], got
    assert got["draft_tokens"] > 0 and cases.acceptance(got) <= 0.1, got


def _rank_slice(full: Any, layout: dict[str, Any], rank: int, world: int) -> Any:
    """The part of the single-process parameter ``full`` that tensor-parallel ``rank``
    holds, as vLLM shards it: column-parallel layers along ``output_dim``, each fused shard
    (q/k/v, gate/up: ``output_sizes``) split on its own; row-parallel ones along
    ``input_dim`` (a bias whole); everything else (norms, plain ``nn.Linear``) whole."""
    import torch

    if layout["parallel"] == "column":
        dim = layout["output_dim"]
        parts = full.split(layout["output_sizes"] or [full.shape[dim]], dim=dim)
        return torch.cat([p.chunk(world, dim=dim)[rank] for p in parts], dim=dim)
    if layout["parallel"] == "row" and full.dim() > 1:
        return full.chunk(world, dim=layout["input_dim"])[rank]
    return full


@pytest.mark.parametrize("case", [c for c in cases.CASES if c.tp == 2], ids=_ids)
def test_tensor_parallel_equals_the_single_process_run(
    generation: dict[str, Any], e2e_root: Path, case: cases.Case
) -> None:
    """Every rank applies the same plan as the single-process run (equal plan digests, from
    each rank's own process) and holds exactly its shard of the BF16 draft weights; the
    tokens and acceptance equal the single-process run of the same checkpoint."""
    import torch

    single = next(
        c
        for c in cases.CASES
        if c.tp == 1 and c.family == case.family and c.writer == case.writer
        and c.kwargs == case.kwargs
    )  # fmt: skip
    one = torch.load(e2e_root / f"{single.key}.probe.pt")
    assert one["<plans>"], "the single-process run made no plan"
    for k in case.ks:
        got, ref = generation[f"{case.key}/plugin/k{k}"], generation[f"{single.key}/plugin/k{k}"]
        assert got["ok"], got
        assert got["tokens"] == ref["tokens"]
        assert (got["draft_tokens"], got["accepted"]) == (ref["draft_tokens"], ref["accepted"])
        assert sorted((r, w) for r, w, _ in got["ranks"]) == [(0, case.tp), (1, case.tp)]
        reports = [torch.load(e2e_root / f"{case.key}.k{k}.rank{r}.pt") for r in range(case.tp)]
        sharded = 0
        for rep in reports:
            assert rep["<plans>"] == one["<plans>"], (rep["rank"], rep["<plans>"])
            assert sorted(rep["<weights>"]) == sorted(one["<weights>"])
            for name, p in rep["<weights>"].items():
                want = _rank_slice(one["<weights>"][name], rep["<layout>"][name],
                                   rep["rank"], case.tp)  # fmt: skip
                assert p.dtype == torch.bfloat16 and torch.equal(p, want), (rep["rank"], name)
                sharded += p.shape != one["<weights>"][name].shape
        # qkv, o, gate_up, down (and the qkv bias) of the MTP layer, on each rank
        assert sharded >= 4 * case.tp, sharded
