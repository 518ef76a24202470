"""Issue 14: per-layer producers around MTP drafters load each draft module in its stored
precision: ModelOpt ``MIXED_PRECISION`` (block-FP8 MTP experts included), a Quark
``layer_quant_config``, and GPTQ exports served with ``--quantization moe_wna16``.

The four cases of ``matrix_per_layer.py``, built through vLLM's own draft path on the CPU
platform (the build service: one batch, plugin on and off), checked like the INT4 matrix:

- the load succeeds and every planned module is built by a quant method of its stored
  scheme, weights in its dtype (packed INT4: int32);
- every parameter equals the checkpoint's bytes and shapes (``values.py``);
- ``VLLM_DRAFT_QUANT=off`` shows the outcome recorded in ``STOCK_PER_LAYER``;
- the target's layers are the same with the plugin on and off.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from built_cases import (
    Built,
    assert_target_layers_untouched,
    assert_values_equal,
    start_cases,
    weights,
)
from matrix import SCHEME_METHODS, SCHEME_WEIGHT_DTYPE, assert_loud
from matrix_per_layer import CASES, STOCK_PER_LAYER, Case, case_id, engine_args, write_case
from support.harness import early_fixture

from vllm_draft_quant.core.schemes import Scheme, StoredFormat

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

METHODS = {**SCHEME_METHODS, Scheme.INT4: ("AutoGPTQ", "MoeWNA16"),
           Scheme.FP8_BLOCK: (*SCHEME_METHODS[Scheme.FP8_BLOCK], "ModelOptLinearMethod")}
DTYPES = {**SCHEME_WEIGHT_DTYPE, Scheme.INT4: "int32"}
_WEIGHTS = ("weight", "qweight")


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Built]]:
    """Write the selected cases' checkpoints and queue their builds, plugin on and off."""
    return start_cases(session, root, sys.modules[__name__], CASES, case_id, write_case,
                       score_test="test_per_layer_score", engine_args=engine_args)


built = early_fixture(start_built)
IDS = [case_id(c) for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loads_in_stored_precision(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    assert b.on.ok, b.on.error_text
    assert all("config says" in c.message for c in b.plan.conflicts), b.plan.conflicts
    for d in b.plan.modules:
        if d.kind in ("plain", "fixed"):
            continue
        m = b.on.modules.get(d.module)
        assert m is not None, f"{d.module} planned but vLLM built no such layer"
        assert (m.quant_method or "").startswith(METHODS[d.scheme]), (d.module, d.scheme,
                                                                      m.quant_method)
        w = weights(m.params, _WEIGHTS)
        assert w and all(p.dtype == DTYPES[d.scheme] for p in w), (
            d.module, d.scheme, {n: p.dtype for n, p in m.params.items()})
    assert b.on.sentinel_modules() == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_equal_checkpoint_bytes(case: Case, built: dict[Case, Built]) -> None:
    assert_values_equal(built[case])


def _built_quantized(m: Any) -> bool:
    return any(p.dtype in ("uint8", "float8_e4m3fn", "int32") for p in weights(m.params, _WEIGHTS))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_off_switch_shows_stock_outcome(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    expected = STOCK_PER_LAYER[case]
    if expected.outcome == "loud":
        assert_loud(expected, b.off)
        return
    assert b.off.ok, b.off.error_text
    stored = {d.module: d.stored for d in b.plan.modules}
    wrong = {prefix for prefix, _ in expected.wrong}
    for prefix, m in b.off.modules.items():
        if prefix in stored and stored[prefix] is not StoredFormat.UNKNOWN:
            right = _built_quantized(m) == (stored[prefix] is not StoredFormat.UNQUANTIZED)
            assert right != (prefix in wrong), (prefix, stored[prefix], m.quant_method)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_target_layers_untouched(case: Case, built: dict[Case, Built]) -> None:
    assert_target_layers_untouched(built[case])


def test_per_layer_score(built: dict[Case, Built]) -> None:
    """Every case loads with the plugin; the stock table says how many do without it."""
    assert [c for c in CASES if not built[c].on.ok] == []
    assert sorted(STOCK_PER_LAYER) == sorted(CASES)
