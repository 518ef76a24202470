"""vllm-draft-quant: draft layers (MTP/NextN) of quantized checkpoints, in the precision
their tensors are stored in.

Public API (everything else is private)::

    from vllm_draft_quant import plan
    p = plan("/models/Step-3.7-Flash-NVFP4")   # -> Plan
    print(p.to_json())

Importing the package is cheap: vLLM imports it in every process (the plugin's
``register()``) and the CLI's ``--help`` needs none of the planner, so the names below
other than the errors are imported on first use (PEP 562); pydantic, which the plan and
overrides models use, is most of a cold start.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from vllm_draft_quant._version import __version__
from vllm_draft_quant.errors import (
    CheckpointError,
    ConfigError,
    ConflictError,
    DraftLoadError,
    DraftQuantError,
    FolderBusyError,
    MissingDraftWeightsError,
    UnknownDrafterError,
    UnsupportedSchemeError,
    UnsupportedVllmError,
)

if TYPE_CHECKING:
    from vllm_draft_quant.checkpoint.overrides_file import load_overrides
    from vllm_draft_quant.checkpoint.planner import plan
    from vllm_draft_quant.core.overrides_model import Overrides
    from vllm_draft_quant.core.plan import Conflict, ModuleDecision, Plan
    from vllm_draft_quant.core.schemes import Scheme, StoredFormat

__all__ = [
    "CheckpointError",
    "ConfigError",
    "Conflict",
    "ConflictError",
    "DraftLoadError",
    "DraftQuantError",
    "FolderBusyError",
    "MissingDraftWeightsError",
    "ModuleDecision",
    "Overrides",
    "Plan",
    "Scheme",
    "StoredFormat",
    "UnknownDrafterError",
    "UnsupportedSchemeError",
    "UnsupportedVllmError",
    "__version__",
    "load_overrides",
    "plan",
]

_LAZY = {
    "Conflict": "vllm_draft_quant.core.plan",
    "ModuleDecision": "vllm_draft_quant.core.plan",
    "Overrides": "vllm_draft_quant.core.overrides_model",
    "Plan": "vllm_draft_quant.core.plan",
    "Scheme": "vllm_draft_quant.core.schemes",
    "StoredFormat": "vllm_draft_quant.core.schemes",
    "load_overrides": "vllm_draft_quant.checkpoint.overrides_file",
    "plan": "vllm_draft_quant.checkpoint.planner",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
