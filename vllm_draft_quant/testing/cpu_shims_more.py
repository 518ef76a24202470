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
5. ``mxfp4-emulation-cpu``
   What: registers vLLM's own ``EmulationMxfp4LinearKernel`` for the CPU platform
   and lets vLLM's own OCP-MX MoE emulation backend pass its package check.
   Why: ``_POSSIBLE_MXFP4_KERNELS`` has no CPU entry ("Failed to find a kernel that
   can implement the MXFP4 linear layer"); ``select_mxfp4_moe_backend`` finds no MoE
   backend for grouped-top-k (DeepSeek) or Step-3.5 routing on CPU ("No MXFP4 MoE
   backend supports the deployment configuration"); and both emulation paths require
   the ``amd-quark`` package, which only their forward passes (activation
   quant-dequant) use.
   How: ``register_linear_kernel(EmulationMxfp4LinearKernel, PlatformEnum.CPU,
   "mxfp4")``; ``has_quark`` answers True in the two emulation modules only
   (``kernels/linear/mxfp4/emulation.py``, ``fused_moe/experts/
   ocp_mx_emulation_moe.py``); and, as shim 2 does for NVFP4, the name
   ``select_mxfp4_moe_backend`` in ``quantization/quark/quark_moe.py`` tries the
   original and, when it raises, returns the EMULATION backend and its experts
   class. Weight creation, loading and post-load processing are the Quark methods'
   own; a forward pass would still need amd-quark (and Triton on a GPU).

``POST_LOAD_CPU_GAPS`` (read by shim 3): post-load failures that only mean "no CPU
kernel for this shape", tolerated like CUDA-only ops. ``Unsupported FP8 MoE backend:
NONE``: vLLM's CPU FP8 MoE experts take 128x128 blocks only, the factory writes
32x128 blocks (see ``_formats_more.py``), so no MoE backend is selected and
``Fp8MoEMethod.process_weights_after_loading`` raises after every tensor loaded.
``does not support current device cpu``: the MXFP4 MoE emulation experts (shim 5) are
Triton experts; post-load processing builds them and raises on a CPU.
"""

from __future__ import annotations

from typing import Any

POST_LOAD_CPU_GAPS = (
    "Unsupported FP8 MoE backend: NONE",
    "does not support this MoE deployment since kernel does not support current device cpu",
)


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


def _quark_check_passes(module: Any) -> None:
    if getattr(module.has_quark, "__wrapped__", None) is not None:
        return
    original = module.has_quark

    def has_quark() -> bool:
        return True

    has_quark.__wrapped__ = original  # type: ignore[attr-defined]
    module.has_quark = has_quark


def mxfp4_emulation_cpu() -> None:
    from vllm.model_executor.kernels.linear import (
        _POSSIBLE_MXFP4_KERNELS,
        register_linear_kernel,
    )
    from vllm.model_executor.kernels.linear.mxfp4 import emulation
    from vllm.model_executor.layers.fused_moe.experts import ocp_mx_emulation_moe
    from vllm.platforms import PlatformEnum

    kernel = emulation.EmulationMxfp4LinearKernel
    if kernel not in _POSSIBLE_MXFP4_KERNELS.get(PlatformEnum.CPU, []):
        register_linear_kernel(kernel, PlatformEnum.CPU, "mxfp4")
    _quark_check_passes(emulation)
    _quark_check_passes(ocp_mx_emulation_moe)
    _mxfp4_moe_emulation_fallback()


def _mxfp4_moe_emulation_fallback() -> None:
    from vllm.model_executor.layers.fused_moe.oracle import mxfp4 as oracle
    from vllm.model_executor.layers.quantization.quark import quark_moe

    if getattr(quark_moe.select_mxfp4_moe_backend, "__wrapped__", None) is not None:
        return

    def select_with_emulation_fallback(*args: Any, **kwargs: Any) -> Any:
        try:
            return oracle.select_mxfp4_moe_backend(*args, **kwargs)
        except (NotImplementedError, ValueError):
            backend = oracle.Mxfp4MoeBackend.EMULATION
            return backend, oracle.backend_to_kernel_cls(backend)[0]

    select_with_emulation_fallback.__wrapped__ = oracle.select_mxfp4_moe_backend  # type: ignore[attr-defined]
    quark_moe.select_mxfp4_moe_backend = select_with_emulation_fallback
