"""vllm-draft-quant: draft layers (MTP/NextN) of quantized checkpoints, in the precision
their tensors are stored in.

Public API (everything else is private)::

    from vllm_draft_quant import plan
    p = plan("/models/Step-3.7-Flash-NVFP4")   # -> Plan
    print(p.to_json())
"""

from vllm_draft_quant._version import __version__
from vllm_draft_quant.checkpoint.overrides_file import load_overrides
from vllm_draft_quant.checkpoint.planner import plan
from vllm_draft_quant.core.overrides import Overrides
from vllm_draft_quant.core.plan import Conflict, ModuleDecision, Plan
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
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
