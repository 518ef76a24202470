"""Reading an overrides file (``.json``, ``.yaml`` or ``.yml``); the model is `core.overrides`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.core.overrides import parse_overrides
from vllm_draft_quant.errors import ConfigError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides_model import Overrides

__all__ = ["load_overrides"]


def load_overrides(path: str | os.PathLike[str]) -> Overrides:
    """Read and validate an overrides file (``.json``, ``.yaml`` or ``.yml``)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p}: cannot read the overrides file ({e}); check the path "
                          "given with --overrides or VLLM_DRAFT_QUANT_OVERRIDES.") from e
    data: Any
    try:
        if p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            import json

            data = json.loads(text)
    except Exception as e:  # yaml.YAMLError, json.JSONDecodeError, RecursionError
        raise ConfigError(f"{p}: not valid {'YAML' if p.suffix in ('.yaml', '.yml') else 'JSON'} "
                          f"({e}); fix the syntax.") from e
    return parse_overrides(data, str(p))
