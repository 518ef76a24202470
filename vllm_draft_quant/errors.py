"""The one exception tree of vllm-draft-quant.

Every error the package raises on purpose is a subclass of `DraftQuantError`::

    DraftQuantError
    ├── CheckpointError          a safetensors file, shard index or model folder is unusable
    │   ├── MissingDraftWeightsError   the checkpoint ships no draft (MTP/NextN) tensors
    │   └── FolderBusyError      another fix/graft holds the model folder's lock
    ├── ConfigError              config.json / hf_quant_config.json / an override file is malformed
    ├── UnknownDrafterError      no drafter profile for this architecture
    ├── ConflictError            config and stored tensors disagree (raised in strict mode)
    ├── UnsupportedSchemeError   a draft module's stored scheme cannot be built by vLLM
    ├── DraftLoadError           vLLM built or loaded the drafter otherwise than planned
    └── UnsupportedVllmError     the installed vLLM is outside the supported range

Messages name the file, the tensor or field, the value found, and the fix.
Third-party errors are wrapped with ``raise ... from e``.
"""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConflictError",
    "DraftLoadError",
    "DraftQuantError",
    "FolderBusyError",
    "MissingDraftWeightsError",
    "UnknownDrafterError",
    "UnsupportedSchemeError",
    "UnsupportedVllmError",
]


class DraftQuantError(Exception):
    """Root of every error raised by vllm-draft-quant."""


class CheckpointError(DraftQuantError):
    """A safetensors header, shard index or model folder cannot be used."""


class MissingDraftWeightsError(CheckpointError):
    """The checkpoint has no tensors for the draft layers (graft them first)."""


class FolderBusyError(CheckpointError):
    """Another ``fix``/``graft`` is writing to the same model folder right now."""


class ConfigError(DraftQuantError):
    """A JSON/YAML config or override file has a wrong type, value or key."""


class UnknownDrafterError(DraftQuantError):
    """No drafter profile is registered for the requested architecture."""


class ConflictError(DraftQuantError):
    """The checkpoint's config and its stored tensors disagree (strict mode)."""


class UnsupportedSchemeError(DraftQuantError):
    """A draft module is stored in a scheme (or a mix) the adapter cannot build in vLLM."""


class DraftLoadError(DraftQuantError):
    """The drafter vLLM built or loaded does not match the plan (never-built modules,
    parameters in the wrong precision, scales that were never loaded)."""


class UnsupportedVllmError(DraftQuantError):
    """The installed vLLM version is outside the range this release supports."""
