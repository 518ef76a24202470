"""Everything that depends on the vLLM version lives here.

- `check_supported`: whether the installed vLLM is in the range this release is
  tested against (`core.vllm_range.SUPPORTED_VLLM`, the one constant).
- How to read a quant config's scheme, clear its exclusions, and build a
  config for a scheme the checkpoint's own config does not describe: which
  scheme and which config are the quant formats' answers (`core.formats`);
  this module reads and builds vLLM's objects.

To support a new vLLM minor: run ``tests/integration/test_upstream_compat.py`` (it
re-checks every patched signature and upstream cause), then the integration tier,
then widen ``SUPPORTED_VLLM`` and the pyproject range together (CONTRIBUTING.md,
"Bumping the supported vLLM range").
"""

from __future__ import annotations

import copy
import enum
import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat
from vllm_draft_quant.core.vllm_range import SUPPORTED_VLLM, bounds
from vllm_draft_quant.errors import UnsupportedSchemeError, UnsupportedVllmError


@functools.cache
def vllm_version() -> str:
    """The installed vLLM's version, from its package metadata; read once per process
    (the lookup scans every distribution on ``sys.path``: ~17 ms, a third of learning
    a small drafter's mapping, measured with ``benchmarks/bench_learn.py``)."""
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
    return (f"vllm {v} is outside the range vllm-draft-quant supports ({SUPPORTED_VLLM}); "
            "draft layers load as stock vLLM loads them. Install a matching "
            "vllm-draft-quant release.")


def require_supported(version: str | None = None) -> None:
    reason = check_supported(version)
    if reason:
        raise UnsupportedVllmError(reason)


def scheme_of(config: Any) -> Scheme | None:
    """The scheme a vLLM quant config quantizes with, when it has one.

    The answer is the config's quant format's (`core.formats`: ``runtime_scheme``);
    this function only reads the attributes the format names off vLLM's object.
    """
    if config is None:
        return Scheme.UNQUANTIZED
    name = config.get_name()
    fmt = formats.for_vllm_name(name)
    if fmt is None:
        return None
    return fmt.runtime_scheme(name, {a: _plain(getattr(config, a, None)) for a in fmt.runtime_attrs})


def _plain(value: Any) -> Any:
    """``value`` with vLLM's objects turned into plain data: enums into their values,
    pydantic models (compressed-tensors' ``QuantizationArgs``) into dicts of their fields."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, Mapping):
        return {k: _plain(getattr(value, k, None)) for k in fields}
    return value


def _without_exclusions(config: Any) -> Any:
    """A shallow copy of ``config`` that excludes nothing (shares everything else).

    - ModelOpt ``exclude_modules``, compressed-tensors ``ignore``, fp8
      ``ignored_layers``: emptied.
    - compressed-tensors: its single scheme also targets every layer (``re:.*``),
      since its ``Linear`` class target never matches a ``ParallelLMHead``
      (``CompressedTensorsConfig.get_quant_method`` builds quantized heads only
      for a matching target).
    - Quark: exclusions live in the ``quant_config`` dict (``exclude``); its per-layer
      configs (``layer_quant_config``) are dropped too, so the global scheme applies.
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
        # per-layer configs are other schemes: the copy quantizes with the global one
        forced.quant_config = {**config.quant_config, "exclude": [], "layer_quant_config": {}}
    return forced


def _build(scheme: Scheme) -> Any:
    """The vLLM config the registry builds for ``scheme`` (`core.formats.vllm_config_for`)."""
    spec = formats.vllm_config_for(scheme)
    if spec is None:
        raise UnsupportedSchemeError(
            f"the checkpoint stores a draft module as {scheme}, but its quant config describes "
            "another scheme and vllm-draft-quant cannot build a vLLM config for "
            f"{scheme} on its own; add an override for that module or re-export the draft layers."
        )
    from vllm.model_executor.layers.quantization import get_quantization_config

    return get_quantization_config(spec.method).from_config(copy.deepcopy(dict(spec.config)))


