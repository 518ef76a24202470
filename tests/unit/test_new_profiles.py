"""Issue 13 (deliverable 3): the profiles of the most-hit drafter families, checked
statically against the installed vLLM's source text (no vLLM import).

The integration tier builds the drafters vLLM can construct on its CPU platform; this
tier checks every profile, including DeepSeek-V4's (``deepseek_v4/cpu/mtp.py`` raises
NotImplementedError, so no build is possible here), against the files the profile
cites: vLLM's registry knows its architecture, ``config/speculative.py`` gives its
targets that architecture, every runtime module's leaf is a prefix the drafter's code
builds, and every checkpoint module's leaf is a name its ``load_weights`` reads.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from vllm_draft_quant import profiles
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.errors import UnknownDrafterError

_SPEC = importlib.util.find_spec("vllm")  # locating the package does not import it
VLLM = Path(_SPEC.origin).parent if _SPEC and _SPEC.origin else None
pytestmark = pytest.mark.skipif(VLLM is None, reason="vLLM is not installed")

M = "model_executor/models/"
#: architecture -> the vLLM files its drafter (and the layers it builds) live in
SOURCES: dict[str, tuple[str, ...]] = {
    "DeepseekV32MTPModel": ("models/deepseek_v32/nvidia/mtp.py", "models/deepseek_v32/nvidia/model.py",
                            "models/deepseek_v32/attention.py", M + "deepseek_mtp.py",
                            M + "deepseek_v2.py"),
    "Qwen3_5MTP": (M + "qwen3_5_mtp.py", M + "qwen3_5.py", M + "qwen3_next.py",
                   M + "qwen2_moe.py"),
    "Glm4MoeLiteMTPModel": (M + "glm4_moe_lite_mtp.py", M + "glm4_moe_lite.py",
                            M + "deepseek_v2.py", M + "glm4_moe.py"),
    "MiMoV2MTPModel": (M + "mimo_v2_mtp.py", M + "mimo_v2.py"),
    "DeepSeekV4MTPModel": ("models/deepseek_v4/nvidia/mtp.py", "models/deepseek_v4/nvidia/model.py",
                           "models/deepseek_v4/attention.py", M + "deepseek_mtp.py"),
    "Qwen4ExpMTP": ("models/qwen4_exp/nvidia/mtp.py", "models/qwen4_exp/nvidia/model.py",
                    "models/qwen4_exp/nvidia/qsa.py",
                    "models/qwen4_exp/nvidia/hyperconnection.py", M + "qwen3_next.py", M + "qwen3_5.py",
                    M + "qwen2_moe.py"),
    "Eagle3Qwen3ForCausalLM": (M + "qwen3_eagle3.py", M + "qwen3.py", M + "qwen2.py"),
    "Eagle3DeepseekV2ForCausalLM": (M + "deepseek_eagle3.py", M + "deepseek_v2.py"),
    "EagleMiniCPMForCausalLM": (M + "minicpm_eagle.py", M + "minicpm.py"),
    "EagleDeepSeekMTPModel": (M + "deepseek_eagle.py", M + "deepseek_v2.py"),
}
#: (target architecture, draft architecture) pairs config/speculative.py produces
#: (read from its source: the target's model type or architecture -> the draft's)
SPECULATIVE_MAP = {
    "DeepseekV32MTPModel": ("deepseek_v32", "glm_moe_dsa"),
    "Qwen3_5MTP": ("qwen3_5",),
    "Glm4MoeLiteMTPModel": ("Glm4MoeLiteForCausalLM",),
    "MiMoV2MTPModel": ("MiMoV2FlashForCausalLM", "MiMoV2ForCausalLM"),
    "DeepSeekV4MTPModel": ("deepseek_v4",),
    "Qwen4ExpMTP": ("qwen4_exp",),
}


def _text(arch: str) -> str:
    assert VLLM is not None
    return "\n".join((VLLM / f).read_text() for f in SOURCES[arch])


def _builds(text: str, leaf: str) -> bool:
    """Whether the drafter's code builds a module whose prefix ends with ``leaf``."""
    patterns = (
        rf'prefix=f"\{{prefix\}}\.{re.escape(leaf)}"',
        rf'maybe_prefix\(\s*prefix,\s*"{re.escape(leaf)}"\s*\)',
        rf"self\.{re.escape(leaf)}\s*=",
    )
    return any(re.search(p, text) for p in patterns)


def test_the_new_families_are_registered() -> None:
    names = profiles.draft_architectures()
    for arch in SOURCES:
        assert arch in names, arch
    assert "MiMoV2OmniMTPModel" in names and "Eagle3DeepseekV3ForCausalLM" in names
    assert profiles.profile_for_target(["GlmMoeDsaForCausalLM"], origin="x").architecture == \
        "DeepseekV32MTPModel"
    assert profiles.profile_for_target(["DeepseekV32ForCausalLM"], origin="x").architecture == \
        "DeepseekV32MTPModel"
    assert profiles.profile_for_target(["Qwen3_5ForCausalLM"], origin="x").architecture == \
        "Qwen3_5MTP"


