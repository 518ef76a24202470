"""``fix --learn`` and ``graft --learn`` on real vLLM (CPU) for drafters without a hand
profile (``learned_cases.py``: ErnieMTP, ExaoneMoeMTP, GlmOcrMTP, LongCatFlashMTP,
HYV3MTP, HYV4MTP; their ``like`` subclasses share the mapping), ModelOpt NVFP4, the
all-BF16-MTP layouts a, b and c, as ``test_cli_load_more.py`` checks the profiled
families. Not here: the learned rows whose build needs extra engine arguments
(OpenPangu: ``trust_remote_code``; Bailing V2.5/V3 and Nemotron-H: a Mamba block size),
because ``fix --learn`` / ``graft --learn`` have no option to pass them to the learner:

- ``fix --write --learn``, then stock vLLM (plugin off) builds every draft module in its
  stored precision, or ``fix`` names the stock limit that stops it; the layouts stock
  vLLM gets wrong before the fix (``learned_cases.STOCK``) are built before it too;
- ``graft --learn`` into a target without draft weights: before, no load; after, stock
  vLLM (with the exclusions graft wrote) and the plugin load the grafted tensors
  unquantized.

The mapping is learned by the build service's workers (``support.learning.
start_learning``), which the CLI's ``--learn`` door is given for these folders; the
door's own subprocess is tested in ``test_learned_drafters.py``. HY-V3's NextN head is
built with an empty prefix that no exclusion can name: ``fix`` must say so (a stock
limit) and stock vLLM must still fail; it has no graft case (the plugin cannot load that
head either, ``learned_cases.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from learned_cases import STOCK, by_family
from support import CheckpointSpec
from support.harness import BuildRequest, early_fixture
from test_cli_load import (
    check_fix_then_load,
    check_graft_then_load,
    start_fix_then_load,
    start_graft_then_load,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

# ------------------------------------------------------------- drafters without a profile
LEARNED = ("ernie4_5_moe", "exaone_moe", "glm_ocr", "longcat_flash", "hy_v3", "hy_v4")
LEARNED_CASES = [(f, "modelopt", "nvfp4", lay) for f in LEARNED for lay in "abc"]


def _learned_request(path: Path, family: str) -> BuildRequest:
    row = by_family(family)
    return BuildRequest(path, row.mode, dump=False,  # type: ignore[arg-type]
                        engine_args=dict(row.engine_args) if row.engine_args else None)


def start_fixed_learned(session: pytest.Session, root: Path) -> Callable[[], dict[Any, Any]]:
    return start_fix_then_load(
        root,
        LEARNED_CASES,
        spec=lambda case: CheckpointSpec(case[0], "nvfp4", layout=case[3]),  # type: ignore[arg-type]
        fails_on_stock=lambda case: STOCK[(case[0], "nvfp4", case[3])].outcome != "ok",
        request=lambda path, case: _learned_request(path, case[0]),
        learn=True,
    )


fixed_learned = early_fixture(start_fixed_learned)


@pytest.mark.parametrize("case", LEARNED_CASES, ids=["-".join(c) for c in LEARNED_CASES])
def test_fix_learn_then_stock_load(case: tuple[str, ...], fixed_learned: dict[Any, Any]) -> None:
    limits = fixed_learned[case][2]
    if case[0] == "hy_v3":
        assert any("empty prefix" in line for line in limits), limits
    else:
        assert limits == [], limits
    check_fix_then_load(fixed_learned[case])


LEARNED_GRAFT = tuple(f for f in LEARNED if f != "hy_v3")


def start_grafted_learned(session: pytest.Session, root: Path) -> Callable[[], dict[str, Any]]:
    return start_graft_then_load(root, LEARNED_GRAFT, request=_learned_request, learn=True)


grafted_learned = early_fixture(start_grafted_learned)


@pytest.mark.parametrize("family", LEARNED_GRAFT)
def test_graft_learn_then_load(family: str, grafted_learned: dict[str, Any]) -> None:
    check_graft_then_load(grafted_learned[family])
