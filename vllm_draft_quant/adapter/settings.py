"""Environment control, vLLM style (the names and parsing live in `core.settings`)."""

from __future__ import annotations

from vllm_draft_quant.core.settings import (
    ENV_MODE,
    ENV_OVERRIDES,
    ENV_VARS,
    MODES,
    Settings,
    from_env,
)

__all__ = ["ENV_MODE", "ENV_OVERRIDES", "ENV_VARS", "MODES", "Settings", "from_env"]
