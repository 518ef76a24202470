"""The demo's CPU stand-ins (``vllm_draft_quant/demo/cpu_shims.py``): each still needed.

One test per ledger entry of that module, against the installed vLLM on the CPU
platform, with no shim applied (this process never calls ``cpu_shims.apply_all``; only
the worker subprocesses do). Each fails once the CUDA wheel can do on a CPU what the
shim stands in for: then delete the shim and its entry. Their counterpart for the
plugin's own patches is ``test_upstream_compat.py``.
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from vllm_draft_quant.demo import cpu_shims


@pytest.fixture(scope="module", autouse=True)
def _no_shim_applied() -> None:
    from vllm.platforms import current_platform

    assert current_platform.is_cpu(), "the integration tier runs on vLLM's CPU platform"
    assert not any(cpu_shims._APPLIED.values()), "a shim was applied in the pytest process"


def _cpu_kernels(table: str) -> list[Any]:
    from vllm.model_executor.kernels import linear
    from vllm.platforms import PlatformEnum

    return list(getattr(linear, table).get(PlatformEnum.CPU, []))


def _experts_for_this_device(oracle_module: str, backend_enum: str) -> list[str]:
    """Names of the backends of a MoE oracle whose experts run on the current device."""
    oracle = importlib.import_module(oracle_module)
    usable, checked = [], 0
    for backend in getattr(oracle, backend_enum):
        try:
            classes = oracle.backend_to_kernel_cls(backend)
        except Exception:  # NONE, or a backend this wheel cannot build: not usable here
            continue
        checked += 1
        if any(c._supports_current_device() for c in classes):
            usable.append(backend.name)
    assert checked, f"{oracle_module}: no backend could be inspected; rewrite this test"
    return usable


def test_shim1_nvfp4_linear_has_no_cpu_kernel() -> None:
    assert _cpu_kernels("_POSSIBLE_NVFP4_KERNELS") == [], (
        "vLLM now registers an NVFP4 linear kernel for the CPU: drop shim 1 (nvfp4-linear-cpu)")


def test_shim2_no_nvfp4_moe_backend_runs_on_cpu() -> None:
    usable = _experts_for_this_device(
        "vllm.model_executor.layers.fused_moe.oracle.nvfp4", "NvFp4MoeBackend")
    assert usable == [], f"NVFP4 MoE backends {usable} run on CPU: drop shim 2 (nvfp4-moe-emulation)"


def test_shim3_cuda_only_post_load_ops_are_missing() -> None:
    import torch

    present = [op for op in ("prepack_moe_weight", "convert_weight_packed",
                             "static_scaled_fp8_quant") if hasattr(torch.ops._C, op)]
    assert present == [], (
        f"the wheel now has {present} on CPU: narrow shim 3 (post-load-tolerance) to what "
        "is still missing")


def test_shim4_fp8_block_cpu_kernel_is_unsupported_in_this_wheel() -> None:
    import vllm._custom_ops as ops

    assert ops._supports_cpu_fp8_w8a16 is False, (
        "the wheel supports fp8_scaled_mm_cpu: drop shim 4 (fp8-block-linear-cpu)")


def test_shim5_mxfp4_has_no_cpu_path() -> None:
    from vllm.model_executor.kernels.linear.mxfp4 import emulation

    assert _cpu_kernels("_POSSIBLE_MXFP4_KERNELS") == [], (
        "vLLM now registers an MXFP4 linear kernel for the CPU: drop that part of shim 5")
    assert not emulation.has_quark(), (
        "amd-quark is installed: shim 5 no longer needs to answer has_quark")
    usable = _experts_for_this_device(
        "vllm.model_executor.layers.fused_moe.oracle.mxfp4", "Mxfp4MoeBackend")
    assert usable == [], f"MXFP4 MoE backends {usable} run on CPU: drop that part of shim 5"


def test_shim6_cpu_refuses_sparse_attention() -> None:
    import torch
    from vllm.platforms.cpu import CpuPlatform
    from vllm.v1.attention.selector import AttentionSelectorConfig

    cfg = AttentionSelectorConfig(head_size=64, dtype=torch.bfloat16, kv_cache_dtype=None,
                                  block_size=None, use_mla=True, use_sparse=True)
    with pytest.raises(NotImplementedError, match="Sparse Attention is not supported on CPU"):
        CpuPlatform.get_attn_backend_cls(None, cfg)  # type: ignore[arg-type]


def test_shim7_no_wna16_moe_backend_runs_on_this_cpu() -> None:
    """The CPU backends are AOCL's (off unless ``VLLM_CPU_INT4_W4A8``) and one needing AMX
    tiles; on a CPU without them no INT4 MoE (GPTQ/AWQ/compressed-tensors) constructs."""
    usable = _experts_for_this_device(
        "vllm.model_executor.layers.fused_moe.oracle.int_wna16", "WNA16MoEBackend")
    assert usable == [], f"WNA16 MoE backends {usable} run on this CPU: drop shim 7 (wna16-moe-cpu)"


def test_shim7_cpu_wna16_linear_refuses_small_sizes_and_inc_moe_is_unquantized() -> None:
    import inspect

    import torch
    from vllm.model_executor.kernels.linear import MPLinearLayerConfig
    from vllm.model_executor.kernels.linear.mixed_precision.cpu import CPUWNA16LinearKernel
    from vllm.model_executor.layers.quantization.inc.schemes.inc_wna16_moe import (
        INCWNA16MoEScheme,
    )
    from vllm.scalar_type import scalar_types

    config = MPLinearLayerConfig(
        full_weight_shape=(128, 144), partition_weight_shape=(128, 144),
        weight_type=scalar_types.uint4b8, act_type=torch.bfloat16, group_size=32,
        zero_points=False)
    ok, reason = CPUWNA16LinearKernel.can_implement(config)
    assert not ok and "multiples of 32" in str(reason), (
        "CPUWNA16LinearKernel takes any size now: drop that part of shim 7")
    assert "UnquantizedFusedMoEMethod" in inspect.getsource(INCWNA16MoEScheme._build_cpu_method), (
        "INC builds quantized INT4 experts on CPU now: drop that part of shim 7")
