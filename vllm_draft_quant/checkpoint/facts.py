"""What a model folder says about its drafter: configs, intent, placement, draft dtypes.

`load_facts` reads ``config.json`` (and ``hf_quant_config.json``), picks the drafter
profile and places its layers (`core.resolver.place_drafter`); `draft_dtypes` reads
the header dtypes of the draft tensors (only the shards that hold them are opened);
`decisions_from_facts` hands both to the pure `core.resolver.decide` (plain data, what
``fix`` and ``graft`` read), `plan_from_facts` makes the pydantic `Plan` of that.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.checkpoint.configs import load_json_object
from vllm_draft_quant.checkpoint.index import CheckpointFiles
from vllm_draft_quant.checkpoint.locate import locate_model
from vllm_draft_quant.core.intent import QuantIntent, intent_from_configs
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.errors import CheckpointError, ConfigError
from vllm_draft_quant.profiles import profile_for_draft, profile_for_target

if TYPE_CHECKING:  # the resolver and the plan model: imported when a plan is made
    from vllm_draft_quant.core.decisions import Decisions, Mode
    from vllm_draft_quant.core.overrides import Overrides
    from vllm_draft_quant.core.plan import Plan

__all__ = ["JOURNAL_NAME", "CheckpointFacts", "check_settled", "decisions_from_facts",
           "draft_dtypes", "load_facts", "plan_from_facts"]

#: written by `repair.writer` before the first rename of a commit, removed after the last
JOURNAL_NAME = ".vllm-draft-quant.journal"


def check_settled(model_dir: Path) -> None:
    """Refuse a folder whose last ``fix``/``graft`` commit was interrupted (its journal is
    still there): its files may be half old, half new."""
    if os.path.lexists(model_dir / JOURNAL_NAME):
        raise CheckpointError(
            f"{model_dir}: a fix/graft was interrupted while committing its change "
            f"({JOURNAL_NAME} is present), so the folder may be half old, half new; run "
            f"'vllm-draft-quant plan {model_dir}' (or fix/graft) once to roll it back")


@dataclass(frozen=True)
class CheckpointFacts:
    """What was read from a model folder (reused by the CLI, fix and graft)."""

    model_dir: Path
    config: Mapping[str, Any]
    text_config: Mapping[str, Any]
    hf_quant_config: Mapping[str, Any] | None
    intent: QuantIntent | None
    profile: DrafterProfile
    names: NameMap
    files: CheckpointFiles


def load_facts(model: str | os.PathLike[str], *, drafter: str | None = None,
               target_layers: int | None = None,
               profile: DrafterProfile | None = None) -> CheckpointFacts:
    """Read a model folder's configs and index, and place its draft layers.

    ``profile``: plan with this profile instead of looking one up (a mapping learned
    from vLLM, `core.learned.learned_profile`).

    ``target_layers`` is the target model's ``num_hidden_layers``; only profiles whose
    draft layers vLLM numbers after the target's (``hidden_layers_from="target"``,
    EAGLE3) need it, and for them it is required.
    """
    model_dir = locate_model(model)
    check_settled(model_dir)
    cfg_path = model_dir / "config.json"
    config = load_json_object(cfg_path, what="model config")
    if profile is not None:
        pass
    elif drafter is not None:
        profile = profile_for_draft(drafter)
    else:
        archs = config.get("architectures")
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise ConfigError(f"{cfg_path}: field 'architectures' must be a list of strings, "
                              f"found {archs!r}; fix config.json.")
        profile = profile_for_target(archs, origin=str(cfg_path))
    from vllm_draft_quant.core.resolver import place_drafter

    text, names = place_drafter(config, profile, origin=str(cfg_path), target_layers=target_layers)
    hq_path = model_dir / "hf_quant_config.json"
    hf_quant = load_json_object(hq_path, what="ModelOpt quant config", required=False)
    qc = config.get("quantization_config", text.get("quantization_config"))
    if qc is not None and not isinstance(qc, dict):
        raise ConfigError(f"{cfg_path}: field 'quantization_config' must be an object, found "
                          f"{type(qc).__name__}; fix config.json.")
    intent = intent_from_configs(hf_quant, qc, hf_quant_origin=hq_path.name,
                                 config_origin=cfg_path.name)
    return CheckpointFacts(model_dir, config, text, hf_quant, intent, profile, names,
                           CheckpointFiles(model_dir, lazy=True))


def draft_dtypes(facts: CheckpointFacts) -> dict[str, str]:
    """``{draft tensor name: safetensors dtype}`` from the headers of the shards holding them."""
    return {n: dtype for n, (dtype, _) in _draft_headers(facts).items()}


def _draft_headers(facts: CheckpointFacts) -> dict[str, tuple[str, tuple[int, ...]]]:
    """``{draft tensor name: (dtype, shape)}`` from the headers of the shards holding them."""
    nm = facts.names
    draft = nm.draft_names(facts.files.names_with(nm.candidate_prefixes,
                                                  nm.candidate_substrings))
    if not draft:
        return {}
    infos = facts.files.tensors(draft)
    return {n: (infos[n].dtype, tuple(infos[n].shape)) for n in draft}


def plan_from_facts(facts: CheckpointFacts, *, mode: Mode = "auto",
                    overrides: Overrides | None = None, raise_conflicts: bool = True) -> Plan:
    """The plan of ``facts``' drafter: `decisions_from_facts` as the pydantic `Plan`."""
    from vllm_draft_quant.core.plan import Plan

    return Plan.of(decisions_from_facts(facts, mode=mode, overrides=overrides,
                                        raise_conflicts=raise_conflicts))


def decisions_from_facts(facts: CheckpointFacts, *, mode: Mode = "auto",
                         overrides: Overrides | None = None,
                         raise_conflicts: bool = True) -> Decisions:
    """The decisions for ``facts``' drafter (`core.resolver.decide` on its draft tensors),
    each module with the checkpoint file its weight is read from. Plain data: no pydantic."""
    from vllm_draft_quant.core.resolver import decide

    headers = _draft_headers(facts)
    d = decide(facts.names, facts.intent, {n: d for n, (d, _) in headers.items()},
               mode=mode, overrides=overrides, origin=str(facts.model_dir),
               raise_conflicts=raise_conflicts,
               shapes={n: s for n, (_, s) in headers.items()})
    return replace(d, modules=tuple(
        replace(m, checkpoint_file=_file_of(facts, m.checkpoint_tensors)) for m in d.modules))


def _file_of(facts: CheckpointFacts, tensors: tuple[str, ...]) -> str | None:
    """The shard of a module's weight (its first tensor when it has no ``.weight``)."""
    pick = [t for t in tensors if t.endswith(".weight")] or list(tensors)
    return facts.files.shard_of(pick[0]) if pick else None
