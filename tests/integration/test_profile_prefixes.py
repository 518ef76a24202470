"""Every drafter profile predicts exactly the prefixes vLLM builds its layers with.

For each profile in ``PROFILES``, a factory checkpoint of its family (two draft
layers, everything quantized, so every module the profile lists for that family has
tensors) is built through vLLM's own draft path. The worker records the prefix vLLM
passed when it chose each layer's quant method (``LinearBase.prefix``,
``RoutedExperts.layer_name``, ``ParallelLMHead.prefix``). The runtime prefixes of the
plan (every module but ``plain`` ``torch.nn.Linear`` ones, which carry no quant
method) must equal that set, and the draft architecture vLLM resolved must be the
profile's. This is the test that tells which profile drifted after a vLLM bump
(CONTRIBUTING.md, "Bumping the supported vLLM range").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from harness import BuildRequest, DraftResult, build_many_parallel
from matrix_more import engine_args

from vllm_draft_quant import plan
from vllm_draft_quant.profiles import PROFILES
from vllm_draft_quant.testing import CheckpointSpec, write_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

#: factory family (or families) per profile: a new profile without one fails here
FAMILY_OF = {
    "Step3p5MTP": ("step3p5",),
    "Qwen3NextMTP": ("qwen3_next",),
    "DeepSeekMTPModel": ("deepseek_v3",),
    "Glm4MoeMTPModel": ("glm4_moe",),
    "Qwen3_5MoeMTP": ("qwen3_5_moe", "qwen3_5_moe_vl"),
    "MiMoMTPModel": ("mimo",),
}
CASES = [(p.architecture, f) for p in PROFILES for f in FAMILY_OF.get(p.architecture, ("?",))]
_RECORDED = ("linear", "experts", "lm_head")


def test_every_profile_has_a_family() -> None:
    assert sorted(FAMILY_OF) == sorted(p.architecture for p in PROFILES)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, jobs: int) -> dict[tuple[str, str], Any]:
    root = tmp_path_factory.mktemp("prefixes")
    ckpts = {
        (arch, fam): write_checkpoint(
            root / fam, CheckpointSpec(fam, "nvfp4", layout="g", num_mtp_layers=2)  # type: ignore[arg-type]
        )
        for arch, fam in CASES
        if fam != "?"
    }
    reqs = [BuildRequest(c.path, dump=False, engine_args=engine_args(fam))
            for (_, fam), c in ckpts.items()]
    results = build_many_parallel(reqs, plugin=True, jobs=jobs, workdir=root / "work")
    return {k: (c.path, r) for (k, c), r in zip(ckpts.items(), results, strict=True)}


@pytest.mark.parametrize(("architecture", "family"), CASES, ids=[f"{a}-{f}" for a, f in CASES])
def test_profile_predicts_vllm_prefixes(
    architecture: str, family: str, built: dict[tuple[str, str], tuple[Path, DraftResult]]
) -> None:
    path, result = built[(architecture, family)]
    assert result.ok, result.error_text
    assert result.raw["draft_architecture"] == architecture
    predicted = {d.module for d in plan(path).modules if d.kind != "plain"}
    observed = {m.prefix for m in result.modules.values() if m.kind in _RECORDED}
    assert predicted == observed, (
        f"profile predicts but vLLM did not build: {sorted(predicted - observed)}; "
        f"vLLM built but the profile does not predict: {sorted(observed - predicted)}"
    )
