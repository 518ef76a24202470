"""Drafters without a hand profile load right: the mapping is learned from vLLM itself.

The classes are the rows of ``learned_cases.py`` (``ErnieMTPModel``: ERNIE-4.5 MoE,
whose checkpoint names ``model.mtp_block.0.*`` never equal the runtime prefixes vLLM
matches exclusions against; ``ExaoneMoeMTP``: K-EXAONE, whose ``mtp.fc`` is a
quantizable linear; ``Exaone4_5_MTP``, grouped with it; ``GlmOcrMTPModel``,
``LongCatFlashMTPModel`` and ``HYV3MTPModel``, the last two with a limit the plugin
does not lift, held to its recorded outcome; ``OpenPanguMTPModel``;
``BailingMoeV25MTPModel`` and ``BailingMoeV3MTPModel``, MoE drafters whose NextN head is
fed from ``lm_head.weight``; ``NemotronHMTPModel``; ``HYV4MTPModel`` (HY-V4, which remaps
exclusions written as ``model.mtp_layers.{k}.*`` itself: a wildcard it does not remap);
``Glm5NextMTPModel`` (GLM-5-Next: DSA latent attention built unquantized, a MoE NextN
layer); ``InklingMTPModel`` (whose loader calls vLLM's default loader itself) and
``InternS2MobiusMTP`` (a Qwen3.5-MoE MTP under a remote-code config); checkpoints from
``tests/support/_families_learned.py``; and the EAGLE-1 drafters that read a separate
draft folder, ``{"method": "eagle", "model": <draft>}``, written by
``support/eagle3.py:write_eagle_pair``: ``EagleLlamaForCausalLM``,
``EagleMistralForCausalLM`` and ``EagleCohereForCausalLM`` (learned),
``EagleMiniCPMForCausalLM`` and ``EagleDeepSeekMTPModel`` (hand profiles, rows with
``profile=True``); ``MuseSparkDSparkForCausalLM`` (method ``dspark``, a Muse layer
with DSpark's Markov head); Gemma4's assistant (``Gemma4MTP``, method ``mtp``) and
``Gemma4DSparkForCausalLM`` (method ``dspark``, built on the target's quant config)
beside a text-only Gemma4 target; and ``MiMoV2MTPModel``, a hand profile whose MTP layers sit in the
target's folder (family ``mimo_v2``); ``DFlashLagunaForCausalLM``,
``DFlash2BeamForCausalLM`` and ``LiLiCorrForCausalLM``, separate ``"dflash"`` drafts
beside tiny Laguna, Beam and Qwen3 targets (issue 13k)). For each case
(ModelOpt NVFP4 and FP8 targets x BF16 MTP with no exclusions (a), a wildcard (b), exact
checkpoint names (c), and a quantized MTP (g), for an EAGLE-1 draft as its own folder
declares them; one case for a grouped class), built through vLLM's own draft path
on the CPU platform (with its target loaded first unless the row says ``draft``):

- the plugin learns the mapping in-process (its log says so; a profiled class is
  planned from its hand profile, and that plan equals the learned one) and every
  planned draft module is built in its stored precision, its parameters equal to the
  checkpoint's bytes, no scale left at vLLM's sentinel;
- the plan the tests compute from the same mapping (learned on the build service's
  workers, ``support/learning.py``; `core.learned.learned_profile`) is the one the
  adapter followed,
  and names exactly the linear layers the row lists;
- with ``VLLM_DRAFT_QUANT=off`` the stock outcome recorded in the row shows;
- a grouped class's learned mapping equals its representative's;
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
from learned_cases import CASES, CLASSES, STOCK, Case, by_family, rotary_rows
from loaded import (
    QUANTIZABLE,
    assert_stock,
    assert_stored_precision,
    assert_values_equal,
    target_seen,
)
from matrix import assert_loud
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.eagle3 import EagleSpec, WrittenModel, write_eagle_pair
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
from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.core.learned import Observation, learned_profile, mapping_rows

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

IDS = ["-".join(c) for c in CASES]
L = "model.layers.2"
TARGET_LAYERS = 2  # every target here: a separate EAGLE-1 draft's layers follow these


#: where a case's draft weights were written: the target's folder (MTP), or a separate
#: EAGLE-1 draft folder
Written = WrittenCheckpoint | WrittenModel


@dataclass
class Built:
    ckpt: Written
    obs: Observation | str
    on: DraftResult
    off: DraftResult

    @property
    def plan(self) -> Plan:
        assert isinstance(self.obs, Observation), self.obs
        return plan(self.ckpt.path, profile=learned_profile(self.obs))


def _selected(session: pytest.Session) -> list[Case]:
    """The cases this session's selected tests of this module need (``-k`` aware:
    ``-k longcat`` builds LongCat's 8 cases, not every row's)."""
    wanted: set[Case] = set()
    for item in session.items:
        if getattr(item, "module", None) is not sys.modules[__name__]:
            continue
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "case" in params:
            wanted.add(params["case"])
        elif "row" in params:  # a grouped class: its case and its representative's
            case = params["row"].cases[0]
            wanted |= {case, (by_family(params["row"].like).family, *case[1:])}
        elif item.name == "test_target_layers_untouched":
            wanted |= {c for c in CASES if by_family(c[0]).mode == "target+draft"}
    return [c for c in CASES if c in wanted]


def _write(case: Case, root: Path) -> tuple[Written, Path, dict[str, Any] | None]:
    """(the draft weights' folder as written, the folder vLLM is given, extra EngineArgs)."""
    row = by_family(case[0])
    if row.draft is None:
        ck = write_checkpoint(root / "-".join(case), CheckpointSpec(
            case[0], case[1], layout=case[2]))  # type: ignore[arg-type]
        return ck, ck.path, dict(row.engine_args) if row.engine_args else None
    target, draft, spec = write_eagle_pair(root / "-".join(case), EagleSpec(
        row.draft, case[1], case[2]))  # type: ignore[arg-type]
    return draft, target.path, {"speculative_config": spec}


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Case, Built]]:
    written = {c: _write(c, root) for c in _selected(session)}
    groups: dict[tuple[tuple[str, str], ...], list[Case]] = {}  # by the rows' own env
    for c in written:
        groups.setdefault(tuple(sorted((by_family(c[0]).env or {}).items())), []).append(c)
    waits = []
    for env_items, cases in groups.items():
        env = dict(env_items)
        reqs = [BuildRequest(written[c][1], mode=by_family(c[0]).mode,  # type: ignore[arg-type]
                             engine_args=written[c][2]) for c in cases]
        on = submit_many(reqs, plugin=True, workdir=root / "on", env=env or None)
        off = submit_many(reqs, plugin=True, workdir=root / "off",
                          env={"VLLM_DRAFT_QUANT": "off", **env})
        learned = run_aside(learn_many, [(written[c][1], written[c][2]) for c in cases],
                            root / "learn", env=env or None)
        waits.append((cases, on, off, learned))

    def done() -> dict[Case, Built]:
        out = {}
        for cases, on, off, learned in waits:
            for c, o, a, b in zip(cases, learned.result(), on(), off(), strict=True):
                out[c] = Built(written[c][0], o, a, b)
        return {c: out[c] for c in written}

    return done