def _build_stored(stored: StoredFormat, layout: IntLayout | None) -> Any:
    """The vLLM config that loads ``stored`` with exactly ``layout``'s bits and group size
    (`core.formats.vllm_config_for_stored`), or None when no format builds one."""
    spec = formats.vllm_config_for_stored(stored, layout)
    if spec is None:
        return None
    from vllm.model_executor.layers.quantization import get_quantization_config

    return get_quantization_config(spec.method).from_config(copy.deepcopy(dict(spec.config)))


def config_for(scheme: Scheme, base: Any, *, stored: StoredFormat | None = None,
               layout: IntLayout | None = None) -> Any:
    """A quant config that quantizes every layer it is given with ``scheme``.

    A packed-integer module (``layout`` read from its shapes) always gets a config built
    for its own layout, bits and group size, whatever the target's config is: a GPTQ, AWQ
    or compressed-tensors INT4 config of the target may describe another packing or group
    size, and its ``dynamic`` / ``modules_in_block_to_quantize`` rules would still apply.
    """
    if layout is not None and stored is not None:
        built = _build_stored(stored, layout)
        if built is not None:
            if base is not None:
                built.packed_modules_mapping = dict(
                    getattr(base, "packed_modules_mapping", {}) or {})
            return built
    if base is not None and scheme_of(base) is scheme and base.get_name() != "modelopt_mixed":
        return _without_exclusions(base)
    # a stored layout the scheme's default config names differently (ModelOpt block FP8
    # under ``weight_scale``, not ``fp8``'s ``weight_scale_inv``)
    built = _build_stored(stored, layout) if stored is not None and layout is None else None
    if built is None:
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
    """vLLM's logger for this plugin: ``vllm.draft_quant``, under vLLM's ``vllm`` logger
    (its handlers, format and VLLM_LOGGING_LEVEL). ``vllm.logger.init_logger`` returns
    that same logger object; it is only called when vLLM's logger is already imported,
    so that ``register()`` imports nothing of vLLM by itself."""
    import logging
    import sys

    if "vllm.logger" in sys.modules:
        from vllm.logger import init_logger

        return init_logger("vllm.draft_quant")
    return logging.getLogger("vllm.draft_quant")


def mtp_completeness_check_disabled() -> Any:
    """vLLM's scoped switch that turns off an MTP drafter's own completeness check
    (``model_loader/mtp_validation.py:disable_mtp_completeness_check``)."""
    from vllm.model_executor.model_loader.mtp_validation import disable_mtp_completeness_check

    return disable_mtp_completeness_check()


def weight_block_size(config: Any) -> tuple[int, int] | None:
    """A block-FP8 quant config's ``weight_block_size`` (``Fp8Config``), else None."""
    block = getattr(config, "weight_block_size", None)
    if isinstance(block, (list, tuple)) and len(block) == 2:
        return int(block[0]), int(block[1])
    return None


def nvfp4_reference_dequant() -> Any:
    """vLLM's reference NVFP4 dequantization (``quantization/utils/
    nvfp4_emulation_utils.py:dequantize_to_dtype``: fp4 values x block scale x global
    scale), used to load a plain layer a checkpoint stores NVFP4 (``adapter/dequant.py``)."""
    from vllm.model_executor.layers.quantization.utils.nvfp4_emulation_utils import (
        dequantize_to_dtype,
    )

    return dequantize_to_dtype


def architectures(model_config: Any) -> list[str]:
    """The architectures vLLM resolved for a ``ModelConfig`` (the draft's, for a drafter)."""
    archs = getattr(model_config, "architectures", None) or getattr(
        getattr(model_config, "hf_config", None), "architectures", None) or []
    return [str(a) for a in archs]


def model_source(model_config: Any) -> tuple[str, str | None]:
    """(model path or repo id, revision) a ``ModelConfig`` loads from."""
    return str(model_config.model), getattr(model_config, "revision", None)


