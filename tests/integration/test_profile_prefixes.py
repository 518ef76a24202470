"""Every drafter profile predicts exactly the prefixes vLLM builds its layers with.

For each profile in ``PROFILES``, a factory checkpoint of its family (two draft
layers, everything quantized, so every module the profile lists for that family has
tensors) is built through vLLM's own draft path. The worker records the prefix vLLM
passed when it chose each layer's quant method (``LinearBase.prefix``,
``RoutedExperts.layer_name``, ``ParallelLMHead.prefix``). The runtime prefixes of the
plan (every module but ``plain`` ``torch.nn.Linear`` ones, which carry no quant
method) must equal that set, and the draft architecture vLLM resolved must be the
profile's (or one of its aliases). This is the test that tells which profile drifted after a vLLM bump
(CONTRIBUTING.md, "Bumping the supported vLLM range").
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matrix_more import engine_args
from support import CheckpointSpec, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many

from vllm_draft_quant import plan
from vllm_draft_quant.profiles import PROFILES, profile_for_draft

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

#: factory family (or families) per profile: a new profile without one fails here.
#: "eagle3" is a separate draft folder beside a tiny Llama target (testing/eagle3.py).
FAMILY_OF = {
    "Step3p5MTP": ("step3p5",),
    "Qwen3NextMTP": ("qwen3_next",),
    "DeepSeekMTPModel": ("deepseek_v3",),
    "Glm4MoeMTPModel": ("glm4_moe",),
    "Qwen3_5MoeMTP": ("qwen3_5_moe", "qwen3_5_moe_vl"),
    "MiMoMTPModel": ("mimo",),
    "Eagle3LlamaForCausalLM": ("eagle3",),
    "DeepseekV32MTPModel": ("glm5", "deepseek_v32"),
    "Qwen3_5MTP": ("qwen3_5",),
    "Glm4MoeLiteMTPModel": ("glm4_moe_lite",),
    "Eagle3Qwen3ForCausalLM": ("eagle3_qwen3",),
    "Eagle3DeepseekV2ForCausalLM": ("eagle3_deepseek",),
    "EagleDeepSeekMTPModel": ("eagle_deepseek",),
    "EagleMiniCPMForCausalLM": ("eagle_minicpm",),
    "MiMoV2MTPModel": ("mimo_v2",),
    "Qwen4ExpMTP": ("qwen4_exp",),
}
#: families whose tiny checkpoint has one MTP layer (vLLM builds only the first)
ONE_MTP = {"mimo_v2", "qwen4_exp"}
# ---- issue issue13l: MiMoV2OmniMTP (an alias of the MiMoV2MTPModel profile) ----
FAMILY_OF["MiMoV2MTPModel"] += ("mimo_v2_omni",)
ONE_MTP |= {"mimo_v2_omni"}
#: EAGLE-1 families: a separate draft folder (support.eagle3.write_eagle_pair, layout g)
EAGLE1 = {"eagle_deepseek": ("deepseek", "EagleDeepSeekMTPModel"),
          "eagle_minicpm": ("minicpm", "EagleMiniCPMForCausalLM")}
#: profiles built nowhere here, and why; each is checked against the drafter's source
#: by tests/unit/test_new_profiles.py instead
STATIC_ONLY = {
    "DeepSeekV4MTPModel": "vLLM 0.33.0 has no CPU implementation (deepseek_v4/cpu/mtp.py "
                          "raises NotImplementedError)",
}
CASES = [(p.architecture, f) for p in PROFILES if p.architecture not in STATIC_ONLY
         for f in FAMILY_OF.get(p.architecture, ("?",))]
_RECORDED = ("linear", "experts", "lm_head")


def test_every_profile_has_a_family() -> None:
    missing = sorted({p.architecture for p in PROFILES} - set(FAMILY_OF) - set(STATIC_ONLY))
    assert not missing, f"profiles without a checkpoint here (add one to FAMILY_OF): {missing}"


def _write(root: Path, family: str) -> tuple[Path, dict[str, Any], Any]:
    """(folder vLLM is pointed at, extra EngineArgs, () -> the plan)."""
    if family in EAGLE1:
        from support.eagle3 import EagleSpec, write_eagle_pair

        fam, arch = EAGLE1[family]
        target, draft, spec = write_eagle_pair(root / family, EagleSpec(fam, layout="g"))
        n_target = target.config["num_hidden_layers"]
        return (target.path, {"speculative_config": spec},
                lambda: plan(draft.path, drafter=arch, target_layers=n_target))
    if family == "eagle3_deepseek":
        from support.eagle3 import Eagle3Spec, write_eagle3_deepseek_draft

        target = write_checkpoint(root / "ds-target", CheckpointSpec(
            "deepseek_v3", "nvfp4", layout="a", with_mtp=False))
        draft = write_eagle3_deepseek_draft(
            root / "ds-eagle3", Eagle3Spec(attn="nvfp4", mlp="nvfp4", fc="nvfp4"))
        spec = {"method": "eagle3", "model": str(draft.path), "num_speculative_tokens": 1}
        n_target = target.config["num_hidden_layers"]
        return (
            target.path,
            {"speculative_config": spec},
            lambda: plan(draft.path, drafter="Eagle3DeepseekV2ForCausalLM",
                         target_layers=n_target),
        )
    if family in ("eagle3", "eagle3_qwen3"):
        from support.eagle3 import (
            Eagle3Spec,
            LlamaTargetSpec,
            write_eagle3_draft,
            write_llama_target,
        )

        fam = "qwen3" if family == "eagle3_qwen3" else "llama"
        target = write_llama_target(root / f"{fam}-target", LlamaTargetSpec("nvfp4", family=fam))
        draft = write_eagle3_draft(
            root / f"{fam}-eagle3",
            Eagle3Spec(attn="nvfp4", mlp="nvfp4", fc="nvfp4", lm_head="nvfp4", family=fam),
        )
        arch = "Eagle3Qwen3ForCausalLM" if fam == "qwen3" else "Eagle3LlamaForCausalLM"
        spec = {"method": "eagle3", "model": str(draft.path), "num_speculative_tokens": 1}
        n_target = target.config["num_hidden_layers"]
        return (
            target.path,
            {"speculative_config": spec},
            lambda: plan(draft.path, drafter=arch, target_layers=n_target),
        )
    ckpt = write_checkpoint(
        root / family,
        CheckpointSpec(family, "nvfp4", layout="g",  # type: ignore[arg-type]
                       num_mtp_layers=1 if family in ONE_MTP else 2),
    )
    return ckpt.path, engine_args(family), lambda: plan(ckpt.path)


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[tuple[str, str], Any]]:
    """Write a checkpoint per profile and queue its build with the plugin."""
    written = {case: _write(root, case[1]) for case in CASES if case[1] != "?"}
    reqs = [
        BuildRequest(path, dump=False, engine_args=extra) for path, extra, _ in written.values()
    ]
    results = submit_many(reqs, plugin=True, workdir=root / "work")
    return lambda: {k: (w[2], r) for (k, w), r in zip(written.items(), results(), strict=True)}


built = early_fixture(start_built)


@pytest.mark.parametrize(("architecture", "family"), CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_profile_predicts_vllm_prefixes(
    architecture: str, family: str, built: dict[tuple[str, str], tuple[Any, DraftResult]]
) -> None:
    if family == "?":
        pytest.fail(f"{architecture}: no checkpoint to build; add its family to FAMILY_OF")
    make_plan, result = built[(architecture, family)]
    assert result.ok, result.error_text
    names = (architecture, *getattr(profile_for_draft(architecture), "architecture_aliases", ()))
    assert result.raw["draft_architecture"] in names
    predicted = {d.module for d in make_plan().modules if d.kind != "plain"}
    # a layer built with no prefix (MiMo-V2's eh_proj) counts under its module path
    observed = {m.prefix or m.module_path for m in result.modules.values()
                if m.kind in _RECORDED}
    assert predicted == observed, (
        f"profile predicts but vLLM did not build: {sorted(predicted - observed)}; "
        f"vLLM built but the profile does not predict: {sorted(observed - predicted)}"
    )
