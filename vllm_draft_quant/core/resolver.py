"""`resolve`: every drafter module's scheme from config intent, evidence and overrides.

Pure: it decides from names and header facts that `checkpoint.facts` read.

1. `place_drafter`: the text config and where the draft layers sit (`core.names`);
2. classify each checkpoint module's stored format from its dtypes (`core.evidence`);
3. ask the quant config what it intends for each runtime module (`core.intent`);
4. decide (`decide`: plain `core.decisions` data; `resolve`: the same as the pydantic
   `core.plan.Plan`): an override wins (one against the stored tensors is a conflict); else the
   stored tensors win, and a config that disagrees is recorded as a conflict the
   plugin handles (``auto``) or raised (``strict``). An override pattern that matches
   no module is a warning (``auto``) or a conflict (``strict``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.core.decisions import (
    ConflictRecord,
    Decision,
    Decisions,
    Mode,
    Source,
    precision_label,
)
from vllm_draft_quant.core.evidence import ModuleEvidence, classify, group_by_module
from vllm_draft_quant.core.intent import Intent, QuantIntent
from vllm_draft_quant.core.names import NameMap, RuntimeModule
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.schemes import DEQUANTIZABLE, Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError, ConflictError, MissingDraftWeightsError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides import Overrides
    from vllm_draft_quant.core.plan import Plan

__all__ = ["MAX_DRAFT_LAYERS", "Mode", "decide", "place_drafter", "resolve", "strict_error"]
#: More draft (MTP/NextN) layers than this in config.json is an error, not a drafter.
MAX_DRAFT_LAYERS = 64


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


def place_drafter(config: Mapping[str, Any], profile: DrafterProfile, *, origin: str,
                  target_layers: int | None = None) -> tuple[Mapping[str, Any], NameMap]:
    """The text config and the draft layers' placement, from ``config.json``'s object.

    ``target_layers`` is the target model's ``num_hidden_layers``; only profiles whose
    draft layers vLLM numbers after the target's (``hidden_layers_from="target"``,
    EAGLE3) need it, and for them it is required.
    """
    text = _text_config(config, profile)
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
    return text, NameMap(profile, num_hidden_layers=n_hidden, num_draft_layers=n_draft)


@dataclass
class _Found:
    evidence: list[ModuleEvidence]
    shards: set[int]


def _collect(names: NameMap, dtypes: Mapping[str, str], origin: str,
             shapes: Mapping[str, tuple[int, ...]] | None = None) -> dict[str, _Found]:
    """Evidence per runtime module from ``{draft tensor name: safetensors dtype}``."""
    layer_roots = tuple(f"{layer.checkpoint_root}." for layer in names.layers)
    if names.layers and not any(names.canonical(n).startswith(layer_roots) for n in dtypes):
        roots = ", ".join(r.rstrip(".") for r in layer_roots)
        raise MissingDraftWeightsError(
            f"{origin}: the checkpoint has no tensors for the draft layers "
            f"({names.profile.architecture}: {roots}); the export dropped its MTP weights. "
            f"Copy them from the unquantized original with: vllm-draft-quant graft "
            f"{origin} --from <BF16 checkpoint>, or have vLLM read them from it: "
            "--speculative-config '{\"method\": \"mtp\", \"model\": \"<BF16 checkpoint>\"}'"
        )
    found: dict[str, _Found] = {}
    by_module = group_by_module(dtypes)
    for module, tensors in by_module.items():
        hit = names.runtime_of(module, present=by_module)
        if hit is None:
            continue
        rm, shard, _ = hit
        ev = classify(module, {t: dtypes[t] for t in tensors},
                      None if shapes is None else {t: shapes[t] for t in tensors if t in shapes})
        f = found.setdefault(rm.prefix, _Found([], set()))
        f.evidence.append(ev)
        f.shards.add(shard)
    return found


def _stored(found: _Found) -> tuple[StoredFormat, str]:
    formats = {e.format for e in found.evidence}
    layouts = {e.layout for e in found.evidence}
    if len(formats) == 1 and len(layouts) > 1:
        parts = sorted({f"{e.module.rsplit('.', 1)[-1]}: {e.layout}" for e in found.evidence})
        return StoredFormat.UNKNOWN, "shards packed differently: " + "; ".join(parts[:8])
    if len(formats) == 1:
        fmt = formats.pop()
        ex = found.evidence[0]
        return fmt, f"{ex.module}: {ex.detail}" if len(found.evidence) == 1 else \
            f"{len(found.evidence)} checkpoint modules, e.g. {ex.module}: {ex.detail}"
    parts = sorted({f"{e.module.rsplit('.', 1)[-1]}={e.format}" for e in found.evidence})
    return StoredFormat.UNKNOWN, "shards stored differently: " + ", ".join(parts[:8])


#: (message, cause, handled-in-auto-mode) of one conflict
_Msg = tuple[str, str, bool]


def _weight_dtype(found: _Found, dtypes: Mapping[str, str]) -> str:
    ws = {dtypes[t] for e in found.evidence for t in e.tensors if t.endswith(".weight")}
    return ws.pop() if len(ws) == 1 else ""


def _decide(rm: RuntimeModule, found: _Found, intent: QuantIntent | None,
            overrides: Overrides | None, dtypes: Mapping[str, str]
            ) -> tuple[Decision, list[_Msg]]:
    conflicts: list[_Msg] = []
    kind = rm.spec.kind
    wdtype = _weight_dtype(found, dtypes)
    ckpt_modules = sorted(e.module for e in found.evidence)
    tensors = tuple(sorted(t for e in found.evidence for t in e.tensors))
    stored, detail = _stored(found)
    if stored is StoredFormat.UNKNOWN:
        conflicts.append((f"cannot tell the stored format ({detail})",
                          "the stored format cannot be told (tensors of an unknown or mixed "
                          "layout); add an override or re-export those tensors", False))
    missing = sorted(set(range(len(rm.checkpoint_modules))) - found.shards)
    if missing:
        names = [rm.checkpoint_modules[i] for i in missing]
        conflicts.append((f"fused module is missing shards {names}",
                          "a fused module is missing some of its shards in the checkpoint",
                          False))
    if intent is None:
        said = Intent(Scheme.UNQUANTIZED, None, "no quantization config")
    else:
        said = intent.decide(ckpt_modules, rm.prefix, kind)
    if said.partial:
        conflicts.append((f"the config excludes only some shards ({said.reason})",
                          f"the config excludes only some shards of a fused module "
                          f"({said.reason})", False))
    ov = overrides.lookup([*ckpt_modules, rm.prefix]) if overrides else None
    scheme: Scheme
    source: Source
    if not kind.quantizable:
        scheme, source = Scheme.UNQUANTIZED, "default"
        reason = f"{said.reason}; tensors: {detail}"
        if stored in DEQUANTIZABLE:
            source = "dequantize"
            reason = (f"stored {stored} but vLLM builds it as a {kind.value} layer that cannot "
                      f"hold quantized weights: dequantized exactly into its unquantized "
                      f"weight at load ({detail})")
        elif stored not in (StoredFormat.UNQUANTIZED, StoredFormat.UNKNOWN):
            text = (f"stored as {stored} but vLLM builds it as a {kind.value} layer that cannot "
                    f"hold quantized weights, and vllm-draft-quant cannot dequantize {stored} "
                    "at load")
            conflicts.append((text, text + "; re-export it unquantized", False))
    elif ov is not None:
        scheme, source = ov[1], "override"
        reason = f"override {ov[0]!r} -> {ov[1]} (tensors: {detail})"
        if stored is not StoredFormat.UNKNOWN and stored.scheme is not scheme:
            conflicts.append((
                f"override {ov[0]!r} asks for {scheme} but the tensors are {stored} ({detail})",
                f"override {ov[0]!r} asks for {scheme} but the tensors are stored as "
                f"{stored}; vLLM builds what the override says, which cannot hold them",
                False))
    else:
        scheme = stored.scheme
        layout = found.evidence[0].layout
        regrouped = (said.scheme is scheme and said.group_size is not None and layout is not None
                     and layout.group_size is not None and layout.group_size != said.group_size)
        if regrouped and layout is not None:
            source = "evidence"
            reason = f"tensors: {detail}"
            text = (f"config says {said.scheme} with group size {said.group_size} "
                    f"({said.reason}) but the tensors are packed with group size "
                    f"{layout.group_size} ({detail})")
            conflicts.append((text, f"config says {precision_label(said.scheme)} group "
                                    f"{said.group_size} but the tensors are packed with group "
                                    f"{layout.group_size}", True))
        elif stored is not StoredFormat.UNKNOWN and said.scheme is scheme:
            source = "exclude-rule" if said.rule is not None and scheme is Scheme.UNQUANTIZED \
                else "default"
            reason = f"{said.reason}; tensors agree ({detail})"
        else:
            source = "evidence"
            reason = f"tensors: {detail}"
            if stored is not StoredFormat.UNKNOWN:
                conflicts.append((f"config says {said.scheme} ({said.reason}) but the tensors "
                                  f"are {stored} ({detail})",
                                  f"config says {precision_label(said.scheme)} ({said.reason})"
                                  f" but the tensors are {precision_label(scheme, wdtype)}",
                                  True))
    if rm.spec.also_fed_by:  # profile data: the drafter also loads these into it
        reason += (f"; the drafter's load_weights also writes {', '.join(rm.spec.also_fed_by)} "
                   "into it, so those tensors are not passed to the drafter")
    decision = Decision(
        module=rm.prefix, scheme=scheme, source=source, reason=reason,
        checkpoint_tensors=tensors, stored=stored, kind=kind, group=rm.spec.group,
        layer=rm.layer.k if rm.layer else None, weight_dtype=wdtype,
        layout=found.evidence[0].layout if stored is not StoredFormat.UNKNOWN else None,
    )
    return decision, conflicts


def _matches(pattern: str, names: Sequence[str]) -> bool:
    """Whether an override pattern matches any of ``names`` (`Overrides.lookup`'s rule)."""
    if any(c in pattern for c in "*?["):
        return any(fnmatch.fnmatchcase(n, pattern) for n in names)
    return pattern in names


def resolve(names: NameMap, intent: QuantIntent | None, dtypes: Mapping[str, str], *,
            mode: Mode = "auto", overrides: Overrides | None = None, origin: str = "",
            raise_conflicts: bool = True,
            shapes: Mapping[str, tuple[int, ...]] | None = None) -> Plan:
    """`decide` as the pydantic `core.plan.Plan` (imported here, on first use)."""
    from vllm_draft_quant.core.plan import Plan

    return Plan.of(decide(names, intent, dtypes, mode=mode, overrides=overrides, origin=origin,
                          raise_conflicts=raise_conflicts, shapes=shapes))


def decide(names: NameMap, intent: QuantIntent | None, dtypes: Mapping[str, str], *,
           mode: Mode = "auto", overrides: Overrides | None = None, origin: str = "",
           raise_conflicts: bool = True,
           shapes: Mapping[str, tuple[int, ...]] | None = None) -> Decisions:
    """The decisions for the drafter ``names`` places, from its draft tensors' header dtypes.

    ``dtypes`` maps every draft tensor name (`NameMap.is_draft_name`) to its safetensors
    dtype; ``origin`` (the model folder) only appears in messages. In ``strict`` mode any
    disagreement between config and tensors raises `ConflictError` (`strict_error`;
    with ``raise_conflicts=False`` the plan is returned with them, for the CLI to print
    it first); in ``auto`` mode the tensors win and the plan records it as handled.
    """
    if mode not in ("auto", "strict"):
        raise ConfigError(f"mode must be 'auto' or 'strict', got {mode!r}")
    found = _collect(names, dtypes, origin, shapes)
    present = {names.canonical(e.module) for f in found.values() for e in f.evidence}
    decisions: list[Decision] = []
    conflicts: list[ConflictRecord] = []
    matched: set[str] = set()
    for rm in names.modules:
        f = found.get(rm.prefix)
        if f is None:
            continue  # this variant is not in the checkpoint, so vLLM does not build it
        layer_root = rm.layer.checkpoint_root + "." if rm.layer else ""
        if any(layer_root + u in present for u in rm.spec.unless_present):
            continue
        d, msgs = _decide(rm, f, intent, overrides, dtypes)
        decisions.append(d)
        if overrides is not None:
            ckpt = [*sorted(e.module for e in f.evidence), rm.prefix]
            matched.update(p for p in overrides.modules if _matches(p, ckpt))
        conflicts.extend(ConflictRecord(module=rm.prefix, message=m, cause=c,
                                  handled=h and mode == "auto") for m, c, h in msgs)
    warnings: list[str] = []
    for pat in sorted(set(overrides.modules) - matched) if overrides is not None else ():
        text = (f"override {pat!r} matches no draft module of {names.profile.architecture}; "
                "write a runtime prefix or a checkpoint module name that `plan` lists")
        if mode == "strict":
            conflicts.append(ConflictRecord(module=pat, message=text, cause=text))
        else:
            warnings.append(text)
    result = Decisions(drafter=names.profile.architecture, mode=mode, modules=tuple(decisions),
                       conflicts=tuple(conflicts), warnings=tuple(warnings))
    if mode == "strict" and conflicts and raise_conflicts:
        raise ConflictError(strict_error(result, origin))
    return result


def strict_error(plan: Plan | Decisions, origin: str) -> str:
    """The one-line strict-mode error: how many conflicts, the first, where to see all."""
    first = plan.conflicts[0]
    cause = first.cause or first.message
    cause = cause if len(cause) <= 90 else cause[:87] + "..."
    more = f"; and {len(plan.conflicts) - 1} more" if len(plan.conflicts) > 1 else ""
    return (f"{origin}: {len(plan.conflicts)} conflict(s) in strict mode ({first.module}: "
            f"{cause}{more}); see: vllm-draft-quant plan {origin}")