def resolved_folder(loader: Any, model: str, revision: str | None) -> Path:
    """The folder vLLM's loader reads ``model``'s weights from: the path itself, or the
    snapshot vLLM's own resolution finds (downloading it as vLLM would), honouring
    ``--download-dir``, ``HF_HUB_CACHE``/``HUGGINGFACE_HUB_CACHE``, the revision and
    ``HF_HUB_OFFLINE``. The plugin never looks a model up any other way.

    ``default_loader.py:DefaultModelLoader._prepare_weights`` (what its
    ``download_model`` and ``_get_weights_iterator`` call, first value: the folder);
    other loaders: ``weight_utils.py:download_weights_from_hf`` with their
    ``load_config.download_dir``.
    """
    if os.path.isdir(model):
        return Path(model)
    prepare = getattr(loader, "_prepare_weights", None)
    if callable(prepare):
        return Path(prepare(model, None, revision, True, None)[0])
    from vllm.model_executor.model_loader.weight_utils import download_weights_from_hf

    download_dir = getattr(getattr(loader, "load_config", None), "download_dir", None)
    return Path(download_weights_from_hf(model, download_dir, ["*.safetensors"], revision))


def register_env_vars(names: Mapping[str, str]) -> list[str]:
    """Make vLLM know the plugin's environment variables (``envs.py:environment_variables``,
    the registry ``platforms/interface.py:Platform.validate_environ`` checks every
    ``VLLM_*`` variable against, warning "Unknown vLLM environment variable detected" or,
    with ``--fail-on-environ-validation``, refusing to start). Returns the names added;
    imports nothing: outside a vLLM process there is no registry to add to."""
    import sys

    envs = sys.modules.get("vllm.envs")
    if envs is None:  # not inside vLLM (vllm.plugins imports vllm.envs before plugins load)
        return []
    added = []
    for name in names:
        if name not in envs.environment_variables:
            envs.environment_variables[name] = functools.partial(os.environ.get, name)
            added.append(name)
    return added


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


# ------------------------------------------------------- the learned mapping's names


def layer_classes() -> dict[str, Any]:
    """vLLM's layer classes the dry run (``adapter/learn.py``) sorts a drafter's layers by."""
    from vllm.model_executor.layers.fused_moe.routed_experts import RoutedExperts
    from vllm.model_executor.layers.linear import LinearBase, ReplicatedLinear
    from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead

    return {"experts": RoutedExperts, "lm_head": ParallelLMHead, "linear": LinearBase,
            "replicated": ReplicatedLinear}


def default_dtype(dtype: Any) -> Any:
    """vLLM's scoped default dtype (``model_loader/utils.py:set_default_torch_dtype``)."""
    from vllm.utils.torch_utils import set_default_torch_dtype

    return set_default_torch_dtype(dtype)


def initialize_model(vllm_config: Any, model_config: Any, prefix: str) -> Any:
    """Construct the model class vLLM resolves for ``model_config``
    (``model_loader/utils.py:initialize_model``, what ``BaseModelLoader.create_model`` calls)."""
    from vllm.model_executor.model_loader.utils import initialize_model as init

    return init(vllm_config=vllm_config, model_config=model_config, prefix=prefix)


#: the module-global name under which drafters import vLLM's default loader and call it
#: directly (``inkling/nvidia/mtp.py:_load_inkling_mtp_weights``)
DEFAULT_WEIGHT_LOADER = "default_weight_loader"


def default_weight_loader() -> Any:
    """The loader vLLM uses for parameters without their own
    (``model_loader/weight_utils.py:default_weight_loader``)."""
    from vllm.model_executor.model_loader.weight_utils import default_weight_loader as dwl

    return dwl


def speculative_architectures() -> dict[str, tuple[str, str]]:
    """vLLM's drafter registry: draft architecture -> (module, class)
    (``model_executor/models/registry.py:_SPECULATIVE_DECODING_MODELS``)."""
    from vllm.model_executor.models import registry

    return dict(registry._SPECULATIVE_DECODING_MODELS)


def is_draft_load(vllm_config: Any, model_config: Any) -> bool:
    """Whether ``model_config`` is the speculative config's draft model (not the target)."""
    spec = getattr(vllm_config, "speculative_config", None)
    return spec is not None and getattr(spec, "draft_model_config", None) is model_config
