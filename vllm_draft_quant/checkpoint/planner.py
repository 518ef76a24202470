"""`plan()`: the public entry point, from a model folder (or cached repo id) to a `Plan`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.checkpoint.facts import load_facts, plan_from_facts
from vllm_draft_quant.checkpoint.overrides_file import load_overrides
from vllm_draft_quant.checkpoint.speculative import draft_source
from vllm_draft_quant.core.plan import Plan
from vllm_draft_quant.core.resolver import Mode
from vllm_draft_quant.errors import ConfigError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides import Overrides

__all__ = ["plan"]


def plan(
    model: str | os.PathLike[str],
    *,
    mode: Mode = "auto",
    overrides: Overrides | str | os.PathLike[str] | None = None,
    drafter: str | None = None,
    target_layers: int | None = None,
    speculative_config: str | Mapping[str, Any] | None = None,
) -> Plan:
    """Plan the precision of every draft module of the checkpoint in ``model``.

    ``model`` is a local folder or a Hugging Face repo id in the local cache.
    ``drafter`` forces a vLLM draft architecture (default: from ``config.json``).
    ``target_layers``: the target's ``num_hidden_layers``, for drafters numbered after
    it (EAGLE3); see `checkpoint.facts.load_facts`.
    ``speculative_config``: vLLM's ``--speculative-config`` (JSON text or a mapping);
    ``model`` is then the *target*, and the plan is the one of the drafter that config
    loads: from ``speculative_config["model"]``'s own tensors and configs when it names
    another folder (`checkpoint.speculative`), never from the target's quant config.
    In ``strict`` mode any disagreement between config and tensors raises
    `ConflictError`; in ``auto`` mode the tensors win and the plan records it.
    """
    if mode not in ("auto", "strict"):
        raise ConfigError(f"mode must be 'auto' or 'strict', got {mode!r}")
    if isinstance(overrides, (str, os.PathLike)):  # else an Overrides or None
        overrides = load_overrides(overrides)
    if speculative_config is not None:
        src = draft_source(model, speculative_config)
        model = src.draft_dir
        drafter = drafter or src.drafter
        target_layers = src.target_layers if target_layers is None else target_layers
    facts = load_facts(model, drafter=drafter, target_layers=target_layers)
    return plan_from_facts(facts, mode=mode, overrides=overrides)
