"""More test-only CPU shims: FP8-block and MXFP4 linears in the CUDA wheel on a CPU.

Registered in ``cpu_shims.SHIMS`` (same rules: each shim changes *where* a kernel
runs, never *which* quantization method vLLM picks or how it loads weights; each is
idempotent and keeps the original it replaces).

Ledger (continues ``cpu_shims.py``)
----------------------------------
4. ``fp8-block-linear-cpu``
   What: lets vLLM's own ``CPUFp8BlockScaledMMKernel`` be selected.
   Why: ``kernels/linear/__init__.py:_POSSIBLE_FP8_BLOCK_KERNELS[CPU]`` has only the
   CPU build's kernels; in the CUDA wheel ``ops._supports_cpu_fp8_w8a16`` is False
   ("fp8_scaled_mm_cpu op not available"), so building any DeepSeek-native FP8-block
   linear raises "Failed to find a kernel that can implement the ScaledMM linear
   layer".
   How: wraps ``CPUFp8BlockScaledMMKernel.is_supported`` to answer True on the CPU
   platform. Weight creation and loading are the FP8-block method's own; the kernel's
   post-load VNNI repack (``torch.ops._C.convert_weight_packed``) is a CUDA-wheel-only
   op, tolerated by shim 3.
5. ``mxfp4-linear-cpu``
   What: registers vLLM's own ``EmulationMxfp4LinearKernel`` for the CPU platform.
   Why: ``_POSSIBLE_MXFP4_KERNELS`` has no CPU entry ("Failed to find a kernel that
   can implement the MXFP4 linear layer"), and the emulation kernel's
   ``can_implement`` also requires the ``amd-quark`` package, which only its forward
   pass (activation quant-dequant) uses.
   How: ``register_linear_kernel(EmulationMxfp4LinearKernel, PlatformEnum.CPU,
   "mxfp4")`` and, in the emulation module only, ``has_quark`` answers True.
   Loading and post-load processing (a no-op unless
   ``VLLM_MXFP4_EMULATION_DEQUANT_AT_LOAD``) are unchanged; a forward pass would
   still need amd-quark.
"""

from __future__ import annotations

from typing import Any


def fp8_block_linear_cpu() -> None:
    from vllm.model_executor.kernels.linear.scaled_mm import cpu as cpu_kernels
    from vllm.platforms import current_platform

    cls = cpu_kernels.CPUFp8BlockScaledMMKernel
    original = cls.__dict__["is_supported"].__func__
    if getattr(original, "__vdq_shim__", False):
        return

    def is_supported(klass: Any, compute_capability: int | None = None) -> tuple[bool, None]:
        del klass, compute_capability
        return (True, None) if current_platform.is_cpu() else (False, None)

    is_supported.__vdq_shim__ = True  # type: ignore[attr-defined]
    is_supported.__wrapped__ = original  # type: ignore[attr-defined]
    cls.is_supported = classmethod(is_supported)  # type: ignore[method-assign,assignment]


def mxfp4_linear_cpu() -> None:
    from vllm.model_executor.kernels.linear import (
        _POSSIBLE_MXFP4_KERNELS,
        register_linear_kernel,
    )
    from vllm.model_executor.kernels.linear.mxfp4 import emulation
    from vllm.platforms import PlatformEnum

    kernel = emulation.EmulationMxfp4LinearKernel
    if kernel not in _POSSIBLE_MXFP4_KERNELS.get(PlatformEnum.CPU, []):
        register_linear_kernel(kernel, PlatformEnum.CPU, "mxfp4")
    if getattr(emulation.has_quark, "__wrapped__", None) is None:
        original = emulation.has_quark

        def has_quark() -> bool:
            return True

        has_quark.__wrapped__ = original  # type: ignore[attr-defined]
        emulation.has_quark = has_quark
