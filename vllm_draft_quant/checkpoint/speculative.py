"""Where a drafter's weights come from, given vLLM's ``--speculative-config``.

Mirrors vLLM 0.33 ``config/speculative.py:SpeculativeConfig.__post_init__`` for the
methods that have a drafter profile:

- ``mtp`` (and the deprecated per-family names such as ``qwen3_next_mtp``): the draft
  weights come from ``model`` when it is given, else from the target's own folder
  (``target_model_config.model``). vLLM builds the draft's ``ModelConfig`` from that
  folder, so its architecture and its quantization are the *draft* folder's own.
- ``eagle3``: the draft is a separate model (``model`` is required). vLLM numbers its
  layers after the target's (``llama_eagle3.py`` ``start_layer_id``), so its plan needs
  the target's ``num_hidden_layers``.
- ``eagle`` (EAGLE-1): a separate model too, numbered after the target's layers; vLLM
  names its drafter ``Eagle`` + the draft's architecture (``configs/eagle.py:
  EAGLEConfig``), after ``SpeculativeConfig.hf_config_override`` turned a DeepSeek-V3
  config into ``DeepSeekMTPModel``. Planned here when that drafter has a profile
  (``EagleMiniCPMForCausalLM``, ``EagleDeepSeekMTPModel``); the others are planned from
  the mapping the plugin learns when vLLM loads them.
- no ``method``: as vLLM, ``eagle3`` when the model path contains ``eagle3``; else ``mtp``
  when the draft folder's ``config.json`` names a model with an MTP drafter profile.

Other methods (``ngram``, ``suffix``, ``draft_model``, ...) have no drafter profile:
asking for their plan is an `UnknownDrafterError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vllm_draft_quant.checkpoint.configs import load_json_object
from vllm_draft_quant.checkpoint.locate import locate_model
from vllm_draft_quant.core.speculative import parse_speculative_config
from vllm_draft_quant.errors import ConfigError, DraftQuantError, UnknownDrafterError
from vllm_draft_quant.profiles import draft_architectures, profile_for_target

__all__ = ["DraftSource", "draft_source", "parse_speculative_config"]

# speculators exports: transformer_layer_config.model_type -> vLLM architecture
# (transformers_utils/configs/speculators/algos.py:update_eagle3)
_SPECULATORS_EAGLE3 = {"llama": "Eagle3LlamaForCausalLM", "qwen3": "Eagle3Qwen3ForCausalLM"}


@dataclass(frozen=True)
class DraftSource:
    """The folders involved in one speculative config, and how to plan its drafter."""

    method: str  # "mtp" | "eagle3" | "eagle"
    target_dir: Path
    draft_dir: Path
    drafter: str | None  # the draft architecture to plan with; None: from the draft's config
    target_layers: int | None  # the target's num_hidden_layers, for drafters numbered after it

    @property
    def separate(self) -> bool:
        """True when the draft weights come from another folder than the target's."""
        return self.draft_dir.resolve() != self.target_dir.resolve()


def _num_hidden_layers(model_dir: Path) -> int:
    path = model_dir / "config.json"
    cfg = load_json_object(path, what="target model config")
    for section in (cfg, cfg.get("text_config"), cfg.get("language_config")):
        if isinstance(section, dict) and "num_hidden_layers" in section:
            n = section["num_hidden_layers"]
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ConfigError(
                    f"{path}: field 'num_hidden_layers' must be a non-negative "
                    f"integer, found {n!r}; fix config.json."
                )
            return n
    raise ConfigError(
        f"{path}: missing field 'num_hidden_layers' (top level or text_config); "
        "the target's layer count places an EAGLE3 drafter's layers."
    )


def _architectures(model_dir: Path) -> list[str]:
    cfg = load_json_object(model_dir / "config.json", what="draft model config")
    archs = cfg.get("architectures")
    if cfg.get("speculators_model_type") == "eagle3":
        layer = cfg.get("transformer_layer_config")
        model_type = layer.get("model_type") if isinstance(layer, dict) else None
        return [_SPECULATORS_EAGLE3.get(str(model_type), "Eagle3Speculator")]
    if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
        raise ConfigError(
            f"{model_dir / 'config.json'}: field 'architectures' must be a list "
            f"of strings, found {archs!r}; fix config.json."
        )
    return archs


