"""User overrides: a JSON or YAML file mapping module patterns to a scheme.

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
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from vllm_draft_quant.core.schemes import Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["Overrides", "load_overrides"]


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
    try:
        return Overrides.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "<top level>"
        raise ConfigError(f"{p}: field {field!r}: {first['msg']}; expected "
                          "{version: 1, modules: {<pattern>: <scheme>}}.") from e
