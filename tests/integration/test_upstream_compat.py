"""Each patch and compat shim, against the installed vLLM: still applies, still needed.

One test per ledger entry (``adapter/patches.py`` P1-P5, ``adapter/compat.py``). A
``*_still_applies`` test fails when vLLM moves what we hook (then the entry must be
rewritten); a ``*_still_needed`` test fails when vLLM fixes the cause (then the entry,
and the profile data it reads, can be removed: the failure message says which).
What P1-P4 fix as a whole (exclusions matched against runtime names) is proven
needed by the stock-outcome tables (``test_stock_repro.py`` and the matrices' off
switch): they fail as soon as stock vLLM loads those layouts correctly.
(vllm-spyre's ``tests/utils/test_upstream_compatibility.py`` is the model.)

The CPU stand-ins of the demo's ledger (``vllm_draft_quant/demo/cpu_shims.py``)
have their own such tests in ``test_cpu_shims_upstream.py``.

These tests import vLLM in the pytest process itself (once, ~15 s).
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from vllm_draft_quant.adapter import compat


def _params(func: Any) -> list[str]:
    return list(inspect.signature(func).parameters)


def _source(module: str, qualname: str) -> str:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return inspect.getsource(obj)


def test_installed_vllm_is_in_the_supported_range() -> None:
    assert compat.check_supported() is None, compat.vllm_version()


# ----------------------------------------------------------------- still applies
@pytest.mark.parametrize(
    ("key", "needs"),
    [
        ("P1 BaseModelLoader.load_model", ["self", "vllm_config", "model_config", "prefix"]),
        ("P2 LinearBase.__init__", ["quant_config", "prefix"]),
        ("P3 VocabParallelEmbedding.__init__", ["quant_config", "prefix"]),
        ("P4 RoutedExperts._get_quant_method", ["self", "prefix", "quant_config", "moe_config"]),
    ],
)
def test_patch_still_applies(key: str, needs: list[str]) -> None:
    owner, attr = compat.patch_targets()[key]
    params = _params(getattr(owner, attr))
    if key.startswith(("P1", "P4")):
        assert params == needs, f"{key}: vLLM changed the signature to {params}; rewrite the patch"
    else:
        missing = [p for p in needs if p not in params]
        assert not missing, f"{key}: no {missing} parameter any more; rewrite the patch"


def test_p5_completeness_switch_still_exists() -> None:
    with compat.mtp_completeness_check_disabled():
        from vllm.model_executor.model_loader.mtp_validation import (
            is_mtp_completeness_check_enabled,
        )

        assert not is_mtp_completeness_check_enabled()


def test_compat_reads_the_config_attributes_vllm_has() -> None:
    from vllm.config import ModelConfig, SpeculativeConfig, VllmConfig

    assert "get_total_num_hidden_layers" in dir(ModelConfig)
    assert {"speculative_config", "quant_config", "load_config", "model_config"} <= set(
        VllmConfig.__dataclass_fields__
    )
    assert "target_model_config" in SpeculativeConfig.__dataclass_fields__
    assert callable(VllmConfig.get_quantization_config)


# ------------------------------------------------------------------ still needed
def test_p5_glm_nextn_head_still_fed_by_lm_head() -> None:
    src = _source("vllm.model_executor.models.glm4_moe_mtp", "Glm4MoeMTP.load_weights")
    assert '"lm_head.weight"' in src, (
        "Glm4MoeMTP.load_weights no longer renames lm_head.weight into the NextN head: "
        "drop `also_fed_by` from the GLM profile and P5's shadowing"
    )


def test_p5_step3p5_completeness_check_still_rejects_kv_placeholders() -> None:
    src = _source("vllm.model_executor.models.step3p5_mtp", "Step3p5MTP.load_weights")
    assert "is_mtp_completeness_check_enabled" in src, "Step3p5MTP dropped its check: drop P5's redo"
    assert "zero_point" not in src, (
        "Step3p5MTP now treats the KV-cache zero-point placeholders as optional: drop "
        "`checks_completeness` from the Step-3.5 profile and P5's redo of the check"
    )


@pytest.mark.parametrize(
    ("module", "qualname"),
    [
        ("vllm.model_executor.models.qwen3_next_mtp", "Qwen3NextMultiTokenPredictor"),
        ("vllm.model_executor.models.qwen3_5_mtp", "Qwen3_5MultiTokenPredictor"),
    ],
)
def test_mtp_fc_still_forced_unquantized_under_modelopt_fp4(module: str, qualname: str) -> None:
    """P2 overrides this hard-code when the checkpoint stores ``mtp.fc`` NVFP4."""
    src = _source(module, qualname)  # the class: its __init__ is wrapped by torch.compile support
    assert 'get_name() == "modelopt_fp4"' in src, (
        f"{qualname} no longer forces mtp.fc unquantized under modelopt_fp4: drop that "
        "quirk from the profile's stock behaviour"
    )


def test_loader_folder_resolution_still_applies() -> None:
    """`compat.resolved_folder` calls ``DefaultModelLoader._prepare_weights(model,
    subfolder, revision, fall_back_to_pt, allow_patterns_overrides)`` and takes the
    folder it returns first; rewrite it if that signature moves."""
    from vllm.model_executor.model_loader.default_loader import DefaultModelLoader

    assert _params(DefaultModelLoader._prepare_weights)[:6] == [
        "self", "model_name_or_path", "subfolder", "revision", "fall_back_to_pt",
        "allow_patterns_overrides"]
    assert "_prepare_weights" in inspect.getsource(DefaultModelLoader.download_model)


def test_env_registry_still_applies() -> None:
    """`compat.register_env_vars` adds to ``envs.environment_variables``, the registry
    ``Platform.validate_environ`` checks ``VLLM_*`` variables against."""
    from vllm.platforms.interface import Platform

    assert "envs.environment_variables" in inspect.getsource(Platform.validate_environ)
    from vllm import envs

    added = compat.register_env_vars({"VLLM_DRAFT_QUANT_UPSTREAM_CHECK": ""})
    assert added == ["VLLM_DRAFT_QUANT_UPSTREAM_CHECK"]
    assert envs.is_set("VLLM_DRAFT_QUANT_UPSTREAM_CHECK") is False
    del envs.environment_variables["VLLM_DRAFT_QUANT_UPSTREAM_CHECK"]
