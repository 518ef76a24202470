"""Everything that depends on the vLLM version lives here.

- ``SUPPORTED``: the vLLM range this release is tested against
  (`core.vllm_range.SUPPORTED_VLLM`, equal to ``pyproject.toml``'s requirement).
- How to read a quant config's scheme, clear its exclusions, and build a
  config for a scheme the checkpoint's own config does not describe.

To support a new vLLM minor: read the ledger in ``patches.py``, re-check each
patched signature, run the integration tier, then widen ``SUPPORTED`` and the
pyproject range together (CONTRIBUTING.md, "Bumping vLLM").
"""

from __future__ import annotations

import copy
from typing import Any

from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.core.vllm_range import SUPPORTED_VLLM, bounds
from vllm_draft_quant.errors import DraftQuantError, UnsupportedVllmError

SUPPORTED = SUPPORTED_VLLM  # the one constant lives in core (fix's stock model reads it too)


def vllm_version() -> str:
    from importlib.metadata import version

    return version("vllm")


def _parse(v: str) -> tuple[int, ...]:
    from packaging.version import Version

    return Version(v).release[:3]


def check_supported(version: str | None = None) -> str | None:
    """None if supported, else a one-line reason."""
    v = version or vllm_version()
    try:
        rel = _parse(v)
    except Exception:
        return f"cannot parse the vLLM version {v!r}"
    low, below = bounds()
    if low <= rel < below:
        return None
    return (f"vllm {v} is outside the range vllm-draft-quant supports ({SUPPORTED}); "
            "draft layers load as stock vLLM loads them. Install a matching "
            "vllm-draft-quant release.")


def require_supported(version: str | None = None) -> None:
    reason = check_supported(version)
    if reason:
        raise UnsupportedVllmError(reason)


def scheme_of(config: Any) -> Scheme | None:
    """The scheme a vLLM quant config quantizes with, when it has one."""
    if config is None:
        return Scheme.UNQUANTIZED
    name = config.get_name()
    if name == "modelopt_fp4":
        return Scheme.NVFP4
    if name == "modelopt":
        return Scheme.FP8
    if name == "fp8":
        return Scheme.FP8_BLOCK if getattr(config, "weight_block_size", None) else Scheme.FP8
    if name == "compressed-tensors":
        return _ct_scheme(config)
    if name == "quark":
        return _quark_scheme(config)
    return None


def _quark_scheme(config: Any) -> Scheme | None:
    """Quark: the global weight dtype (per-layer configs are not forced)."""
    qc = getattr(config, "quant_config", None)
    glob = qc.get("global_quant_config") if isinstance(qc, dict) else None
    weight = glob.get("weight") if isinstance(glob, dict) else None
    if not isinstance(weight, dict) or qc.get("layer_quant_config"):
        return None
    dtype = str(weight.get("dtype", "")).lower()
    return {"fp4": Scheme.MXFP4, "mxfp4": Scheme.MXFP4}.get(dtype)


def _ct_scheme(config: Any) -> Scheme | None:
    schemes = set()
    for spec in getattr(config, "target_scheme_map", {}).values():
        w = spec.get("weights") if isinstance(spec, dict) else None
        if w is None:
            continue
        bits, typ = getattr(w, "num_bits", None), str(getattr(w, "type", ""))
        strategy = str(getattr(w, "strategy", ""))
        if typ.endswith("float") and bits == 4:
            schemes.add(Scheme.NVFP4)
        elif typ.endswith("float") and bits == 8:
            schemes.add(Scheme.FP8_BLOCK if strategy.endswith("block") else Scheme.FP8)
        elif typ.endswith("int") and bits == 4:
            schemes.add(Scheme.INT4)
    return schemes.pop() if len(schemes) == 1 else None


def _without_exclusions(config: Any) -> Any:
    """A shallow copy of ``config`` that excludes nothing (shares everything else).

    - ModelOpt ``exclude_modules``, compressed-tensors ``ignore``, fp8
      ``ignored_layers``: emptied.
    - compressed-tensors: its single scheme also targets every layer (``re:.*``),
      since its ``Linear`` class target never matches a ``ParallelLMHead``
      (``CompressedTensorsConfig.get_quant_method`` builds quantized heads only
      for a matching target).
    - Quark: exclusions live in the ``quant_config`` dict (``exclude``).
    """
    forced = copy.copy(config)
    for attr in ("exclude_modules", "ignore", "ignored_layers", "modules_to_not_convert"):
        if isinstance(getattr(forced, attr, None), list):
            setattr(forced, attr, [])
    if config.get_name() == "compressed-tensors":
        tsm = dict(getattr(config, "target_scheme_map", {}) or {})
        specs = {id(v): v for v in tsm.values()}
        if len(specs) == 1:
            tsm.setdefault("re:.*", next(iter(specs.values())))
        forced.target_scheme_map = tsm
    if config.get_name() == "quark" and isinstance(getattr(config, "quant_config", None), dict):
        forced.quant_config = {**config.quant_config, "exclude": []}
    return forced


