"""Issue 14: INT4 producers (GPTQ, AWQ, AutoRound, compressed-tensors WNA16) around MTP
drafters load each draft module in its stored precision.

The cases of ``matrix_int4.py`` (Qwen3-Next, Qwen3.5 MoE, dense Qwen3.5, GLM-4.5 MoE,
DeepSeek-V3 x four producers x layouts a/b/c/e/g, plus an INT4 MTP next to a BF16 and an
NVFP4 target), each built through vLLM's own draft path on the CPU platform (INT4 MoE
experts need ``demo/cpu_shims.py`` shim 7), plugin on and off in one batch:

- the load succeeds and every planned module is built by the quant method of its stored
  layout (GPTQ -> ``AutoGPTQ*``, AWQ -> ``AutoAWQ*``, compressed-tensors -> its WNA16
  methods; BF16 -> an unquantized method), packed weights int32; layout e's drafters hold
  both (INT4 MLP, BF16 attention);
- every parameter equals the checkpoint's bytes and shapes (``values.py``), so bits and
  group size are the stored ones; the plan names them (read from the header shapes);
- ``VLLM_DRAFT_QUANT=off`` shows the outcome recorded in ``STOCK_INT4``;
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
from matrix import assert_loud
from matrix_int4 import CASES, PLUGIN_REFUSES, STOCK_INT4, Case, case_id, write_case
from support.harness import early_fixture

from vllm_draft_quant.core.schemes import Scheme, StoredFormat

pytestmark = [pytest.mark.integration, pytest.mark.timeout(5400)]

#: the quant methods that load each stored INT4 layout (class-name prefixes)
INT4_METHODS = {
    StoredFormat.GPTQ_INT4: ("AutoGPTQ", "MoeWNA16"),
    StoredFormat.AWQ_INT4: ("AutoAWQ", "MoeWNA16"),
    StoredFormat.CT_WNA16: ("CompressedTensorsLinearMethod", "CompressedTensorsWNA16"),
}
_PACKED = ("qweight", "weight_packed")


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Built]]:
    """Write the selected cases' checkpoints and queue their builds, plugin on and off."""
    return start_cases(session, root, sys.modules[__name__], CASES, case_id, write_case,
                       score_test="test_int4_score")


built = early_fixture(start_built)
IDS = [case_id(c) for c in CASES]
LOADABLE = [c for c in CASES if c not in PLUGIN_REFUSES]
LOADABLE_IDS = [case_id(c) for c in LOADABLE]


def _packed(m: Any) -> list[Any]:
    return [p for n, p in m.params.items() if n.endswith(_PACKED)]


def _weights(m: Any) -> list[Any]:
    return weights(m.params)


@pytest.mark.parametrize("case", LOADABLE, ids=LOADABLE_IDS)
def test_loads_in_stored_precision(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    assert b.on.ok, b.on.error_text
    assert all("config says" in c.message for c in b.plan.conflicts), b.plan.conflicts
    if case[3] == "e":  # mixed: some draft modules INT4, the others BF16
        schemes = {d.scheme for d in b.plan.modules if d.kind not in ("plain", "fixed")}
        assert {Scheme.INT4, Scheme.UNQUANTIZED} <= schemes, schemes
    for d in b.plan.modules:
        if d.kind in ("plain", "fixed"):
            continue
        m = b.on.modules.get(d.module)
        assert m is not None, f"{d.module} planned but vLLM built no such layer"
        method = m.quant_method or ""
        if d.scheme is Scheme.UNQUANTIZED:
            assert method.startswith("Unquantized"), (d.module, method)
            assert _weights(m) and all(p.dtype == "bfloat16" for p in _weights(m)), d.module
            continue
        assert d.scheme is Scheme.INT4 and d.layout is not None, (d.module, d.scheme)
        group = 64 if case[1].endswith("-g64") else 32  # what the factory wrote
        assert (d.layout.bits, d.layout.group_size) == (4, group), d.layout
        assert f"4-bit, group {group}" in d.reason, d.reason
        assert method.startswith(INT4_METHODS[d.stored]), (d.module, d.stored, method)
        assert _packed(m) and all(p.dtype == "int32" for p in _packed(m)), d.module
    assert b.on.sentinel_modules() == []


@pytest.mark.parametrize("case", LOADABLE, ids=LOADABLE_IDS)
def test_values_equal_checkpoint_bytes(case: Case, built: dict[Case, Built]) -> None:
    assert_values_equal(built[case])


def _built_quantized(m: Any) -> bool:
    return bool(_packed(m)) or any(p.dtype in ("uint8", "float8_e4m3fn") for p in _weights(m))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_off_switch_shows_stock_outcome(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    expected = STOCK_INT4[case]
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


@pytest.mark.parametrize("case", sorted(PLUGIN_REFUSES),
                         ids=[case_id(c) for c in sorted(PLUGIN_REFUSES)])
def test_refused_with_one_clear_error(case: Case, built: dict[Case, Built]) -> None:
    """What the plugin cannot load right is one error naming the tensor (see PLUGIN_REFUSES);
    the old plugin dropped that ``g_idx`` as vLLM's mapper does and loaded silently wrong."""
    b = built[case]
    assert_loud(PLUGIN_REFUSES[case], b.on)
    assert "desc_act false" in b.on.error_text, b.on.error_text


@pytest.mark.parametrize("case", LOADABLE, ids=LOADABLE_IDS)
def test_target_layers_untouched(case: Case, built: dict[Case, Built]) -> None:
    assert_target_layers_untouched(built[case])


def test_int4_score(built: dict[Case, Built]) -> None:
    """Every case loads with the plugin; the stock table says how many do without it."""
    assert [c for c in CASES if not built[c].on.ok] == sorted(PLUGIN_REFUSES, key=CASES.index)
    assert sorted(STOCK_INT4) == sorted(CASES)
