"""The CLI's promises for the families beyond the first three, on real vLLM (CPU).

- ``fix --write`` on each BF16-MTP layout (a, b, c) of GLM-4.5 MoE, Qwen3.5 MoE and MiMo
  (ModelOpt NVFP4 and FP8) and of dense Qwen3.5, GLM-4.7-Flash, GLM-5 and DeepSeek-V3.2
  (``DeepseekV32MTPModel``, built with CPU shim 6's dense attention backend),
  MiMo-V2-Flash (``MiMoV2MTPModel``) and Qwen3.8-Flash-Next (``Qwen4ExpMTP``, built
  without QSA; NVFP4, and FP8 layout a):
  stock vLLM (plugin off) then builds every draft module in its stored precision, or
  ``fix`` names the stock limit that stops it. Layouts stock vLLM gets wrong before the
  fix are built before it too (the failure exists).
- compressed-tensors NVFP4 for GLM (layout a): ``fix`` writes one ``re:`` pattern for the
  BF16 draft layer, and stock vLLM follows it.
- ``fix --speculative-config`` on an EAGLE3 draft whose config does not exclude its BF16
  ``fc`` and ``lm_head``: stock vLLM mis-loads it before and loads it right after.
- ``graft`` for the same families: before, no load; after, stock vLLM (with the
  exclusions graft wrote) and the plugin both load the grafted layers unquantized.

Drafters without a hand profile: ``test_cli_load_learned.py``; families vLLM cannot build
on the CPU (DeepSeek-V4; Qwen4Exp with QSA): ``tests/unit/test_fix_graft_rest.py``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from learned_cases import STOCK as LEARNED_STOCK
from matrix_more import STOCK_OUTCOMES_MORE, engine_args
from support import CheckpointSpec
from support.eagle3 import Eagle3Spec, LlamaTargetSpec, write_eagle3_draft, write_llama_target
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from test_cli_load import (
    check_fix_then_load,
    check_graft_then_load,
    start_fix_then_load,
    start_graft_then_load,
)

from vllm_draft_quant import plan as core_plan
from vllm_draft_quant.cli.main import main

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(3600)]

FAMILIES = ("glm4_moe", "qwen3_5_moe", "mimo")
#: issue 17: dense Qwen3.5, GLM-4.7-Flash, GLM-5 and DeepSeek-V3.2 (GLM-5's drafter under
#: its other target), NVFP4 only: their FP8 stock outcomes (BF16 data silently in FP8
#: parameters, matrix_more.py) are the ones the FP8 rows above already hold fix to
#: and MiMo-V2-Flash (``MiMoV2MTPModel``) and Qwen3.8-Flash-Next (``Qwen4ExpMTP``: vLLM
#: renumbers its checkpoint-named exclusions itself; stock outcomes: ``learned_cases.py``)
REST = ("qwen3_5", "glm4_moe_lite", "glm5", "deepseek_v32", "mimo_v2", "qwen4_exp")
CASES = [(f, "modelopt", s, lay) for f in FAMILIES for s in ("nvfp4", "fp8") for lay in "abc"]
CASES += [("glm4_moe", "compressed-tensors", "nvfp4", "a")]
CASES += [(f, "modelopt", "nvfp4", lay) for f in REST for lay in "abc"]
#: Qwen4Exp's FP8 a: stock loads BF16 data into FP8 parameters (learned_cases.py), and the
#: exclusions fix writes pass through vLLM's own renumbering (shifts_layer_numbers)
CASES += [("qwen4_exp", "modelopt", "fp8", "a")]
GRAFTED = FAMILIES + REST


#: families built without their target: the drafter parses the draft checkpoint's own
#: quant config (get_draft_quant_config), so the target changes nothing it builds
DRAFT_ONLY = {"qwen4_exp"}


def _request(path: Path, family: str) -> BuildRequest:
    return BuildRequest(path, dump=False, mode="draft" if family in DRAFT_ONLY else "target+draft",
                        engine_args=engine_args(family) or None)


def _fails_on_stock(case: tuple[str, ...]) -> bool:
    stock = STOCK_OUTCOMES_MORE.get(case)
    if stock is None and case[1] == "modelopt":  # a family measured in learned_cases.py
        stock = LEARNED_STOCK.get((case[0], *case[2:]))
    return stock is not None and stock.outcome != "ok"


def _selected(session: pytest.Session, param: str, every: list[Any]) -> list[Any]:
    """The values of ``param`` this session's selected tests of this module need
    (``-k mimo_v2`` builds MiMo-V2's cases only)."""
    wanted = {getattr(getattr(item, "callspec", None), "params", {}).get(param)
              for item in session.items
              if getattr(item, "module", None) is sys.modules[__name__]}
    return [c for c in every if c in wanted]


def start_fixed(session: pytest.Session, root: Path) -> Callable[[], dict[Any, Any]]:
    return start_fix_then_load(
        root, _selected(session, "case", CASES),
        spec=lambda case: CheckpointSpec(case[0], case[2], producer=case[1],  # type: ignore[arg-type]
                                         layout=case[3]),  # type: ignore[arg-type]
        fails_on_stock=_fails_on_stock,
        request=lambda path, case: _request(path, case[0]),
        fix_codes=(0, 1))


fixed = early_fixture(start_fixed)


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_fix_then_stock_load(case: tuple[str, ...], fixed: dict[Any, Any]) -> None:
    if case[0] in REST:  # every all-BF16 layout: fix makes stock vLLM load it
        assert fixed[case][2] == [], fixed[case][2]
        assert (fixed[case][3] is not None) == _fails_on_stock(case)
    check_fix_then_load(fixed[case])
    if case[1] == "compressed-tensors":
        after = fixed[case][1]
        cfg = json.loads((after / "config.json").read_text())
        added = [e for e in cfg["quantization_config"]["ignore"] if e.startswith("re:")]
        assert added == [r"re:model\.layers\.2\."], cfg["quantization_config"]["ignore"]


# ------------------------------------------------------------------------------ EAGLE3
def _strip_exclusions(draft: Path) -> None:
    for name in ("config.json", "hf_quant_config.json"):
        path = draft / name
        if not path.exists():
            continue
        obj = json.loads(path.read_text())
        if isinstance(obj.get("quantization_config"), dict):
            obj["quantization_config"]["ignore"] = []
        if isinstance(obj.get("quantization"), dict):
            obj["quantization"]["exclude_modules"] = []
        path.write_text(json.dumps(obj, indent=2))


def start_eagle(session: pytest.Session, root: Path) -> Callable[[], dict[str, Any]]:
    target = write_llama_target(root / "llama", LlamaTargetSpec("bf16")).path
    out: dict[str, Any] = {"target": target}
    requests = []
    for tag in ("before", "after"):
        draft = write_eagle3_draft(root / f"eagle3-{tag}", Eagle3Spec(attn="fp8", mlp="fp8")).path
        _strip_exclusions(draft)
        spec = {"method": "eagle3", "model": str(draft), "num_speculative_tokens": 1}
        if tag == "after":
            assert main(["fix", str(target), "--speculative-config", json.dumps(spec),
                         "--write"]) == 0
        out[tag] = (draft, spec)
        requests.append(BuildRequest(target, dump=False, engine_args={"speculative_config": spec}))
    off = submit_many(requests, plugin=False, workdir=root / "off")

    def finish() -> dict[str, Any]:
        out["results"] = off()
        return out

    return finish


eagle = early_fixture(start_eagle)


def _eagle_wrong(target: Path, spec: dict[str, Any], result: DraftResult) -> list[str]:
    if not result.ok:
        return [result.error_text]
    p = core_plan(target, speculative_config=spec)
    bad = [f"{d.module}: loaded {'quantized' if result.modules[d.module].quantized else 'unquantized'}"
           f", stored {d.stored}" for d in p.modules
           if d.module in result.modules and d.kind != "plain"
           and result.modules[d.module].quantized != (d.stored != "unquantized")]
    return bad + [f"{m}: scale left at -3.4e38" for m in result.sentinel_modules()]


def test_fix_speculative_config_eagle3(eagle: dict[str, Any]) -> None:
    r_before, r_after = eagle["results"]
    assert _eagle_wrong(eagle["target"], eagle["before"][1], r_before) != [], \
        "stock vLLM mis-loads the draft whose config does not exclude fc/lm_head"
    assert _eagle_wrong(eagle["target"], eagle["after"][1], r_after) == []


# ------------------------------------------------------------------------------- graft
def start_grafted(session: pytest.Session, root: Path) -> Callable[[], dict[str, Any]]:
    return start_graft_then_load(root, _selected(session, "family", list(GRAFTED)),
                                 request=_request)


grafted = early_fixture(start_grafted)


@pytest.mark.parametrize("family", GRAFTED)
def test_graft_then_load(family: str, grafted: dict[str, Any]) -> None:
    check_graft_then_load(grafted[family])
