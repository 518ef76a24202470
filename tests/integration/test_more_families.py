"""Issue 8: more drafter families and formats load correctly with the plugin.

The 190 cases of ``matrix_more.py`` (GLM-4.5 MoE, Qwen3.5 MoE text-only and
multimodal, MiMo, GLM-5, DeepSeek-V3.2, dense Qwen3.5 and GLM-4.7-Flash with ModelOpt NVFP4/FP8; Step-3.5, Qwen3-Next, DeepSeek-V3 with
compressed-tensors NVFP4/FP8, DeepSeek-native FP8 block and Quark MXFP4), each built
through vLLM's own draft path on the CPU platform, checked like the adapter matrix:

- the load succeeds and every planned draft module is built in its stored format
  (the stored scheme's quant method and weight dtype, or an unquantized method and a
  float weight);
- every parameter of every quantizable planned module equals the checkpoint's bytes
  (``values.py``): GLM's NextN head holds ``shared_head.head``, never ``lm_head``;
- the same checkpoint with ``VLLM_DRAFT_QUANT=off`` shows the stock outcome recorded
  in ``STOCK_OUTCOMES_MORE`` (the failure is real, the switch works);
- the target's layers are the same with the plugin on and off.

Only the cases ``-k`` selects are built (one batch for all of them), so
``pytest tests/integration/test_more_families.py -k glm4_moe`` builds 14 cases, not 190.
Then two targeted tests of the P5 weight-stream fixes (GLM's shadowing ``lm_head``,
Step-3.5's completeness check) on checkpoints shaped to expose them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from built_cases import Built, assert_target_layers_untouched, assert_values_equal, start_cases
from loaded import assert_stock as _assert_stock
from loaded import assert_stored_precision
from matrix_more import (
    CASES,
    STOCK_OUTCOMES_MORE,
    Case,
    case_id,
    engine_args,
    spec_for,
)
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from values import load_checkpoint

from vllm_draft_quant import plan

pytestmark = [pytest.mark.integration, pytest.mark.timeout(5400)]

def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Built]]:
    """Write the selected cases' checkpoints and queue their builds, plugin on and off."""
    return start_cases(session, root, sys.modules[__name__], CASES, case_id,
                       lambda c, path: write_checkpoint(path, spec_for(c)),
                       score_test="test_matrix_score", engine_args=lambda c: engine_args(c[0]))


built = early_fixture(start_built)


IDS = [case_id(c) for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loads_in_stored_precision(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    assert b.plan.conflicts == () or all("config says" in c.message for c in b.plan.conflicts)
    assert_stored_precision(b.plan, b.on)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_equal_checkpoint_bytes(case: Case, built: dict[Case, Built]) -> None:
    assert_values_equal(built[case])


def assert_stock(case: Case, result: DraftResult, ckpt: WrittenCheckpoint) -> None:
    """Stock vLLM's outcome on ``case`` is the recorded one (see matrix_more.py)."""
    stored = {d.module: d.stored for d in plan(ckpt.path).modules}
    _assert_stock(STOCK_OUTCOMES_MORE[case], result, stored, ckpt.stored_format)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_off_switch_shows_stock_outcome(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    assert_stock(case, b.off, b.written)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_target_layers_untouched(case: Case, built: dict[Case, Built]) -> None:
    assert_target_layers_untouched(built[case])


def test_matrix_score(built: dict[Case, Built]) -> None:
    """Every case loads with the plugin; the stock table says how many do without it."""
    loaded = sum(built[c].on.ok for c in CASES)
    stock = {
        o: sum(STOCK_OUTCOMES_MORE[c].outcome == o for c in CASES) for o in ("ok", "loud", "silent")
    }
    assert loaded == len(CASES) == 190
    assert sum(stock.values()) == 190


# ---------------------------------------------------------------- P5, targeted
def _move_tensor_last(ckpt: Path, tensor: str, file: str) -> None:
    """Move ``tensor`` into its own shard ``file``, read after every other shard."""
    from safetensors.torch import load_file, save_file

    index_path = ckpt / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    src = ckpt / index["weight_map"][tensor]
    data = load_file(str(src))
    moved = {tensor: data.pop(tensor)}
    save_file(data, str(src), metadata={"format": "pt"})
    save_file(moved, str(ckpt / file), metadata={"format": "pt"})
    index["weight_map"][tensor] = file
    index_path.write_text(json.dumps(index))


def _drop_module(ckpt: Path, module: str) -> None:
    from safetensors.torch import load_file, save_file

    for f in ckpt.glob("*.safetensors"):
        data = load_file(str(f))
        kept = {n: t for n, t in data.items() if not n.startswith(module + ".")}
        if len(kept) != len(data):
            save_file(kept, str(f), metadata={"format": "pt"})


def test_glm_nextn_head_wins_over_a_later_lm_head(tmp_path: Path) -> None:
    """BF16 NextN head, the target's ``lm_head.weight`` read *after* it (its own last
    shard): stock vLLM loads without error but the draft head silently holds
    ``lm_head``; with the plugin it holds ``model.layers.2.shared_head.head``."""
    # layout b: one wildcard, model.layers.2*, also excludes the head's runtime prefix
    spec = CheckpointSpec("glm4_moe", "fp8", layout="b", sharded=True, mtp_own_shard=True)
    ckpt = write_checkpoint(tmp_path / "m", spec)
    _move_tensor_last(ckpt.path, "lm_head.weight", "model-zz-lm-head.safetensors")
    req = [BuildRequest(ckpt.path)]
    on_, off_ = (
        submit_many(req, plugin=True, workdir=tmp_path / "on"),
        submit_many(req, plugin=True, workdir=tmp_path / "off", env={"VLLM_DRAFT_QUANT": "off"}),
    )
    on, off = on_()[0], off_()[0]
    tensors = load_checkpoint(ckpt.path)
    nextn, lm_head = tensors["model.layers.2.shared_head.head.weight"], tensors["lm_head.weight"]
    key = "model.layers.2.shared_head.head.weight"
    assert off.ok, off.error_text
    stock_head = off.load_dump()[key][: nextn.shape[0]]
    assert stock_head.equal(lm_head) and not stock_head.equal(nextn)  # silently wrong
    assert on.ok, on.error_text
    assert on.load_dump()[key][: nextn.shape[0]].equal(nextn)
    assert "did not pass 1 tensor(s) to the drafter" in Path(on.raw["worker_log"]).read_text()


def test_step3p5_completeness_still_enforced(tmp_path: Path) -> None:
    """The plugin redoes Step-3.5's completeness check instead of dropping it: a
    compressed-tensors checkpoint that lost a draft module still fails, with one
    error naming that module's parameters (stock names a KV-cache placeholder)."""
    spec = CheckpointSpec("step3p5", "nvfp4", "compressed-tensors", layout="d")
    ckpt = write_checkpoint(tmp_path / "m", spec)
    _drop_module(ckpt.path, "model.layers.2.self_attn.o_proj")
    req = [BuildRequest(ckpt.path)]
    on_, off_ = (
        submit_many(req, plugin=True, workdir=tmp_path / "on"),
        submit_many(req, plugin=True, workdir=tmp_path / "off", env={"VLLM_DRAFT_QUANT": "off"}),
    )
    on, off = on_()[0], off_()[0]
    assert not off.ok and "are not in the checkpoint" in off.error_text
    assert not on.ok and on.error_type == "MissingDraftWeightsError", on.error_text
    assert "model.layers.2.mtp_block.self_attn.o_proj" in on.error_text
    assert "zero_point" not in on.error_text
