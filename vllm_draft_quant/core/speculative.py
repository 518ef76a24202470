"""vLLM's ``--speculative-config`` as data: parsed and checked, no files read.

Which folder a drafter loads from is `checkpoint.speculative.draft_source`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vllm_draft_quant.core.bounded import check_depth, loads_bounded
from vllm_draft_quant.errors import ConfigError

__all__ = ["MAX_SPECULATIVE_CONFIG", "parse_speculative_config"]

#: longest ``--speculative-config`` text read (vLLM's are a few hundred characters)
MAX_SPECULATIVE_CONFIG = 64 * 1024
_EXAMPLE = '\'{"method": "mtp", "model": "/models/bf16-original"}\''

def parse_speculative_config(value: str | Mapping[str, Any]) -> dict[str, Any]:
    """The JSON object vLLM's ``--speculative-config`` takes (a string or a mapping)."""
    if isinstance(value, str):
        try:
            value = loads_bounded(value, origin="--speculative-config",
                                  max_chars=MAX_SPECULATIVE_CONFIG, max_depth=16)
        except ConfigError as e:
            raise ConfigError(f"{e}; pass the same JSON object as to vLLM, e.g. "
                              f"{_EXAMPLE}") from e
    else:
        check_depth(value, origin="--speculative-config", max_depth=16)
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
    n = out.get("num_speculative_tokens")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 1024):
        raise ConfigError(
            f"--speculative-config: field 'num_speculative_tokens' must be a positive integer "
            f"(vLLM: gt=0), found {n!r}; e.g. \"num_speculative_tokens\": 3"
        )
    return out


