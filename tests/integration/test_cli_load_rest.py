"""The CLI's promises for the rest of the families the build service builds on the CPU.

Dense Qwen3.5 (``Qwen3_5MTP``), GLM-4.7-Flash (``Glm4MoeLiteMTPModel``) and the GLM-5 /
DeepSeek-V3.2 drafter (``DeepseekV32MTPModel``, both targets; built with CPU shim 6's
dense attention backend), ModelOpt NVFP4, the all-BF16-MTP layouts a, b and c:

- ``fix --write``, then stock vLLM (plugin off) builds every draft module in its stored
  precision (or ``fix`` names the stock limit that stops it); the layouts stock vLLM
  gets wrong before the fix (``STOCK_OUTCOMES_MORE``) are built before it too;
- ``graft`` into a target without draft weights: before, no load; after, stock vLLM
  (with the exclusions graft wrote) and the plugin load the grafted layers unquantized.

FP8 is left out: its stock outcomes for these drafters (BF16 data silently in FP8
parameters, ``matrix_more.py``) are the ones GLM-4.5's and Qwen3.5 MoE's FP8 rows in
``test_cli_load_more.py`` already hold fix to, through the same matcher model.
Families vLLM cannot build on the CPU (DeepSeek-V4, Qwen4Exp, MiMo-V2, which the
factory cannot write) are held to their profiles in ``tests/unit/test_fix_graft_rest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matrix_more import STOCK_OUTCOMES_MORE, engine_args, spec_for
from support.harness import BuildRequest, early_fixture
from test_cli_load import (
    check_fix_then_load,
    check_graft_then_load,
    start_fix_then_load,
    start_graft_then_load,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

FAMILIES = ("qwen3_5", "glm4_moe_lite", "glm5", "deepseek_v32")
CASES = [(f, "modelopt", "nvfp4", lay) for f in FAMILIES for lay in "abc"]


def _request(path: Path, family: str) -> BuildRequest:
    return BuildRequest(path, dump=False, engine_args=engine_args(family) or None)


def start_fixed(session: pytest.Session, root: Path) -> Callable[[], dict[Any, Any]]:
    return start_fix_then_load(
        root,
        CASES,
        spec=lambda case: spec_for(case),  # type: ignore[arg-type]
        fails_on_stock=lambda case: STOCK_OUTCOMES_MORE[case].outcome != "ok",  # type: ignore[index]
        request=lambda path, case: _request(path, case[0]),
    )


fixed = early_fixture(start_fixed)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_fix_then_stock_load(case: tuple[str, ...], fixed: dict[Any, Any]) -> None:
    _, _, limits, r_before, _ = fixed[case]
    assert limits == [], limits  # every all-BF16 layout: fix makes stock vLLM load it
    assert (r_before is not None) == (STOCK_OUTCOMES_MORE[case].outcome != "ok")  # type: ignore[index]
    check_fix_then_load(fixed[case])


def start_grafted(session: pytest.Session, root: Path) -> Callable[[], dict[str, Any]]:
    return start_graft_then_load(root, FAMILIES, request=_request)


grafted = early_fixture(start_grafted)


@pytest.mark.parametrize("family", FAMILIES)
def test_graft_then_load(family: str, grafted: dict[str, Any]) -> None:
    check_graft_then_load(grafted[family])
