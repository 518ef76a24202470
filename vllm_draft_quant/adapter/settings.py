"""Environment control, vLLM style."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vllm_draft_quant.errors import ConfigError

ENV_MODE = "VLLM_DRAFT_QUANT"
ENV_OVERRIDES = "VLLM_DRAFT_QUANT_OVERRIDES"  # also core.overrides.ENV_OVERRIDES (kept light here)
MODES = ("auto", "strict", "off")


@dataclass(frozen=True)
class Settings:
    mode: str  # auto | strict | off
    overrides: str | None


def from_env() -> Settings:
    mode = os.environ.get(ENV_MODE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(f"{ENV_MODE}={mode!r} is not one of {'|'.join(MODES)}; unset it or "
                          "pick one (auto is the default).")
    return Settings(mode, os.environ.get(ENV_OVERRIDES) or None)
