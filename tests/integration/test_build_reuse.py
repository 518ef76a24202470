"""What a build worker keeps between cases changes no result.

A shared worker (``vllm_draft_quant/demo/worker.py``) keeps the world-size-1
model-parallel groups from one case to the next while what they are made from is the
same (``_groups_key``: whether the model has experts, the parallel sizes), and freezes
the heap after each case. Here one worker builds a sequence of cases, plugin on and off
interleaved, MoE and dense targets, each first as the previous case left the worker and
then again with everything made afresh (``tests/support/pool_worker.py:fresh_and_reused``);
the raw results must be equal. A kept group made for another model (e.g. without the
expert-parallel group a MoE model needs) would fail the MoE build or change its modules.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from support import CheckpointSpec, write_checkpoint
from support.harness import call_in_worker, early_fixture, run_aside

pytestmark = pytest.mark.integration

#: (name, spec, engine args, plugin on?, groups kept?) in build order
SEQUENCE: list[tuple[str, CheckpointSpec, dict[str, Any], bool, bool]] = [
    # the first build of the call makes its groups
    ("deepseek-nvfp4-b-on", CheckpointSpec("deepseek_v3", "nvfp4", layout="b"), {}, True, False),
    ("qwen3_next-fp8-a-off", CheckpointSpec("qwen3_next", "fp8", layout="a"), {}, False, True),
    ("step3p5-nvfp4-a-on", CheckpointSpec("step3p5", "nvfp4", layout="a"), {}, True, True),
    # a dense target: groups made again (no expert-parallel group), and again after it
    (
        "mimo-nvfp4-a-on",
        CheckpointSpec("mimo", "nvfp4", layout="a"),
        {"trust_remote_code": True},
        True,
        False,
    ),
    ("deepseek-fp8-c-off", CheckpointSpec("deepseek_v3", "fp8", layout="c"), {}, False, False),
    ("deepseek-fp8-c-on", CheckpointSpec("deepseek_v3", "fp8", layout="c"), {}, True, True),
]


def start_pairs(session: pytest.Session, root: Path) -> Callable[[], Future[Any]]:
    """Write the checkpoints and run the sequence on one build worker, beside the tests."""
    cases = []
    for name, spec, engine_args, on, _ in SEQUENCE:
        folder = write_checkpoint(root / name.rsplit("-", 1)[0], spec).path
        cases.append(
            {
                "model_dir": str(folder),
                "mode": "target+draft",
                "dump_path": None,
                "engine_args": engine_args,
                "env": {"VLLM_DRAFT_QUANT": None if on else "off"},
            }
        )
    run = run_aside(call_in_worker, "__main__:fresh_and_reused", cases)
    return lambda: run


pairs = early_fixture(start_pairs)


@pytest.mark.parametrize("index", range(len(SEQUENCE)), ids=[s[0] for s in SEQUENCE])
def test_reused_worker_state_builds_as_fresh(index: int, pairs: Future[Any]) -> None:
    value, _ = pairs.result()
    pair = value[index]
    reused, fresh = pair["reused"], pair["fresh"]
    kept, made = reused.pop("reused"), fresh.pop("reused")
    assert reused == fresh
    assert (kept, made) == ({"groups": SEQUENCE[index][4]}, {"groups": False})
    assert reused["draft_architecture"] and reused["target_modules"]
    if SEQUENCE[index][3]:  # plugin on: every one of these loads
        assert reused["ok"], reused["error_message"]
