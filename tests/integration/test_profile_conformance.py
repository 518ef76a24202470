"""Every hand profile agrees with the mapping learned from the installed vLLM's drafter.

The mapping learner (``adapter/learn.py``: the drafter built on the meta device, its own
``load_weights`` run on header-shaped placeholders) is run on one factory checkpoint per
profile, everything quantized and two draft layers where the family has them. For every
module vLLM builds, the hand profile and the learned mapping must give the same runtime
prefix, the same kind (linear, experts, lm_head, fixed, plain) and the same checkpoint
modules in the same shard order. A vLLM release that renames a drafter's modules or
changes what its ``load_weights`` routes where fails here, naming the rows that differ,
instead of in a user's load. (``test_profile_prefixes.py`` checks the prefixes on real
builds; this test checks the checkpoint side too.)
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.harness import early_fixture, run_aside
from support.learning import learn_many
from test_profile_prefixes import CASES, _write

from vllm_draft_quant.checkpoint.facts import load_facts
from vllm_draft_quant.checkpoint.index import CheckpointFiles
from vllm_draft_quant.core.learned import Observation, learned_profile, mapping_rows, profile_rows
from vllm_draft_quant.core.names import module_of
from vllm_draft_quant.profiles import profile_for_draft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]


#: (drafter, family) whose learned mapping and hand profile are known to disagree, with
#: the reason (the test fails if they agree: then remove the entry). None today: the
#: learner runs in the build workers, where the demo's CPU shims apply (the dense
#: attention backend lets DeepseekV32MTPModel build), and the DSA indexer's
#: ``wk_weights_proj`` (built with ``quant_config=None``, ``deepseek_v2.py:
#: Indexer.__init__``), learned as a linear, is compared through its ``no_quant_config``.
NOT_YET: dict[tuple[str, str], str] = {}


def _draft_dir(folder: Path, extra: dict[str, Any]) -> Path:
    spec = extra.get("speculative_config")
    return Path(spec["model"]) if isinstance(spec, dict) and "model" in spec else folder


def start_learned(session: pytest.Session, root: Path) -> Callable[[], dict[Any, Any]]:
    written = {case: _write(root, case[1]) for case in CASES if case[1] != "?"}
    future = run_aside(learn_many, [(path, extra) for path, extra, _ in written.values()],
                       root / "work")
    return lambda: {k: (w, obs) for (k, w), obs in zip(written.items(), future.result(),
                                                        strict=True)}


learned = early_fixture(start_learned)


@pytest.mark.parametrize(("architecture", "family"), CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_profile_matches_learned_mapping(architecture: str, family: str,
                                         learned: dict[Any, Any]) -> None:
    (folder, extra, _), obs = learned[(architecture, family)]
    assert isinstance(obs, Observation), obs
    if (architecture, family) in NOT_YET:
        with pytest.raises(AssertionError, match="disagree"):
            _check(architecture, family, folder, extra, obs)
        pytest.xfail(NOT_YET[(architecture, family)])
    _check(architecture, family, folder, extra, obs)


def _check(architecture: str, family: str, folder: Path, extra: dict[str, Any],
           obs: Observation) -> None:
    profile = profile_for_draft(architecture)
    assert obs.drafter in (profile.architecture, *profile.architecture_aliases)
    draft_dir = _draft_dir(folder, extra)
    target_layers = None
    if family.startswith("eagle"):
        import json

        target_layers = json.loads((folder / "config.json").read_text())["num_hidden_layers"]
    facts = load_facts(draft_dir, drafter=architecture, target_layers=target_layers)
    modules = {module_of(n) for n in CheckpointFiles(draft_dir).weight_names()}
    expected = profile_rows(facts.names, modules)
    got = mapping_rows(learned_profile(obs))
    # a plain torch.nn.Linear carries no quant method, so no prefix: the learner names it
    # by its module path, a profile by its layer's runtime root (MiMo's input_proj); they
    # are compared by the checkpoint modules they load
    plain = [{v for v in rows.values() if v[0] == "plain"} for rows in (expected, got)]
    assert plain[0] <= plain[1], f"plain modules: profile {plain[0]} vs vLLM {plain[1]}"
    expected = {k: v for k, v in expected.items() if v[0] != "plain"}
    got = {k: v for k, v in got.items() if v[0] != "plain"}
    # a layer vLLM always builds with quant_config=None (GLM-5 / DeepSeek-V3.2's indexer
    # wk_weights_proj, deepseek_v2.py:Indexer.__init__) is "fixed" in a profile; the
    # learner keeps a non-replicated linear "linear" (it cannot tell that from a
    # per-config workaround), but records that vLLM passed no quant config
    no_qc = {layer.prefix for layer in obs.layers if layer.no_quant_config}
    for k, (kind, mods) in list(expected.items()):
        if kind == "fixed" and k in no_qc and got.get(k) == ("linear", mods):
            got[k] = expected[k]
    differ = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
    assert not differ, (
        f"{architecture}: the hand profile and vLLM's drafter disagree on "
        + "; ".join(f"{k}: profile {expected.get(k)} vs vLLM {got.get(k)}" for k in differ[:6]))
