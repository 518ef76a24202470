"""Drafter profiles: the registry. One module per drafter family, each holding data only.

A family module (``step3p5.py``, ``glm4_moe.py``, ...) defines its profile(s) and a
``PROFILES`` tuple; `FAMILY_MODULES` below lists the modules, and every lookup reads
the profiles they collect. Blocks several families share live in ``_fragments.py``;
the schema is ``vllm_draft_quant.core.profile``. See ``README.md`` beside this file.
"""

from __future__ import annotations

from collections import Counter
from types import ModuleType

from vllm_draft_quant.core.profile import (
    DrafterProfile,
    LayerRoot,
    ModuleSpec,
    StockBehaviour,
    StockLimit,
)
from vllm_draft_quant.errors import UnknownDrafterError
from vllm_draft_quant.profiles import (
    deepseek,
    deepseek_v4,
    deepseek_v32,
    eagle3_deepseek,
    eagle3_llama,
    eagle3_qwen3,
    eagle_deepseek_mtp,
    eagle_minicpm,
    glm4_moe,
    glm4_moe_lite,
    mimo,
    mimo_v2,
    qwen3_5,
    qwen3_5_moe,
    qwen3_next,
    qwen4_exp,
    step3p5,
)

__all__ = [
    "FAMILY_MODULES",
    "PROFILES",
    "DrafterProfile",
    "LayerRoot",
    "ModuleSpec",
    "StockBehaviour",
    "StockLimit",
    "draft_architectures",
    "profile_for_draft",
    "profile_for_target",
]

#: every family module, in the order their profiles are listed
FAMILY_MODULES: tuple[ModuleType, ...] = (
    step3p5, qwen3_next, deepseek, glm4_moe, qwen3_5_moe, mimo, eagle3_llama,
    deepseek_v32, qwen3_5, glm4_moe_lite, mimo_v2, deepseek_v4, qwen4_exp,
    eagle3_qwen3, eagle3_deepseek, eagle_minicpm, eagle_deepseek_mtp,
)
PROFILES: tuple[DrafterProfile, ...] = tuple(
    p for module in FAMILY_MODULES for p in module.PROFILES
)


def _check_unique(kind: str, names: list[str]) -> None:
    """Each name belongs to one profile: two families claiming one is a data error."""
    twice = sorted(n for n, count in Counter(names).items() if count > 1)
    if twice:
        raise ValueError(f"drafter profiles: {kind} {twice} are claimed by more than one "
                         "profile; each name belongs to one family module")


_check_unique("draft architectures", [n for p in PROFILES
                                      for n in (p.architecture, *p.architecture_aliases)])
_check_unique("target architectures", [t for p in PROFILES for t in p.target_architectures])
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
