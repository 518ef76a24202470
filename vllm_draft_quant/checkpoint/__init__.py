"""Reading checkpoints as untrusted input: safetensors headers, shard indexes, JSON configs.

Nothing here imports torch or vLLM, and no tensor data is ever read.
"""

from __future__ import annotations

from vllm_draft_quant.checkpoint.configs import load_json_object, resolve_inside
from vllm_draft_quant.checkpoint.headers import SafetensorsHeader, TensorInfo, read_header
from vllm_draft_quant.checkpoint.index import CheckpointFiles

__all__ = [
    "CheckpointFiles",
    "SafetensorsHeader",
    "TensorInfo",
    "load_json_object",
    "read_header",
    "resolve_inside",
]
