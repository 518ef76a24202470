"""`plan()`: resolve every drafter module's scheme from config, evidence and overrides.

Steps, each from names and header facts only:

1. read ``config.json`` (and ``hf_quant_config.json``) and pick the drafter profile;
2. place the draft layers and list the checkpoint tensors that belong to them
   (from the shard index; only the shards holding draft tensors are opened);
3. classify each checkpoint module's stored format (`checkpoint.evidence`);
4. ask the quant config what it intends for each runtime module (`core.intent`);
5. decide: an override wins; else the stored tensors win, and a config that
   disagrees is recorded as a conflict (``auto``) or raised (``strict``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vllm_draft_quant.checkpoint.configs import load_json_object
from vllm_draft_quant.checkpoint.evidence import ModuleEvidence, classify, group_by_module
from vllm_draft_quant.checkpoint.index import CheckpointFiles
from vllm_draft_quant.checkpoint.locate import locate_model
from vllm_draft_quant.core.intent import Intent, QuantIntent, intent_from_configs
from vllm_draft_quant.core.names import NameMap, RuntimeModule
from vllm_draft_quant.core.overrides import Overrides, load_overrides
from vllm_draft_quant.core.plan import Conflict, ModuleDecision, Plan, Source
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError, ConflictError, MissingDraftWeightsError
from vllm_draft_quant.profiles import DrafterProfile, profile_for_draft, profile_for_target

__all__ = ["CheckpointFacts", "load_facts", "plan"]

Mode = Literal["auto", "strict"]
#: More draft (MTP/NextN) layers than this in config.json is an error, not a drafter.
MAX_DRAFT_LAYERS = 64


@dataclass(frozen=True)
class CheckpointFacts:
    """What the resolver read from a model folder (reused by the CLI)."""

    model_dir: Path
    config: Mapping[str, Any]
    text_config: Mapping[str, Any]
    hf_quant_config: Mapping[str, Any] | None
    intent: QuantIntent | None
    profile: DrafterProfile
    names: NameMap
    files: CheckpointFiles


def _text_config(config: Mapping[str, Any], profile: DrafterProfile) -> Mapping[str, Any]:
    if "num_hidden_layers" in config:
        return config
    for key in profile.text_config_keys:
        sub = config.get(key)
        if isinstance(sub, dict) and "num_hidden_layers" in sub:
            return sub
    return config


def _int_field(cfg: Mapping[str, Any], keys: tuple[str, ...], origin: str,
               default: int | None = None) -> int:
    for key in keys:
        if key in cfg:
            v = cfg[key]
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"{origin}: field {key!r} must be a non-negative integer, "
                                  f"found {v!r}; fix config.json.")
            return v
    if default is None:
        raise ConfigError(f"{origin}: missing field {keys[0]!r}; config.json of the target "
                          "model must say how many layers it has.")
    return default


def load_facts(model: str | os.PathLike[str], *, drafter: str | None = None,
               target_layers: int | None = None) -> CheckpointFacts:
    """Read a model folder's configs and index, and place its draft layers.

    ``target_layers`` is the target model's ``num_hidden_layers``; only profiles whose
    draft layers vLLM numbers after the target's (``hidden_layers_from="target"``,
    EAGLE3) need it, and for them it is required.
    """
    model_dir = locate_model(model)
    cfg_path = model_dir / "config.json"
    config = load_json_object(cfg_path, what="model config")
    if drafter is not None:
        profile = profile_for_draft(drafter)
    else:
        archs = config.get("architectures")
        if not isinstance(archs, list) or not all(isinstance(a, str) for a in archs):
            raise ConfigError(f"{cfg_path}: field 'architectures' must be a list of strings, "
                              f"found {archs!r}; fix config.json.")
        profile = profile_for_target(archs, origin=str(cfg_path))
    text = _text_config(config, profile)
    origin = str(cfg_path)
    n_hidden = _int_field(text, ("num_hidden_layers",), origin)
    if profile.hidden_layers_from == "target":
        if target_layers is None or isinstance(target_layers, bool) or target_layers < 0:
            raise ConfigError(
                f"{origin}: {profile.architecture} is a separate draft model whose layers "
                "vLLM numbers after the target model's, so its plan needs the target's "
                f"num_hidden_layers (got {target_layers!r}); plan it with its target: "
                "vllm-draft-quant plan TARGET --speculative-config "
                "'{\"method\": \"eagle3\", \"model\": \"<this folder>\"}'")
        n_hidden = target_layers
    n_draft = _int_field(text, profile.num_layers_keys, origin, profile.default_num_layers)
    if n_draft > MAX_DRAFT_LAYERS:  # an untrusted count: NameMap builds every layer
        key = next((k for k in profile.num_layers_keys if k in text), profile.num_layers_keys[0])
        raise ConfigError(f"{origin}: field {key!r} is {n_draft}, more draft layers than any "
                          f"drafter has (limit {MAX_DRAFT_LAYERS}); fix config.json.")
    hq_path = model_dir / "hf_quant_config.json"
    hf_quant = load_json_object(hq_path, what="ModelOpt quant config", required=False)
    qc = config.get("quantization_config", text.get("quantization_config"))
    if qc is not None and not isinstance(qc, dict):
        raise ConfigError(f"{cfg_path}: field 'quantization_config' must be an object, found "
                          f"{type(qc).__name__}; fix config.json.")
    intent = intent_from_configs(hf_quant, qc, hf_quant_origin=hq_path.name, config_origin=cfg_path.name)
    names = NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)
    return CheckpointFacts(model_dir, config, text, hf_quant, intent, profile, names,
                           CheckpointFiles(model_dir))


@dataclass
class _Found:
    evidence: list[ModuleEvidence]
    shards: set[int]


def _collect(facts: CheckpointFacts) -> dict[str, _Found]:
    nm = facts.names
    draft = [n for n in facts.files.weight_names() if nm.is_draft_name(n)]
    layer_roots = tuple(f"{layer.checkpoint_root}." for layer in nm.layers)
    if nm.layers and not any(nm.canonical(n).startswith(layer_roots) for n in draft):
        roots = ", ".join(r.rstrip(".") for r in layer_roots)
        raise MissingDraftWeightsError(
            f"{facts.model_dir}: the checkpoint has no tensors for the draft layers "
            f"({facts.profile.architecture}: {roots}); the export dropped its MTP weights. "
            f"Copy them from the unquantized original with: vllm-draft-quant graft "
            f"{facts.model_dir} --from <BF16 checkpoint>, or have vLLM read them from it: "
            "--speculative-config '{\"method\": \"mtp\", \"model\": \"<BF16 checkpoint>\"}'"
        )
    infos = facts.files.tensors(draft)
    found: dict[str, _Found] = {}
    by_module = group_by_module(draft)
    for module, tensors in by_module.items():
        hit = nm.runtime_of(module, present=by_module)
        if hit is None:
            continue
        rm, shard, _ = hit
        ev = classify(module, {t: infos[t].dtype for t in tensors})
        f = found.setdefault(rm.prefix, _Found([], set()))
        f.evidence.append(ev)
        f.shards.add(shard)
    return found


def _stored(found: _Found) -> tuple[StoredFormat, str]:
    formats = {e.format for e in found.evidence}
    if len(formats) == 1:
        fmt = formats.pop()
        ex = found.evidence[0]
        return fmt, f"{ex.module}: {ex.detail}" if len(found.evidence) == 1 else \
            f"{len(found.evidence)} checkpoint modules, e.g. {ex.module}: {ex.detail}"
    parts = sorted({f"{e.module.rsplit('.', 1)[-1]}={e.format}" for e in found.evidence})
    return StoredFormat.UNKNOWN, "shards stored differently: " + ", ".join(parts[:8])


def _decide(rm: RuntimeModule, found: _Found, intent: QuantIntent | None,
            overrides: Overrides | None) -> tuple[ModuleDecision, list[str]]:
    conflicts: list[str] = []
    kind = rm.spec.kind
    ckpt_modules = sorted(e.module for e in found.evidence)
    tensors = tuple(sorted(t for e in found.evidence for t in e.tensors))
    stored, detail = _stored(found)
    if stored is StoredFormat.UNKNOWN:
        conflicts.append(f"cannot tell the stored format ({detail})")
    missing = sorted(set(range(len(rm.checkpoint_modules))) - found.shards)
    if missing:
        names = [rm.checkpoint_modules[i] for i in missing]
        conflicts.append(f"fused module is missing shards {names}")
    if intent is None:
        said = Intent(Scheme.UNQUANTIZED, None, "no quantization config")
    else:
        said = intent.decide(ckpt_modules, rm.prefix, kind)
    if said.partial:
        conflicts.append(f"the config excludes only some shards ({said.reason})")
    ov = overrides.lookup([*ckpt_modules, rm.prefix]) if overrides else None
    scheme: Scheme
    source: Source
    if not kind.quantizable:
        scheme, source = Scheme.UNQUANTIZED, "default"
        reason = f"{said.reason}; tensors: {detail}"
        if stored not in (StoredFormat.UNQUANTIZED, StoredFormat.UNKNOWN):
            conflicts.append(f"stored as {stored} but vLLM builds it as a {kind.value} layer "
                             "that cannot hold quantized weights")
    elif ov is not None:
        scheme, source = ov[1], "override"
        reason = f"override {ov[0]!r} -> {ov[1]} (tensors: {detail})"
    else:
        scheme = stored.scheme
        if stored is not StoredFormat.UNKNOWN and said.scheme is scheme:
            source = "exclude-rule" if said.rule is not None and scheme is Scheme.UNQUANTIZED \
                else "default"
            reason = f"{said.reason}; tensors agree ({detail})"
        else:
            source = "evidence"
            reason = f"tensors: {detail}"
            if stored is not StoredFormat.UNKNOWN:
                conflicts.append(f"config says {said.scheme} ({said.reason}) but the tensors are "
                                 f"{stored} ({detail})")
    if rm.spec.also_fed_by:  # profile data: the drafter also loads these into it
        reason += (f"; the drafter's load_weights also writes {', '.join(rm.spec.also_fed_by)} "
                   "into it, so those tensors are not passed to the drafter")
    decision = ModuleDecision(
        module=rm.prefix, scheme=scheme, source=source, reason=reason,
        checkpoint_tensors=tensors, stored=stored.value, kind=kind.value, group=rm.spec.group,
    )
    return decision, conflicts


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
    it (EAGLE3); see `load_facts`.
    ``speculative_config``: vLLM's ``--speculative-config`` (JSON text or a mapping);
    ``model`` is then the *target*, and the plan is the one of the drafter that config
    loads: from ``speculative_config["model"]``'s own tensors and configs when it names
    another folder (`core.speculative`), never from the target's quant config.
    In ``strict`` mode any disagreement between config and tensors raises
    `ConflictError`; in ``auto`` mode the tensors win and the plan records it.
    """
    if mode not in ("auto", "strict"):
        raise ConfigError(f"mode must be 'auto' or 'strict', got {mode!r}")
    if overrides is not None and not isinstance(overrides, Overrides):
        overrides = load_overrides(overrides)
    if speculative_config is not None:
        from vllm_draft_quant.core.speculative import draft_source

        src = draft_source(model, speculative_config)
        model = src.draft_dir
        drafter = drafter or src.drafter
        target_layers = src.target_layers if target_layers is None else target_layers
    facts = load_facts(model, drafter=drafter, target_layers=target_layers)
    return plan_from_facts(facts, mode=mode, overrides=overrides)