def _build(scheme: Scheme) -> Any:
    if scheme is Scheme.NVFP4:
        from vllm.model_executor.layers.quantization.modelopt import ModelOptNvFp4Config

        return ModelOptNvFp4Config.from_config({"quantization": {
            "quant_algo": "NVFP4", "group_size": 16, "kv_cache_quant_algo": None,
            "exclude_modules": []}})
    if scheme is Scheme.FP8:
        from vllm.model_executor.layers.quantization.modelopt import ModelOptFp8Config

        return ModelOptFp8Config.from_config({"quantization": {
            "quant_algo": "FP8", "kv_cache_quant_algo": None, "exclude_modules": []}})
    if scheme is Scheme.FP8_BLOCK:
        from vllm.model_executor.layers.quantization.fp8 import Fp8Config

        return Fp8Config.from_config({"quant_method": "fp8", "activation_scheme": "dynamic",
                                      "weight_block_size": [128, 128]})
    raise DraftQuantError(
        f"the checkpoint stores a draft module as {scheme}, but its quant config describes "
        "another scheme and vllm-draft-quant cannot build a vLLM config for "
        f"{scheme} on its own; add an override for that module or re-export the draft layers."
    )


def config_for(scheme: Scheme, base: Any) -> Any:
    """A quant config that quantizes every layer it is given with ``scheme``."""
    if base is not None and scheme_of(base) is scheme and base.get_name() != "modelopt_mixed":
        return _without_exclusions(base)
    built = _build(scheme)
    if base is not None:
        built.packed_modules_mapping = dict(getattr(base, "packed_modules_mapping", {}) or {})
    return built


def private_copy(config: Any) -> Any:
    """A copy of a quant config that the drafter may mutate without touching the target's."""
    if config is None:
        return None
    dup = copy.copy(config)
    for attr, value in vars(config).items():
        if isinstance(value, (list, dict, set)):
            setattr(dup, attr, copy.copy(value))
    return dup


def own_quant_config(model_config: Any, load_config: Any) -> Any:
    """The quant config of ``model_config``'s own folder, parsed afresh (None if unquantized).

    What vLLM itself builds separate drafts with (``models/utils.py:
    get_draft_quant_config``: Step-3.5 MTP, EAGLE3); the adapter uses it for a draft
    checkpoint that is not the target's folder, so nothing of the target's config leaks in.
    """
    from vllm.config import VllmConfig

    return VllmConfig.get_quantization_config(model_config, load_config)


# ------------------------------------------------------------------ vLLM's names
# Every vLLM module, class and attribute the adapter touches, so a vLLM bump is
# re-checked here (and by tests/integration/test_upstream_compat.py) and nowhere else.

#: the module that defines the model loader P1 wraps (patched right after it is imported)
LOADER_MODULE = "vllm.model_executor.model_loader.base_loader"


def patch_targets() -> dict[str, tuple[Any, str]]:
    """Ledger key -> (owner, attribute) of every function the patch ledger wraps."""
    from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts
    from vllm.model_executor.layers.linear import LinearBase
    from vllm.model_executor.layers.vocab_parallel_embedding import VocabParallelEmbedding
    from vllm.model_executor.model_loader.base_loader import BaseModelLoader

    return {
        "P1 BaseModelLoader.load_model": (BaseModelLoader, "load_model"),
        "P2 LinearBase.__init__": (LinearBase, "__init__"),
        "P3 VocabParallelEmbedding.__init__": (VocabParallelEmbedding, "__init__"),
        "P4 RoutedExperts._get_quant_method": (RoutedExperts, "_get_quant_method"),
    }


def logger() -> Any:
    """vLLM's logger for this plugin (vLLM's handlers, format and VLLM_LOGGING_LEVEL)."""
    from vllm.logger import init_logger

    return init_logger("vllm.draft_quant")


def mtp_completeness_check_disabled() -> Any:
    """vLLM's scoped switch that turns off an MTP drafter's own completeness check
    (``model_loader/mtp_validation.py:disable_mtp_completeness_check``)."""
    from vllm.model_executor.model_loader.mtp_validation import disable_mtp_completeness_check

    return disable_mtp_completeness_check()


def architectures(model_config: Any) -> list[str]:
    """The architectures vLLM resolved for a ``ModelConfig`` (the draft's, for a drafter)."""
    archs = getattr(model_config, "architectures", None) or getattr(
        getattr(model_config, "hf_config", None), "architectures", None) or []
    return [str(a) for a in archs]


def model_source(model_config: Any) -> tuple[str, str | None]:
    """(model path or repo id, revision) a ``ModelConfig`` loads from."""
    return str(model_config.model), getattr(model_config, "revision", None)


def download(loader: Any, model_config: Any) -> None:
    """vLLM's own download step (a no-op when the model is already in the cache)."""
    loader.download_model(model_config)


def target_source(vllm_config: Any) -> tuple[str, str | None] | None:
    """(model, revision) of the target model of a speculative config, if any."""
    spec = getattr(vllm_config, "speculative_config", None)
    tmc = getattr(spec, "target_model_config", None)
    model = getattr(tmc, "model_weights", None) or getattr(tmc, "model", None)
    return (str(model), getattr(tmc, "revision", None)) if model else None


def target_num_layers(vllm_config: Any) -> int:
    """The target's layer count, where vLLM numbers EAGLE3 layers from
    (``llama_eagle3.py``: ``start_layer_id``)."""
    return int(vllm_config.model_config.get_total_num_hidden_layers())


def module_prefix(module: Any) -> str | None:
    """The prefix vLLM resolved a layer's quant method with: ``prefix`` for linears and
    embeddings, ``layer_name`` for routed experts and attention."""
    for attr in ("prefix", "layer_name"):
        p = getattr(module, attr, None)
        if isinstance(p, str) and p:
            return p
    return None
