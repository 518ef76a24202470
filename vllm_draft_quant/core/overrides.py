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

from typing import TYPE_CHECKING, Any

from vllm_draft_quant.errors import ConfigError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides_model import Overrides

__all__ = ["ENV_OVERRIDES", "Overrides", "parse_overrides"]

#: the environment variable naming the overrides file (read in every vLLM process)
ENV_OVERRIDES = "VLLM_DRAFT_QUANT_OVERRIDES"


def __getattr__(name: str) -> Any:
    """``Overrides`` is a pydantic model, imported on first use: importing pydantic is
    most of a cold start, and neither the CLI's ``--help`` nor vLLM's plugin
    ``register()`` needs it."""
    if name == "Overrides":
        from vllm_draft_quant.core.overrides_model import Overrides

        return Overrides
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_overrides(data: Any, origin: str) -> Overrides:
    """Validate an overrides document already parsed from JSON/YAML (``origin``: its file)."""
    from pydantic import ValidationError

    from vllm_draft_quant.core.overrides_model import Overrides

    try:
        return Overrides.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"]) or "<top level>"
        raise ConfigError(f"{origin}: field {field!r}: {first['msg']}; expected "
                          "{version: 1, modules: {<pattern>: <scheme>}}.") from e