built = early_fixture(start_built)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_loads_in_stored_precision(case: Case, built: dict[Case, Built]) -> None:
    b, row = built[case], by_family(case[0])
    limit = row.limits.get(case[1:])
    if limit is not None and limit.outcome == "loud":  # not lifted: fails as recorded
        assert_loud(limit, b.on)
        return
    assert b.on.ok, b.on.error_text
    log = Path(b.on.raw["worker_log"]).read_text()
    learned_line = "mapping learned from vLLM's drafter (no hand profile)"
    p = b.plan
    assert isinstance(b.obs, Observation) and b.obs.drafter_class == row.drafter_class
    assert p.drafter == row.architecture and p.modules
    if row.profile:  # the plugin plans with the hand profile: held against the learner
        assert learned_line not in log
        hand = plan(b.ckpt.path, drafter=row.architecture, target_layers=TARGET_LAYERS)
        assert summary(hand) == summary(p)
        p = hand
    else:
        assert learned_line in log
    assert {d.module for d in p.modules if d.kind == "linear"} == row.linear
    if limit is not None:  # loads, the modules the limit names wrong, the rest right
        assert_stock(limit, b.on, {}, b.ckpt.stored_format)
        p = p.model_copy(update={"modules": tuple(d for d in p.modules
                                                  if d.kind in QUANTIZABLE)})
        assert_stored_precision(p, b.on, sentinels=False)
    else:
        assert_stored_precision(p, b.on)
    for d in p.modules:
        if d.kind in QUANTIZABLE:
            # a quantized draft (g) keeps its lm_head BF16, as exports do; so does a draft
            # module fed from the target's lm_head.weight (Bailing's NextN head)
            # a separate draft's writer says what it stored (DSpark's Markov head BF16)
            bf16 = (case[2] in "abc" or d.module == "lm_head" or d.module in row.kept_bf16
                    or all(t.startswith("lm_head.") for t in d.checkpoint_tensors)
                    or (row.draft is not None and all(
                        b.ckpt.stored_format(t) == "bf16" for t in d.checkpoint_tensors)))
            assert (d.scheme.value == "unquantized") == bf16, d.module


