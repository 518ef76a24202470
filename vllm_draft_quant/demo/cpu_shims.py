"""CPU stand-ins that let the CUDA wheel of vLLM build quantized models on a CPU.

Imported only by ``worker.py`` (a subprocess started by ``launcher.py`` for
``vllm-draft-quant demo``, and by the test suite's build service), never by the
plugin itself: nothing on the plugin's runtime path imports this module, and the
shims are applied only when that worker calls `apply_all`.
Each shim changes *where* a kernel runs, never *which* quantization method vLLM
picks or how it loads weights, so what a test observes about loading is stock vLLM.
Every shim is idempotent and keeps the original it replaces.

This ledger has a second half, for *running* models (forward passes, sampling,
speculative decoding): ``cpu_forward.py`` (entries F1-F21), test-only, used by the
end-to-end tier ``tests/e2e``; it applies shims 1 and 2 of this ledger too.

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

6. ``dense-attention-for-sparse-cpu``
   What: on the CPU platform, selects the dense attention backend for layers that ask
   for sparse attention (DeepSeek Sparse Attention: GLM-5.x, DeepSeek-V3.2).
   Why: ``platforms/cpu.py:CpuPlatform.get_attn_backend_cls`` raises "Sparse Attention
   is not supported on CPU." for ``use_sparse``, so no GLM-5 / DeepSeek-V3.2 model or
   drafter can be constructed. Attention backends hold no checkpoint weights (the
   indexer's projections are ordinary linear layers, built and loaded as vLLM builds
   them), so what a test observes about loading is unchanged.
   How: wraps that classmethod; when ``attn_selector_config.use_sparse`` is set it
   asks the original with ``use_sparse=False`` (the CPU MLA backend), otherwise it
   calls the original unchanged.

7. ``wna16-moe-cpu``
   What: makes ``select_wna16_moe_backend`` return vLLM's own CPU backend
   (``WNA16MoEBackend.CPU``, ``CPUExpertsInt4``) when it finds none; lets vLLM's
   ``CPUWNA16LinearKernel`` take output/input sizes that are not multiples of 32; and
   builds AutoRound (INC) INT4 experts with the method vLLM builds for them on GPUs.
   Why: ``fused_moe/oracle/int_wna16.py:select_wna16_moe_backend`` offers only
   ``ZEN_CPU`` (AOCL, off unless ``VLLM_CPU_INT4_W4A8``) and ``CPU``, whose experts
   require AMX tiles (``cpu_moe.py:CPUExpertsInt4._supports_current_device``); on
   other CPUs every GPTQ/AWQ/compressed-tensors INT4 MoE raises "No WNA16 MoE backend
   supports the deployment configuration" at construction.
   How: as shim 2, the name in each module that imported it (``auto_gptq.py``,
   ``auto_awq.py``, ``moe_wna16.py``, ``compressed_tensors_moe_wna16.py``,
   ``quark_moe.py``) tries the original and, when it raises, returns the CPU backend
   and its experts class. Weight creation and loading are the INT4 MoE methods' own;
   the CPU kernel's post-load repack is a CUDA-wheel-only op (tolerated by shim 3).
   ``CPUWNA16LinearKernel.can_implement`` refuses sizes that are not multiples of 32
   (``kernels/linear/mixed_precision/cpu.py``); the tiny DeepSeek's fused
   ``fused_qkv_a_proj`` has 144 outputs (real ones: 2112), so its wrapper accepts a
   refusal that names only those multiples (construction and loading only; a forward
   pass would need real sizes). ``inc/schemes/inc_wna16_moe.py:INCWNA16MoEScheme.
   get_method`` builds an *unquantized* MoE method on the CPU platform, so no AutoRound
   INT4 experts load on a CPU; its wrapper takes the GPTQ/AWQ branch vLLM takes on GPUs
   (``_build_gptq_method`` / ``_build_awq_method``). This one changes which method vLLM
   picks, to the one it picks on the platform the checkpoints are for.

``POST_LOAD_CPU_GAPS`` (read by shim 3): post-load failures that only mean "no CPU
kernel for this shape", tolerated like CUDA-only ops. ``Unsupported FP8 MoE backend:
NONE``: vLLM's CPU FP8 MoE experts take 128x128 blocks only, the factory writes
32x128 blocks (see ``tests/support/_formats_more.py``), so no MoE backend is selected and
``Fp8MoEMethod.process_weights_after_loading`` raises after every tensor loaded.
``does not support current device cpu``: the MXFP4 MoE emulation experts (shim 5) are
Triton experts; post-load processing builds them and raises on a CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
# see the ledger: failures that only mean "no CPU kernel for this shape"
POST_LOAD_CPU_GAPS = (
    "Unsupported FP8 MoE backend: NONE",
    "does not support this MoE deployment since kernel does not support current device cpu",
)


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


def _emulation_fallback(
    select: Callable[..., Any], emulation: Any, oracle: Any
) -> Callable[..., Any]:
    """``select`` (a MoE backend oracle), or, when it finds no backend on this CPU, the
    ``emulation`` backend and its experts class (shims 2 and 5)."""

    def select_with_emulation_fallback(*args: Any, **kwargs: Any) -> Any:
        try:
            return select(*args, **kwargs)
        except (NotImplementedError, ValueError):
            return emulation, oracle.backend_to_kernel_cls(emulation)[0]

    select_with_emulation_fallback.__wrapped__ = select  # type: ignore[attr-defined]
    return select_with_emulation_fallback


def _nvfp4_moe_emulation() -> None:
    import importlib

    from vllm.model_executor.layers.fused_moe.oracle import nvfp4 as oracle

    select_with_emulation_fallback = _emulation_fallback(
        oracle.select_nvfp4_moe_backend, oracle.NvFp4MoeBackend.EMULATION, oracle
    )
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
    return any(marker in text for marker in (*_CUDA_ONLY_MARKERS, *POST_LOAD_CPU_GAPS))


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


def _fp8_block_linear_cpu() -> None:
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


def _mxfp4_emulation_cpu() -> None:
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

    quark_moe.select_mxfp4_moe_backend = _emulation_fallback(
        oracle.select_mxfp4_moe_backend, oracle.Mxfp4MoeBackend.EMULATION, oracle
    )


def _dense_attention_for_sparse_cpu() -> None:
    from vllm.platforms.cpu import CpuPlatform

    original = CpuPlatform.__dict__["get_attn_backend_cls"].__func__
    if getattr(original, "__vdq_shim__", False):
        return

    def get_attn_backend_cls(klass: Any, selected_backend: Any, attn_selector_config: Any,
                             *args: Any, **kwargs: Any) -> Any:
        if getattr(attn_selector_config, "use_sparse", False):
            attn_selector_config = attn_selector_config._replace(use_sparse=False)
        return original(klass, selected_backend, attn_selector_config, *args, **kwargs)

    get_attn_backend_cls.__vdq_shim__ = True  # type: ignore[attr-defined]
    get_attn_backend_cls.__wrapped__ = original  # type: ignore[attr-defined]
    CpuPlatform.get_attn_backend_cls = classmethod(get_attn_backend_cls)  # type: ignore[method-assign,assignment]


_WNA16_IMPORTERS = (
    "vllm.model_executor.layers.quantization.auto_gptq",
    "vllm.model_executor.layers.quantization.auto_awq",
    "vllm.model_executor.layers.quantization.moe_wna16",
    "vllm.model_executor.layers.quantization.compressed_tensors.compressed_tensors_moe."
    "compressed_tensors_moe_wna16",
    "vllm.model_executor.layers.quantization.quark.quark_moe",
)


def _wna16_linear_any_size() -> None:
    from vllm.model_executor.kernels.linear.mixed_precision.cpu import CPUWNA16LinearKernel

    original = CPUWNA16LinearKernel.can_implement
    if getattr(original, "__wrapped__", None) is not None:
        return

    def can_implement(klass: Any, c: Any) -> tuple[bool, str | None]:
        ok, reason = original.__func__(klass, c)  # type: ignore[attr-defined]
        if not ok and reason and "supported sizes are multiples of 32" in reason:
            return True, None
        return ok, reason

    can_implement.__wrapped__ = original  # type: ignore[attr-defined]
    CPUWNA16LinearKernel.can_implement = classmethod(can_implement)  # type: ignore[method-assign,assignment]


def _inc_moe_gpu_branch() -> None:
    from vllm.model_executor.layers.quantization.inc.schemes.inc_wna16_moe import (
        INCWNA16MoEScheme,
    )

    original = INCWNA16MoEScheme._build_cpu_method
    if getattr(original, "__wrapped__", None) is not None:
        return

    def build(self: Any, layer: Any) -> Any:
        if self.layer_config.is_gptq:
            return self._build_gptq_method(layer)
        if self.layer_config.is_awq:
            return self._build_awq_method(layer)
        return original(self, layer)

    build.__wrapped__ = original  # type: ignore[attr-defined]
    INCWNA16MoEScheme._build_cpu_method = build  # type: ignore[method-assign]


def _wna16_moe_cpu() -> None:
    import importlib

    from vllm.model_executor.layers.fused_moe.oracle import int_wna16 as oracle

    _wna16_linear_any_size()
    _inc_moe_gpu_branch()

    fallback = _emulation_fallback(oracle.select_wna16_moe_backend,
                                   oracle.WNA16MoEBackend.CPU, oracle)
    for modname in _WNA16_IMPORTERS:
        mod = importlib.import_module(modname)
        select = getattr(mod, "select_wna16_moe_backend", None)
        if select is not None and getattr(select, "__wrapped__", None) is None:
            mod.select_wna16_moe_backend = fallback


SHIMS: dict[str, Callable[[], None]] = {
    "nvfp4-linear-cpu": _nvfp4_linear_cpu,
    "nvfp4-moe-emulation": _nvfp4_moe_emulation,
    "post-load-tolerance": _post_load_tolerance,
    "fp8-block-linear-cpu": _fp8_block_linear_cpu,
    "mxfp4-emulation-cpu": _mxfp4_emulation_cpu,
    "dense-attention-for-sparse-cpu": _dense_attention_for_sparse_cpu,
    "wna16-moe-cpu": _wna16_moe_cpu,
}


def apply_all() -> list[str]:
    """Apply every shim once; return their names."""
    for name, shim in SHIMS.items():
        if not _APPLIED.get(name):
            shim()
            _APPLIED[name] = True
    return list(SHIMS)
