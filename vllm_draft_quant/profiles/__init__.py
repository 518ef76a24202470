"""Drafter profiles: the registry and the schema. Profiles are data (families.py)."""

from __future__ import annotations

from vllm_draft_quant.core.profile import DrafterProfile, LayerRoot, ModuleSpec
from vllm_draft_quant.errors import UnknownDrafterError
from vllm_draft_quant.profiles.families import PROFILES

__all__ = [
    "PROFILES",
    "DrafterProfile",
    "LayerRoot",
    "ModuleSpec",
    "draft_architectures",
    "profile_for_draft",
    "profile_for_target",
]

_BY_DRAFT = {p.architecture: p for p in PROFILES}
_BY_ALIAS = {a: p for p in PROFILES for a in p.architecture_aliases}
_BY_TARGET = {t: p for p in PROFILES for t in p.target_architectures}


def draft_architectures() -> frozenset[str]:
    """Every draft architecture name a profile answers to (aliases included)."""
    return frozenset(_BY_DRAFT) | frozenset(_BY_ALIAS)


def _known() -> str:
    return ", ".join(sorted(_BY_DRAFT))


def profile_for_draft(architecture: str) -> DrafterProfile:
    """The profile of a vLLM draft architecture, e.g. ``"Step3p5MTP"``."""
    try:
        return _BY_DRAFT.get(architecture) or _BY_ALIAS[architecture]
    except KeyError:
        raise UnknownDrafterError(
            f"no drafter profile for draft architecture {architecture!r}; known drafters: "
            f"{_known()}. Add a profile (see vllm_draft_quant/profiles/README.md) or set "
            "VLLM_DRAFT_QUANT=off to let vLLM load it unchanged."
        ) from None


def profile_for_target(architectures: list[str], *, origin: str) -> DrafterProfile:
    """The drafter profile for a target model's ``config.json`` ``architectures``."""
    for arch in architectures:
        if arch in _BY_DRAFT or arch in _BY_ALIAS:
            return profile_for_draft(arch)
        if arch in _BY_TARGET:
            return _BY_TARGET[arch]
    raise UnknownDrafterError(
        f"{origin}: field 'architectures' is {architectures!r}, which has no MTP drafter "
        f"profile; known drafters: {_known()}. Add a profile (see "
        "vllm_draft_quant/profiles/README.md) or pass the draft architecture explicitly."
    )
