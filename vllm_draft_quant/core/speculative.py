"""vLLM's ``--speculative-config`` as data: parsed and checked, no files read.

Which folder a drafter loads from is `checkpoint.speculative.draft_source`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.errors import ConfigError

__all__ = ["parse_speculative_config"]

def parse_speculative_config(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object vLLM's ``--speculative-config`` takes (a string or a mapping)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise ConfigError(
                f"--speculative-config: not valid JSON ({e.msg} at position "
                f"{e.pos}); pass the same JSON object as to vLLM, e.g. "
                '\'{"method": "mtp", "model": "/models/bf16-original"}\''
            ) from e
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"--speculative-config: expected a JSON object, found "
            f'{type(value).__name__}; e.g. \'{{"method": "eagle3", '
            '"model": "/models/eagle3-draft"}\''
        )
    out = dict(value)
    for key in ("method", "model"):
        if out.get(key) is not None and not isinstance(out[key], str):
            raise ConfigError(
                f"--speculative-config: field {key!r} must be a string, found {out[key]!r}"
            )
    return out


