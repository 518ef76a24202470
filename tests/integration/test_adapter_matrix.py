"""The fix: the 42 FINDINGS.md cases (plus extras) load correctly with the plugin.

For each case, built through vLLM's own draft path on the CPU platform:

- the load succeeds and every planned drafter module is built in its stored format
  (unquantized method and a float weight where the tensors are BF16, the stored
  scheme's method and dtypes where they are quantized);
- every parameter equals the checkpoint's bytes (``values.py``);
- the same checkpoint with ``VLLM_DRAFT_QUANT=off`` still shows the stock outcome of
  ``matrix.STOCK_OUTCOMES`` (the bug is real, the switch works);
- the target model's layers get the same quant methods with the plugin on and off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from matrix import SCHEME_METHODS, SCHEME_WEIGHT_DTYPE, STOCK_OUTCOMES, Case, spec_for
from support import CheckpointSpec, MtpFormats, WrittenCheckpoint, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from test_stock_repro import assert_outcome
from values import load_checkpoint, mismatches

from vllm_draft_quant import Plan, plan
from vllm_draft_quant.checkpoint.facts import load_facts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

CASES = sorted(STOCK_OUTCOMES)
EXTRAS: dict[str, CheckpointSpec] = {
    # three MTP layers, each in another precision mix
    "step3p5-nvfp4-3mtp-mixed": CheckpointSpec(
        "step3p5",
        "nvfp4",
        num_mtp_layers=3,
        layout=(
            MtpFormats("bf16", "bf16", "bf16"),
            MtpFormats("nvfp4", "bf16", "bf16"),
            MtpFormats("nvfp4", "nvfp4", "nvfp4"),
        ),
        exclusions="none",
    ),
    # a BF16 MTP shard grafted into a sharded NVFP4 export
    "step3p5-nvfp4-graft-shard": CheckpointSpec(
        "step3p5", "nvfp4", layout="a", sharded=True, mtp_own_shard=True
    ),
    "qwen3_next-fp8-graft-shard": CheckpointSpec(
        "qwen3_next", "fp8", layout="a", sharded=True, mtp_own_shard=True
    ),
    "deepseek_v3-nvfp4-graft-shard": CheckpointSpec(
        "deepseek_v3", "nvfp4", layout="a", sharded=True, mtp_own_shard=True
    ),
}
IDS = ["-".join(c) for c in CASES] + sorted(EXTRAS)


@dataclass
class Built:
    ckpt: WrittenCheckpoint
    plan: Plan
    on: DraftResult
    off: DraftResult


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[str, Built]]:
    """Write every case's checkpoint and queue its builds, plugin on and off."""
    specs = {"-".join(c): spec_for(c) for c in CASES} | EXTRAS
    ckpts = {k: write_checkpoint(root / k, s) for k, s in specs.items()}
    reqs = [BuildRequest(c.path) for c in ckpts.values()]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=True, workdir=root / "off", env={"VLLM_DRAFT_QUANT": "off"})
    return lambda: {
        k: Built(c, plan(c.path), a, b)
        for (k, c), a, b in zip(ckpts.items(), on(), off(), strict=True)
    }


built = early_fixture(start_built)


@pytest.mark.parametrize("key", IDS)
def test_loads_in_stored_precision(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.on.ok, b.on.error_text
    assert not b.plan.conflicts or all("config says" in c.message for c in b.plan.conflicts)
    for d in b.plan.modules:
        if d.kind == "plain":
            continue
        m = b.on.modules.get(d.module)
        assert m is not None, f"{d.module} planned but vLLM built no such layer"
        assert m.quant_method and m.quant_method.startswith(SCHEME_METHODS[d.scheme]), (
            d.module,
            d.scheme,
            m.quant_method,
        )
        weights = [p for n, p in m.params.items() if n.endswith("weight") and "scale" not in n]
        assert weights and all(p.dtype == SCHEME_WEIGHT_DTYPE[d.scheme] for p in weights), (
            d.module,
            d.scheme,
            {n: p.dtype for n, p in m.params.items()},
        )
    assert b.on.sentinel_modules() == []


@pytest.mark.parametrize("key", IDS)
def test_values_equal_checkpoint_bytes(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    assert b.on.ok, b.on.error_text
    names = load_facts(b.ckpt.path).names
    templates = {m.prefix: list(m.checkpoint_modules) for m in names.modules}
    bad = mismatches(
        b.plan, b.on.modules, b.on.load_dump(), load_checkpoint(b.ckpt.path), templates
    )
    assert bad == []


@pytest.mark.parametrize("case", CASES, ids=["-".join(c) for c in CASES])
def test_off_switch_shows_stock_outcome(case: Case, built: dict[str, Built]) -> None:
    b = built["-".join(case)]
    assert_outcome(STOCK_OUTCOMES[case], b.off, b.ckpt)


@pytest.mark.parametrize("key", IDS)
def test_target_layers_untouched(key: str, built: dict[str, Built]) -> None:
    b = built[key]
    on = {
        p: (m.quant_method, {n: x.dtype for n, x in m.params.items()})
        for p, m in b.on.target_modules.items()
    }
    off = {
        p: (m.quant_method, {n: x.dtype for n, x in m.params.items()})
        for p, m in b.off.target_modules.items()
    }
    assert on and on == off


def test_matrix_score(built: dict[str, Built]) -> None:
    """The headline number: with the plugin every case loads; stock loads 19 of 42."""
    loaded = sum(built["-".join(c)].on.ok for c in CASES)
    stock_ok = sum(STOCK_OUTCOMES[c].outcome == "ok" for c in CASES)
    assert (loaded, stock_ok) == (42, 19)