def plan_from_facts(facts: CheckpointFacts, *, mode: Mode = "auto",
                    overrides: Overrides | None = None) -> Plan:
    found = _collect(facts)
    present = {facts.names.canonical(e.module) for f in found.values() for e in f.evidence}
    decisions: list[ModuleDecision] = []
    conflicts: list[Conflict] = []
    for rm in facts.names.modules:
        f = found.get(rm.prefix)
        if f is None:
            continue  # this variant is not in the checkpoint, so vLLM does not build it
        layer_root = rm.layer.checkpoint_root + "." if rm.layer else ""
        if any(layer_root + u in present for u in rm.spec.unless_present):
            continue
        d, msgs = _decide(rm, f, facts.intent, overrides)
        decisions.append(d)
        conflicts.extend(Conflict(module=rm.prefix, message=m) for m in msgs)
    result = Plan(drafter=facts.profile.architecture, mode=mode, modules=tuple(decisions),
                  conflicts=tuple(conflicts))
    if mode == "strict" and conflicts:
        lines = "; ".join(f"{c.module}: {c.message}" for c in conflicts[:5])
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        raise ConflictError(
            f"{facts.model_dir}: {len(conflicts)} conflict(s) between the quant config and the "
            f"stored draft tensors: {lines}{more}. Fix the config (vllm-draft-quant fix "
            f"{facts.model_dir} --write) or use mode 'auto' to follow the tensors."
        )
    return result
