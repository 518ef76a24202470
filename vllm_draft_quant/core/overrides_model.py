"""The overrides document as a pydantic model (imported only when overrides are used:
pydantic costs most of a cold start, see `core.overrides`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, field_validator

from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["Overrides"]


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
