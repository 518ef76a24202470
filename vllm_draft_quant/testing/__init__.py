"""Test fixtures: a factory of tiny real-format checkpoints (numpy only, no torch).

Used by the test tiers and the demo; it never downloads anything.
"""

from vllm_draft_quant.testing.factory import (
    LAYOUTS,
    CheckpointSpec,
    ExclusionMode,
    FamilyName,
    Format,
    Layout,
    MtpFormats,
    Producer,
    Scheme,
    TensorInfo,
    WrittenCheckpoint,
    write_checkpoint,
)

__all__ = [
    "LAYOUTS",
    "CheckpointSpec",
    "ExclusionMode",
    "FamilyName",
    "Format",
    "Layout",
    "MtpFormats",
    "Producer",
    "Scheme",
    "TensorInfo",
    "WrittenCheckpoint",
    "write_checkpoint",
]