def _is_mtp_model(model_dir: Path) -> bool:
    try:
        profile = profile_for_target(_architectures(model_dir), origin=str(model_dir))
    except DraftQuantError:
        return False
    return profile.hidden_layers_from == "draft"


def _eagle3_architecture(model_dir: Path) -> str:
    """The architecture vLLM gives an EAGLE3 draft (``configs/eagle.py:EAGLEConfig``)."""
    archs = [
        a if a.startswith("Eagle3") or a.endswith("Eagle3") else f"Eagle3{a}"
        for a in _architectures(model_dir)
    ]
    for a in archs:
        if a in draft_architectures():
            return a
    raise UnknownDrafterError(
        f"{model_dir / 'config.json'}: vLLM would build this EAGLE3 draft as {archs}, which "
        "has no drafter profile; vllm-draft-quant covers vLLM's Eagle3LlamaForCausalLM "
        "family (LlamaForCausalLMEagle3, Eagle3LlamaForCausalLM, ...)."
    )


def _eagle_architecture(model_dir: Path) -> str:
    """The architecture vLLM gives an EAGLE-1 draft, if it has a drafter profile."""
    cfg = load_json_object(model_dir / "config.json", what="draft model config")
    archs = _architectures(model_dir)
    if cfg.get("model_type") == "deepseek_v3":  # config/speculative.py:hf_config_override
        archs = ["DeepSeekMTPModel"]
    names = [a if a.startswith("Eagle") else f"Eagle{a}" for a in archs]
    for a in names:
        if a in draft_architectures():
            return a
    raise UnknownDrafterError(
        f"{model_dir / 'config.json'}: method 'eagle': vLLM would build this draft as "
        f"{names}, which has no drafter profile; plan covers the EAGLE-1 drafters "
        "EagleMiniCPMForCausalLM and EagleDeepSeekMTPModel (vLLM's load plans the others "
        "from the mapping the plugin learns then)."
    )


def draft_source(
    target: str | os.PathLike[str], speculative_config: str | Mapping[str, Any]
) -> DraftSource:
    """Resolve which folder the drafter of ``speculative_config`` loads from, and how."""
    spec = parse_speculative_config(speculative_config)
    target_dir = locate_model(target)
    method = spec.get("method")
    model = spec.get("model")
    draft_dir = locate_model(model) if model else target_dir
    if method is None:
        if model and "eagle3" in str(model).lower():
            method = "eagle3"
        elif _is_mtp_model(draft_dir):
            method = "mtp"
        else:
            raise UnknownDrafterError(
                f"--speculative-config: no 'method', and vLLM would not infer one with a "
                f"drafter profile for {draft_dir} (it would load it as an independent draft "
                'model, whose layers the target\'s config never touches); set "method": '
                '"mtp" or "eagle3".'
            )
    if method == "mtp" or method.endswith("_mtp"):
        return DraftSource("mtp", target_dir, draft_dir, None, None)
    if method in ("eagle3", "eagle"):
        if not model:
            raise ConfigError(
                f"--speculative-config: method {method!r} needs 'model', the "
                f"{method.upper()} draft checkpoint (vLLM requires it too)."
            )
        arch = _eagle3_architecture if method == "eagle3" else _eagle_architecture
        return DraftSource(
            method, target_dir, draft_dir, arch(draft_dir), _num_hidden_layers(target_dir)
        )
    raise UnknownDrafterError(
        f"--speculative-config: method {method!r} has no drafter profile; vllm-draft-quant "
        "plans 'mtp' drafters (Step-3.5, Qwen3-Next, DeepSeek, GLM, Qwen3.5, MiMo), "
        "'eagle3' Llama-family drafters and 'eagle' MiniCPM/DeepSeek drafters."
    )
