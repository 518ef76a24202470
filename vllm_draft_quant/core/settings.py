"""The plugin's environment variables, vLLM style: names, meanings, values in force.

Pure: `from_env` reads a mapping (``os.environ`` by default), no files. The adapter
registers `ENV_VARS` with vLLM (`adapter.compat.register_env_vars`) so that vLLM knows
them; ``vllm-draft-quant env`` shows them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from vllm_draft_quant.errors import ConfigError

__all__ = ["ENV_MODE", "ENV_OVERRIDES", "ENV_VARS", "MODES", "Settings", "from_env"]

ENV_MODE = "VLLM_DRAFT_QUANT"
ENV_OVERRIDES = "VLLM_DRAFT_QUANT_OVERRIDES"  # also core.overrides.ENV_OVERRIDES
MODES = ("auto", "strict", "off")

#: every variable the plugin reads -> what it does (README "Settings" lists the same)
ENV_VARS: dict[str, str] = {
    ENV_MODE: "auto (default): draft layers load as stored; strict: a conflict is an error; "
              "off: stock vLLM",
    ENV_OVERRIDES: "path of a JSON/YAML overrides file (per-module schemes)",
}


@dataclass(frozen=True)
class Settings:
    mode: str  # auto | strict | off
    overrides: str | None


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if environ is None else environ
    mode = env.get(ENV_MODE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ConfigError(f"{ENV_MODE}={mode!r} is not one of {'|'.join(MODES)}; unset it or "
                          "pick one (auto is the default).")
    return Settings(mode, env.get(ENV_OVERRIDES) or None)
