"""Drafters without a hand profile load right: the mapping is learned from vLLM itself.

``ErnieMTPModel`` (ERNIE-4.5 MoE, ``ernie_mtp.py``) and ``ExaoneMoeMTP`` (K-EXAONE,
``exaone_moe_mtp.py``) have no profile in ``vllm_draft_quant/profiles``. ERNIE's
checkpoint names (``model.mtp_block.0.*``) never equal the runtime prefixes vLLM matches
exclusions against (``model.layers.N.*``); EXAONE's ``mtp.fc`` is a quantizable linear
(``tests/support/_families_learned.py``). For each case (ModelOpt NVFP4 and FP8 targets x BF16 MTP with no exclusions (a), a wildcard (b),
exact checkpoint names (c), and a quantized MTP (g)), built through vLLM's own draft
path on the CPU platform (ERNIE with its target loaded first; EXAONE's drafter alone):

- the plugin learns the mapping in-process (its log says so) and every planned draft
  module is built in its stored precision, its parameters equal to the checkpoint's
  bytes, no scale left at vLLM's sentinel;
- the plan the tests compute from the same mapping (``adapter/learn_main.py`` in its
  own process, `core.learned.learned_profile`) is the one the adapter followed;
- with ``VLLM_DRAFT_QUANT=off`` the stock outcome recorded in ``STOCK`` shows;
- ``VLLM_DRAFT_QUANT=strict`` on a drafter whose mapping cannot be learned fails with one
  error naming it, and ``auto`` stands aside with one warning (a checkpoint without
  draft tensors: the drafter's own ``load_weights`` passes nothing to its layers).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from loaded import (
    QUANTIZABLE,
    assert_stock,
    assert_stored_precision,
    assert_values_equal,
    target_seen,
)
from matrix import Expected
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.harness import (
    BuildRequest,
    DraftResult,
    early_fixture,
    run_aside,
    submit_many,
    worker_env,
)
from support.learning import learn_many

from vllm_draft_quant import Plan, plan
from vllm_draft_quant.core.learned import Observation, learned_profile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

Case = tuple[str, str, str]  # (family, scheme, layout)
FAMILIES = ("ernie4_5_moe", "exaone_moe")
CASES: list[Case] = [(f, s, lay) for f in FAMILIES for s in ("nvfp4", "fp8")
                     for lay in ("a", "b", "c", "g")]
IDS = ["-".join(c) for c in CASES]

L = "model.layers.2"
X = "mtp.layers.0"
#: the linear layers vLLM builds for each drafter (runtime prefixes)
LINEAR = {
    "ernie4_5_moe": {f"{L}.self_attn.qkv_proj", f"{L}.self_attn.o_proj",
                     f"{L}.mlp.gate_up_proj", f"{L}.mlp.down_proj"},
    "exaone_moe": {f"{X}.self_attn.qkv_proj", f"{X}.self_attn.o_proj", f"{X}.mlp.gate_up_proj",
                   f"{X}.mlp.down_proj", "mtp.fc"},
}
DRAFTER = {"ernie4_5_moe": "ErnieMTPModel", "exaone_moe": "ExaoneMoeMTP"}
MODE: dict[str, Any] = {"exaone_moe": "draft"}
#: stock vLLM 0.33.0 (VLLM_DRAFT_QUANT=off) on each case, measured with these builds
STOCK: dict[Case, Expected] = {
    # parameter.py load_merged_column_weight: BF16 data into the packed NVFP4 parameter
    **{("ernie4_5_moe", "nvfp4", lay): Expected(
        "loud", "AssertionError", f"{L}.mtp_block.mlp.gate_up_proj") for lay in ("a", "b", "c")},
    ("ernie4_5_moe", "nvfp4", "g"): Expected("ok"),
    # FP8 parameters holding cast BF16 data: silently wrong
    **{("ernie4_5_moe", "fp8", lay): Expected(
        "silent", wrong=((f"{L}.self_attn.qkv_proj", "model.mtp_block.0.self_attn.q_proj"),
                         (f"{L}.mlp.gate_up_proj", "model.mtp_block.0.mlp.gate_proj")))
       for lay in ("a", "b", "c")},
    ("ernie4_5_moe", "fp8", "g"): Expected("ok"),
    # a: nothing excluded; c: exact checkpoint names exclude q/k/v and gate/up but not
    # the fused modules (no packed-module mapping): NVFP4 dies, FP8 is silently wrong
    ("exaone_moe", "nvfp4", "a"): Expected("loud", "AssertionError", "fc.weight"),
    ("exaone_moe", "nvfp4", "c"): Expected("loud", "AssertionError", "layers.0.mlp.gate_up_proj"),
    **{("exaone_moe", "nvfp4", lay): Expected("ok") for lay in ("b", "g")},
    ("exaone_moe", "fp8", "a"): Expected(
        "silent", wrong=((f"{X}.self_attn.qkv_proj", f"{X}.self_attn.q_proj"),
                         ("mtp.fc", "mtp.fc"))),
    ("exaone_moe", "fp8", "c"): Expected(
        "silent", wrong=((f"{X}.self_attn.qkv_proj", f"{X}.self_attn.q_proj"),
                         (f"{X}.mlp.gate_up_proj", f"{X}.mlp.gate_proj"))),
    **{("exaone_moe", "fp8", lay): Expected("ok") for lay in ("b", "g")},
}


@dataclass
class Built:
    ckpt: WrittenCheckpoint
    obs: Observation | str
    on: DraftResult
    off: DraftResult

    @property
    def plan(self) -> Plan:
        assert isinstance(self.obs, Observation), self.obs
        return plan(self.ckpt.path, profile=learned_profile(self.obs))


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Built]]:
    ckpts = {c: write_checkpoint(root / "-".join(c), CheckpointSpec(
        c[0], c[1], layout=c[2])) for c in CASES}  # type: ignore[arg-type]
    # ExaoneMoE's tiny target does not load on CPU (its lm_head, stock and with the
    # plugin alike): its drafter is built alone, as vLLM builds it after the target
    reqs = [BuildRequest(ck.path, mode=MODE.get(c[0], "target+draft"))
            for c, ck in ckpts.items()]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=True, workdir=root / "off", env={"VLLM_DRAFT_QUANT": "off"})
    learned = run_aside(learn_many, [(ck.path, None) for ck in ckpts.values()], root / "learn")
    return lambda: {c: Built(ck, o, a, b) for (c, ck), o, a, b in zip(
        ckpts.items(), learned.result(), on(), off(), strict=True)}


built = early_fixture(start_built)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loads_in_stored_precision(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    assert b.on.ok, b.on.error_text
    log = Path(b.on.raw["worker_log"]).read_text()
    assert "mapping learned from vLLM's drafter (no hand profile)" in log
    p = b.plan
    assert p.drafter == DRAFTER[case[0]] and p.modules
    assert {d.module for d in p.modules if d.kind == "linear"} == LINEAR[case[0]]
    assert_stored_precision(p, b.on)
    for d in p.modules:
        if d.kind in QUANTIZABLE:
            assert (d.scheme.value == "unquantized") == (case[2] in "abc"), d.module


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_equal_checkpoint_bytes(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    profile = learned_profile(b.obs)  # type: ignore[arg-type]
    templates = {s.runtime: list(s.checkpoint) for s in profile.globals}
    assert_values_equal(b.plan, b.on, b.ckpt.path, templates)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_off_switch_shows_stock_outcome(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    stored = {d.module: d.stored for d in b.plan.modules if d.kind in QUANTIZABLE}
    assert_stock(STOCK[case], b.off, stored, b.ckpt.stored_format)


def test_target_layers_untouched(built: dict[Case, Built]) -> None:
    for c, b in built.items():
        if c[0] in MODE:
            continue
        assert b.on.target_modules and target_seen(b.on) == target_seen(b.off)


# ------------------------------------------------------------ where it cannot decide
def _with_stray_tensor(ckpt: Path) -> Path:
    """A draft tensor ErnieMTP's ``load_weights`` has no parameter for: vLLM's own loader
    raises on it, so the dry run cannot learn where it goes."""
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"model.mtp_block.0.mlp.stray_proj.weight": np.zeros((16, 16), np.float32)},
              str(ckpt / "stray.safetensors"))
    return ckpt


def start_undecided(session: pytest.Session, root: Path) -> Callable[[], dict[str, DraftResult]]:
    ck = write_checkpoint(root / "stray", CheckpointSpec("ernie4_5_moe", "nvfp4", layout="g"))
    req = [BuildRequest(_with_stray_tensor(ck.path), dump=False)]
    runs = {mode: submit_many(req, plugin=True, workdir=root / mode,
                              env={"VLLM_DRAFT_QUANT": mode}) for mode in ("strict", "auto", "off")}
    return lambda: {mode: r()[0] for mode, r in runs.items()}


undecided = early_fixture(start_undecided)


def test_strict_fails_with_one_error_naming_the_drafter(undecided: dict[str, DraftResult]) -> None:
    r = undecided["strict"]
    assert not r.ok and r.error_type == "LearnError", r.error_text
    assert "ErnieMTPModel" in r.error_text and "VLLM_DRAFT_QUANT=off" in r.error_text


def test_auto_stands_aside_with_one_warning(undecided: dict[str, DraftResult]) -> None:
    auto, off = undecided["auto"], undecided["off"]
    assert (auto.ok, auto.error_type) == (off.ok, off.error_type)  # stock vLLM's own outcome
    log = Path(auto.raw["worker_log"]).read_text()
    assert log.count("vllm-draft-quant standing aside for ErnieMTPModel") == 1


# ------------------------------------------------------------------ plan --learn (CLI)
def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "vllm_draft_quant.cli.main", *args],
                          env=worker_env(True), capture_output=True, text=True, timeout=1200,
                          check=False)


def start_cli_learned(session: pytest.Session,
                      root: Path) -> Callable[[], subprocess.CompletedProcess[str]]:
    ck = write_checkpoint(root / "ernie", CheckpointSpec("ernie4_5_moe", "nvfp4", layout="a"))
    future = run_aside(_cli, "plan", str(ck.path), "--learn")
    return future.result


cli_learned = early_fixture(start_cli_learned)


def test_plan_learns_the_mapping_and_says_so(
        cli_learned: subprocess.CompletedProcess[str]) -> None:
    out = cli_learned.stdout
    assert cli_learned.returncode == 1, cli_learned.stderr[-2000:]  # config says NVFP4: conflicts
    assert out.startswith("ErnieMTPModel draft plan (auto mode)")
    assert "mapping: learned from vLLM" in out and "ErnieMTP in-process (no hand profile)" in out
    assert L in out  # the layer line names the runtime root; rows are relative to it
    for module in ("self_attn.qkv_proj", "mlp.gate_up_proj", "mtp_linear_proj"):
        assert module in out
    assert "learning vLLM's own mapping" in cli_learned.stderr