def test_kimi_k2_is_not_an_architecture() -> None:
    """Kimi-K2 checkpoints declare DeepseekV3ForCausalLM; vLLM has no KimiK2ForCausalLM."""
    assert VLLM is not None
    assert '"KimiK2ForCausalLM"' not in (VLLM / M / "registry.py").read_text()
    with pytest.raises(UnknownDrafterError):
        profiles.profile_for_target(["KimiK2ForCausalLM"], origin="x")
    assert profiles.profile_for_target(["DeepseekV3ForCausalLM"], origin="x").architecture == \
        "DeepSeekMTPModel"


@pytest.mark.parametrize("arch", sorted(SOURCES))
def test_registry_and_speculative_config_name_it(arch: str) -> None:
    assert VLLM is not None
    p = profiles.profile_for_draft(arch)
    registry = (VLLM / M / "registry.py").read_text()
    for name in (p.architecture, *p.architecture_aliases):
        assert f'"{name}":' in registry, name
    spec = (VLLM / "config/speculative.py").read_text()
    for key in SPECULATIVE_MAP.get(arch, ()):
        assert f'"{key}"' in spec, key
        assert f'"{arch}"' in spec, arch
    for target in p.target_architectures:
        assert f'"{target}"' in registry, target


@pytest.mark.parametrize("arch", sorted(SOURCES))
def test_every_runtime_module_is_built_by_the_drafter(arch: str) -> None:
    p = profiles.profile_for_draft(arch)
    text = _text(arch)
    for spec in (*p.modules, *p.globals):
        leaf = spec.runtime.rsplit(".", 1)[-1]
        if spec.kind is ModuleKind.EXPERTS:
            assert re.search(r"expert(s)?_params_mapping|expert_mapping|experts\.", text)
            continue
        assert _builds(text, leaf), f"{arch}: nothing builds a module named {leaf!r}"


@pytest.mark.parametrize("arch", sorted(SOURCES))
def test_every_checkpoint_module_is_read_by_the_drafter(arch: str) -> None:
    p = profiles.profile_for_draft(arch)
    text = _text(arch)
    for spec in (*p.modules, *p.globals):
        for ckpt in spec.checkpoint:
            leaf = ckpt.rsplit(".", 1)[-1]
            if leaf in ("gate_proj", "up_proj", "down_proj", "q_proj", "k_proj", "v_proj"):
                continue  # the stacked mappings every family shares
            assert leaf in text, f"{arch}: its code never names checkpoint module {leaf!r}"


def test_deepseek_v32_target_plans_with_the_v32_drafter(tmp_path: Path) -> None:
    from support import CheckpointSpec, write_checkpoint

    from vllm_draft_quant import plan

    write_checkpoint(tmp_path, CheckpointSpec("deepseek_v32", "fp8", layout="g"))
    p = plan(tmp_path, mode="strict")
    assert p.drafter == "DeepseekV32MTPModel"
    assert p.decision("model.layers.2.self_attn.indexer.wq_b") is not None


def test_glm5_indexer_and_deepseek_v4_names() -> None:
    v32 = NameMap(profiles.profile_for_draft("DeepseekV32MTPModel"), num_hidden_layers=78,
                  num_draft_layers=1)
    hit = v32.runtime_of("model.layers.78.self_attn.indexer.weights_proj")
    assert hit is not None and hit[0].prefix == "model.layers.78.self_attn.indexer.wk_weights_proj"
    assert hit[0].spec.kind is ModuleKind.FIXED and hit[1] == 1
    assert v32.runtime_of("model.layers.78.shared_head.head")[0].prefix == "model.layers.78.head"
    v4 = NameMap(profiles.profile_for_draft("DeepSeekV4MTPModel"), num_hidden_layers=61,
                 num_draft_layers=1)
    hit = v4.runtime_of("mtp.0.attn.wkv")
    assert hit is not None and hit[0].prefix == "model.layers.61.attn.fused_wqa_wkv"
    assert v4.runtime_of("mtp.0.head")[0].prefix == "model.layers.61.head"
    assert "NotImplementedError" in (VLLM / "models/deepseek_v4/cpu/mtp.py").read_text()  # type: ignore[operator]


@pytest.mark.parametrize(("layout", "scheme"), [("a", "unquantized"), ("c", "unquantized"),
                                                ("g", "nvfp4")])
def test_eagle_minicpm_plans_its_prefixless_mlp(tmp_path: Path, layout: str,
                                                scheme: str) -> None:
    """``minicpm_eagle.py`` builds its MLP without a prefix, so vLLM's prefixes are
    ``.gate_up_proj`` / ``.down_proj``: the plan names them by those (before, the profile
    left the MLP out and a BF16 MLP under a quantized config was built quantized: the
    load failed plugin on or off, ``test_learned_drafters.py::...[eagle_minicpm-nvfp4-a]``
    holds the stock failure)."""
    from support.eagle3 import EagleSpec, write_eagle_draft

    from vllm_draft_quant import plan

    assert VLLM is not None
    text = (VLLM / M / "minicpm_eagle.py").read_text()
    call = re.search(r"EagleMiniCPMMLP\((.*?)\n\s*\)", text, re.S)
    assert call and "prefix" not in call.group(1)  # vLLM still builds it without one
    d = write_eagle_draft(tmp_path, EagleSpec("minicpm", "nvfp4", layout))  # type: ignore[arg-type]
    p = plan(d.path, drafter="EagleMiniCPMForCausalLM", target_layers=2)
    got = {m.module: m.scheme.value for m in p.modules if m.group == "mlp"}
    assert got == {".gate_up_proj": scheme, ".down_proj": scheme}