def summary(p: Plan) -> set[tuple[str, str, str]]:
    """What a plan decides: each module's kind and scheme."""
    return {(d.module, d.kind, d.scheme.value) for d in p.modules}


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_values_equal_checkpoint_bytes(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    limit = by_family(case[0]).limits.get(case[1:])
    if limit is not None and limit.outcome == "loud":
        pytest.skip("does not load (test_loads_in_stored_precision holds it to its error)")
    row = by_family(case[0])
    if row.profile:  # the hand profile's plan and shard templates ({e} per expert)
        facts = load_facts(b.ckpt.path, drafter=row.architecture, target_layers=TARGET_LAYERS)
        templates = {m.prefix: list(m.checkpoint_modules) for m in facts.names.modules}
        assert_values_equal(plan_from_facts(facts), b.on, b.ckpt.path, templates)
        return
    profile = learned_profile(b.obs)  # type: ignore[arg-type]
    templates = {s.runtime: list(s.checkpoint) for s in profile.globals}
    assert_values_equal(b.plan, b.on, b.ckpt.path, templates,
                        rotary_rows(row.qk_rotary) if row.qk_rotary else None)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_off_switch_shows_stock_outcome(case: Case, built: dict[Case, Built]) -> None:
    b = built[case]
    stored = {d.module: d.stored for d in b.plan.modules if d.kind in QUANTIZABLE}
    assert_stock(STOCK[case], b.off, stored, b.ckpt.stored_format)


def test_target_layers_untouched(built: dict[Case, Built]) -> None:
    checked = 0
    for c, b in built.items():
        if by_family(c[0]).mode != "target+draft":
            continue
        assert b.on.target_modules and target_seen(b.on) == target_seen(b.off)
        checked += 1
    assert checked


GROUPED = [c for c in CLASSES if c.like]


@pytest.mark.parametrize("row", GROUPED, ids=[c.drafter_class for c in GROUPED])
def test_grouped_class_learns_its_representatives_mapping(row: Any,
                                                          built: dict[Case, Built]) -> None:
    """A class tested with one build: vLLM's code maps the same checkpoint names to the
    same runtime layers, of the same kinds, as for its representative's full matrix."""
    case = row.cases[0]
    rep = by_family(row.like)
    mine, theirs = built[case].obs, built[(rep.family, *case[1:])].obs
    assert isinstance(mine, Observation) and isinstance(theirs, Observation), (mine, theirs)
    assert mine.drafter_class == row.drafter_class != theirs.drafter_class == rep.drafter_class
    assert mapping_rows(learned_profile(mine)) == mapping_rows(learned_profile(theirs))


def test_coverage_table_lists_exactly_these_classes() -> None:
    """README's coverage table (``adapter/coverage.py:VERIFIED_LEARNED``) claims a CPU
    build for the classes built here and no other, with the same grouping."""
    from vllm_draft_quant.adapter.coverage import PROFILED_BUILT, VERIFIED_LEARNED

    like = {c.family: c.drafter_class for c in CLASSES}
    built_here = {c.drafter_class: (like[c.like] if c.like else None, len(c.cases),
                                    c.limit_note) for c in CLASSES if not c.profile}
    assert built_here == VERIFIED_LEARNED
    assert {c.drafter_class: len(c.cases) for c in CLASSES if c.profile} == PROFILED_BUILT


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


# ------------------------------------- a drafter with no weights (issue 13g)
def start_weightless(session: pytest.Session, root: Path) -> Callable[[], dict[str, DraftResult]]:
    """vLLM's ExtractHiddenStatesModel (method ``extract_hidden_states``): one cache-only
    attention layer, no weights, beside a tiny Llama target."""
    from support.eagle3 import LlamaTargetSpec, write_llama_target

    target = write_llama_target(root / "target", LlamaTargetSpec("nvfp4"))
    spec = {"method": "extract_hidden_states", "num_speculative_tokens": 1,
            "draft_model_config": {"hf_config": {"eagle_aux_hidden_state_layer_ids": [1]}}}
    req = [BuildRequest(target.path, dump=False, engine_args={"speculative_config": spec})]
    runs = {mode: submit_many(req, plugin=True, workdir=root / mode,
                              env={"VLLM_DRAFT_QUANT": mode}) for mode in ("strict", "off")}
    return lambda: {mode: r()[0] for mode, r in runs.items()}


weightless = early_fixture(start_weightless)


def test_a_drafter_without_weights_loads_as_stock_in_strict_mode(
        weightless: dict[str, DraftResult]) -> None:
    """Nothing to plan is not "cannot learn": strict loads it as stock vLLM does (it
    failed with LearnError before: the learner saw no layer fed)."""
    from vllm_draft_quant.adapter.coverage import WEIGHTLESS

    assert set(WEIGHTLESS) == {"ExtractHiddenStatesModel"}  # README's table says so
    strict, off = weightless["strict"], weightless["off"]
    assert off.ok, off.error_text  # stock vLLM builds it
    assert strict.ok, strict.error_text
    assert strict.modules == {}  # no linear, expert or head layer: nothing planned
    log = Path(strict.raw["worker_log"]).read_text()
    assert "ExtractHiddenStatesModel builds no linear, expert or head layer" in log
    assert "standing aside" not in log


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
