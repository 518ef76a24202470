"""Test-only shims that let the CUDA wheel of vLLM build quantized models on a CPU.

Imported only by ``_drafter_worker`` (a subprocess started by the harness, for the
tests and ``vllm-draft-quant demo``), never by the plugin itself.
Each shim changes *where* a kernel runs, never *which* quantization method vLLM
picks or how it loads weights, so what a test observes about loading is stock vLLM.
Every shim is idempotent and keeps the original it replaces.

Ledger
------
1. ``nvfp4-linear-cpu``
   What: registers vLLM's own ``EmulationNvFp4LinearKernel`` for the CPU platform.
   Why: ``kernels/linear/__init__.py:_POSSIBLE_NVFP4_KERNELS`` has no CPU entry, so
   building any NVFP4 linear raises "Failed to find a kernel that can implement
   the NVFP4 linear layer".
   How: vLLM's public ``register_linear_kernel(cls, PlatformEnum.CPU, "nvfp4")``.
2. ``nvfp4-moe-emulation``
   What: makes ``select_nvfp4_moe_backend`` return the EMULATION backend.
   Why: ``fused_moe/oracle/nvfp4.py:select_nvfp4_moe_backend`` finds no backend on
   CPU ("No NvFp4 MoE backend supports the deployment configuration"), and the
   explicit ``moe_backend="emulation"`` path checks the same support predicate.
   How: replaces the name in the two modules that imported it
   (``quantization/modelopt.py`` and the compressed-tensors copy in
   ``compressed_tensors_moe/compressed_tensors_moe_w4a4_nvfp4.py``) with a wrapper
   that tries the original and, when it raises, returns EMULATION and its kernel.
3. ``post-load-tolerance``
   What: records, instead of raising, a failure in post-load weight processing
   that comes from a CUDA-wheel-only custom op (``torch.ops._C.*`` is missing on
   CPU, e.g. ``convert_weight_packed``, ``prepack_moe_weight``,
   ``static_scaled_fp8_quant``), and lets the processing of the other modules go on.
   Why: by then every checkpoint tensor has been loaded; the op only repacks for a
   kernel this machine cannot run. Without the shim the first unquantized linear
   stops post-processing for the whole model.
   How: wraps ``model_loader/base_loader.py``'s reference to
   ``utils.process_weights_after_loading``. Before calling it, the wrapper runs the
   registered observers (the worker snapshots parameters exactly as loaded) and
   wraps, on this model's *instances* only, each ``quant_method.
   process_weights_after_loading`` and each attention layer's
   ``process_weights_after_loading``. Only errors whose text names a ``_C`` op or
   CUDA are tolerated (recorded with the module's prefix); anything else is
   re-raised unchanged. While the worker builds a *target* model every post-load
   failure is recorded instead (``TOLERATE_ANY_POST_LOAD``): a CUDA-only op skipped
   in one module can make a later step fail on CPU (e.g. MLA's ``kv_b_proj``
   dequantisation after compressed-tensors FP8), and the drafter depends on the
   target only through its construction. In a drafter, an attention layer's own
   post-processing failure is tolerated only after a CUDA-only op was skipped in
   the same model (it reads the weights that op should have repacked).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vllm_draft_quant.testing import cpu_shims_more as _more

_APPLIED: dict[str, bool] = {}
# filled by the post-load wrapper: {"module": ..., "error_type": ..., "error_message": ...}
POST_LOAD_ERRORS: list[dict[str, str]] = []
# called with the model right after load_weights, before post-processing
BEFORE_POST_LOAD: list[Callable[[Any], None]] = []
# set by the worker while it builds a *target*: any post-load failure is recorded
# (a target's post-processing touches only the target's own modules; the drafter
# depends on the target only through what its construction did to the shared
# quant config)
TOLERATE_ANY_POST_LOAD = [False]

_CUDA_ONLY_MARKERS = ("'_C' object has no attribute", "torch.ops._C", "_C::", "CUDA", "cuda")


def _nvfp4_linear_cpu() -> None:
    from vllm.model_executor.kernels.linear import (
        _POSSIBLE_NVFP4_KERNELS,
        register_linear_kernel,
    )
    from vllm.model_executor.kernels.linear.nvfp4.emulation import (
        EmulationNvFp4LinearKernel,
    )
    from vllm.platforms import PlatformEnum

    if EmulationNvFp4LinearKernel not in _POSSIBLE_NVFP4_KERNELS.get(PlatformEnum.CPU, []):
        register_linear_kernel(EmulationNvFp4LinearKernel, PlatformEnum.CPU, "nvfp4")


def _nvfp4_moe_emulation() -> None:
    import importlib

    from vllm.model_executor.layers.fused_moe.oracle import nvfp4 as oracle

    def select_with_emulation_fallback(*args: Any, **kwargs: Any) -> Any:
        try:
            return oracle.select_nvfp4_moe_backend(*args, **kwargs)
        except (NotImplementedError, ValueError):
            backend = oracle.NvFp4MoeBackend.EMULATION
            return backend, oracle.backend_to_kernel_cls(backend)[0]

    select_with_emulation_fallback.__wrapped__ = oracle.select_nvfp4_moe_backend  # type: ignore[attr-defined]
    for modname in (
        "vllm.model_executor.layers.quantization.modelopt",
        "vllm.model_executor.layers.quantization.compressed_tensors."
        "compressed_tensors_moe.compressed_tensors_moe_w4a4_nvfp4",
    ):
        mod = importlib.import_module(modname)
        if getattr(mod.select_nvfp4_moe_backend, "__wrapped__", None) is None:
            mod.select_nvfp4_moe_backend = select_with_emulation_fallback


def _is_cuda_only(exc: BaseException) -> bool:
    if TOLERATE_ANY_POST_LOAD[0]:
        return True
    text = f"{type(exc).__name__}: {exc}"
    return any(marker in text for marker in (*_CUDA_ONLY_MARKERS, *_more.POST_LOAD_CPU_GAPS))


def _record(module: Any, what: str, exc: BaseException) -> None:
    prefix = getattr(module, "prefix", None) or getattr(module, "layer_name", "") or ""
    POST_LOAD_ERRORS.append(
        {
            "module": str(prefix),
            "what": what,
            "error_type": type(exc).__name__,
            "error_message": (str(exc).splitlines() or [""])[0][:300],
        }
    )


def _tolerant(
    bound: Callable[..., Any], module: Any, what: str, *, after_skip: bool = False
) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return bound(*args, **kwargs)
        except Exception as exc:
            # an attention layer's own post-processing (e.g. MLA absorbing kv_b_proj)
            # reads weights whose CUDA-only repacking was skipped above
            if not (_is_cuda_only(exc) or (after_skip and POST_LOAD_ERRORS)):
                raise
            _record(module, what, exc)
            return None

    call.__wrapped__ = bound  # type: ignore[attr-defined]
    return call


def _wrap_instances(model: Any) -> None:
    from vllm.model_executor.layers.attention_layer_base import AttentionLayerBase

    for module in model.modules():
        qm = getattr(module, "quant_method", None)
        fn = getattr(qm, "process_weights_after_loading", None)
        if fn is not None and getattr(fn, "__wrapped__", None) is None:
            qm.process_weights_after_loading = _tolerant(fn, module, type(qm).__name__)
        if isinstance(module, AttentionLayerBase):
            fn = getattr(module, "process_weights_after_loading", None)
            if fn is not None and getattr(fn, "__wrapped__", None) is None:
                module.process_weights_after_loading = _tolerant(
                    fn, module, type(module).__name__, after_skip=True
                )


def _post_load_tolerance() -> None:
    from vllm.model_executor.model_loader import base_loader

    original = base_loader.process_weights_after_loading
    if getattr(original, "__wrapped__", None) is not None:
        return

    def tolerant(model: Any, model_config: Any, target_device: Any) -> None:
        for observer in BEFORE_POST_LOAD:
            observer(model)
        _wrap_instances(model)
        try:
            original(model, model_config, target_device)
        except Exception as exc:
            if not _is_cuda_only(exc):
                raise
            _record(model, "model", exc)

    tolerant.__wrapped__ = original  # type: ignore[attr-defined]
    base_loader.process_weights_after_loading = tolerant


SHIMS: dict[str, Callable[[], None]] = {
    "nvfp4-linear-cpu": _nvfp4_linear_cpu,
    "nvfp4-moe-emulation": _nvfp4_moe_emulation,
    "post-load-tolerance": _post_load_tolerance,
    # 4-5: ledger in cpu_shims_more.py (DeepSeek FP8-block, Quark MXFP4)
    "fp8-block-linear-cpu": _more.fp8_block_linear_cpu,
    "mxfp4-emulation-cpu": _more.mxfp4_emulation_cpu,
}


def apply_all() -> list[str]:
    """Apply every shim once; return their names."""
    for name, shim in SHIMS.items():
        if not _APPLIED.get(name):
            shim()
            _APPLIED[name] = True
    return list(SHIMS)
