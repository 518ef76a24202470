"""User overrides: module patterns mapped to a scheme (the file is read by
`checkpoint.overrides_file`).

Example (YAML)::

    version: 1
    modules:
      "model.layers.45.shared_head.head": unquantized   # runtime prefix
      "mtp.fc": nvfp4                                    # checkpoint name
      "model.layers.45.mlp.experts*": fp8                # fnmatch glob

A pattern matches a runtime prefix or any of the module's checkpoint names.
When several match, the most specific wins (an exact name over a glob, then
the longest glob); equally specific patterns that disagree are an error.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["ENV_OVERRIDES", "Overrides", "parse_overrides"]

#: the environment variable naming the overrides file (read in every vLLM process)
ENV_OVERRIDES = "VLLM_DRAFT_QUANT_OVERRIDES"


class Overrides(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = 1
    modules: dict[str, Scheme]

    @field_validator("version")
    @classmethod
    def _v1(cls, v: int) -> int:
        if v != 1:
            raise ValueError(f"version must be 1 (found {v}); this release reads version 1 files")
        return v

    @field_validator("modules")
    @classmethod
    def _patterns(cls, v: dict[str, Scheme]) -> dict[str, Scheme]:
        for k, s in v.items():
            if not k.strip():
                raise ValueError("a module pattern is empty; write a runtime or checkpoint name")
            if s is Scheme.UNKNOWN:
                raise ValueError(f"{k!r}: 'unknown' is not a scheme you can ask for; "
                                 "use unquantized, nvfp4, fp8, fp8_block, mxfp4 or int4")
        return v

    def lookup(self, names: Sequence[str]) -> tuple[str, Scheme] | None:
        """(pattern, scheme) of the most specific pattern matching any of ``names``."""
        best: list[tuple[tuple[int, int], str, Scheme]] = []
        for pat, scheme in self.modules.items():
            glob = any(c in pat for c in "*?[")
            if any((fnmatch.fnmatchcase(n, pat) if glob else n == pat) for n in names):
                best.append(((0 if glob else 1, len(pat)), pat, scheme))
        if not best:
            return None
        best.sort(key=lambda t: t[0], reverse=True)
        top = [b for b in best if b[0] == best[0][0]]
        if len({b[2] for b in top}) > 1:
            raise ConfigError(
                f"overrides: patterns {sorted(b[1] for b in top)} match {names[-1]!r} equally "
                "and ask for different schemes; make one of them more specific."
            )
        return best[0][1], best[0][2]


def parse_overrides(data: Any, origin: str) -> Overrides:
    """Validate an overrides document already parsed from JSON/YAML (``origin``: its file)."""
    try:
        return Overrides.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "<top level>"
        raise ConfigError(f"{origin}: field {field!r}: {first['msg']}; expected "
                          "{version: 1, modules: {<pattern>: <scheme>}}.") from e
