"""`resolve`: every drafter module's scheme from config intent, evidence and overrides.

Pure: it decides from names and header facts that `checkpoint.facts` read.

1. `place_drafter`: the text config and where the draft layers sit (`core.names`);
2. classify each checkpoint module's stored format from its dtypes (`core.evidence`);
3. ask the quant config what it intends for each runtime module (`core.intent`);
4. decide: an override wins; else the stored tensors win, and a config that
   disagrees is recorded as a conflict (``auto``) or raised (``strict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from vllm_draft_quant.core.evidence import ModuleEvidence, classify, group_by_module
from vllm_draft_quant.core.intent import Intent, QuantIntent
from vllm_draft_quant.core.names import NameMap, RuntimeModule
from vllm_draft_quant.core.plan import Conflict, ModuleDecision, Plan, Source
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.schemes import DEQUANTIZABLE, Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError, ConflictError, MissingDraftWeightsError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides import Overrides

__all__ = ["MAX_DRAFT_LAYERS", "Mode", "place_drafter", "resolve"]

Mode = Literal["auto", "strict"]
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
        if stored in DEQUANTIZABLE:
            source = "dequantize"
            reason = (f"stored {stored} but vLLM builds it as a {kind.value} layer that cannot "
                      f"hold quantized weights: dequantized exactly into its unquantized "
                      f"weight at load ({detail})")
        elif stored not in (StoredFormat.UNQUANTIZED, StoredFormat.UNKNOWN):
            conflicts.append(f"stored as {stored} but vLLM builds it as a {kind.value} layer "
                             "that cannot hold quantized weights, and vllm-draft-quant cannot "
                             f"dequantize {stored} at load")
    elif ov is not None:
        scheme, source = ov[1], "override"
        reason = f"override {ov[0]!r} -> {ov[1]} (tensors: {detail})"
    else:
        scheme = stored.scheme
        layout = found.evidence[0].layout
        regrouped = (said.scheme is scheme and said.group_size is not None and layout is not None
                     and layout.group_size is not None and layout.group_size != said.group_size)
        if regrouped and layout is not None:
            source = "evidence"
            reason = f"tensors: {detail}"
            conflicts.append(f"config says {said.scheme} with group size {said.group_size} "
                             f"({said.reason}) but the tensors are packed with group size "
                             f"{layout.group_size} ({detail})")
        elif stored is not StoredFormat.UNKNOWN and said.scheme is scheme:
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
        checkpoint_tensors=tensors, stored=stored, kind=kind, group=rm.spec.group,
        layout=found.evidence[0].layout if stored is not StoredFormat.UNKNOWN else None,
    )
    return decision, conflicts


def resolve(names: NameMap, intent: QuantIntent | None, dtypes: Mapping[str, str], *,
            mode: Mode = "auto", overrides: Overrides | None = None, origin: str = "",
            shapes: Mapping[str, tuple[int, ...]] | None = None) -> Plan:
    """The plan for the drafter ``names`` places, from its draft tensors' header dtypes.

    ``dtypes`` maps every draft tensor name (`NameMap.is_draft_name`) to its safetensors
    dtype; ``origin`` (the model folder) only appears in messages. In ``strict`` mode any
    disagreement between config and tensors raises `ConflictError`; in ``auto`` mode the
    tensors win and the plan records it.
    """
    if mode not in ("auto", "strict"):
        raise ConfigError(f"mode must be 'auto' or 'strict', got {mode!r}")
    found = _collect(names, dtypes, origin, shapes)
    present = {names.canonical(e.module) for f in found.values() for e in f.evidence}
    decisions: list[ModuleDecision] = []
    conflicts: list[Conflict] = []
    for rm in names.modules:
        f = found.get(rm.prefix)
        if f is None:
            continue  # this variant is not in the checkpoint, so vLLM does not build it
        layer_root = rm.layer.checkpoint_root + "." if rm.layer else ""
        if any(layer_root + u in present for u in rm.spec.unless_present):
            continue
        d, msgs = _decide(rm, f, intent, overrides)
        decisions.append(d)
        conflicts.extend(Conflict(module=rm.prefix, message=m) for m in msgs)
    result = Plan(drafter=names.profile.architecture, mode=mode, modules=tuple(decisions),
                  conflicts=tuple(conflicts))
    if mode == "strict" and conflicts:
        lines = "; ".join(f"{c.module}: {c.message}" for c in conflicts[:5])
        more = f" (and {len(conflicts) - 5} more)" if len(conflicts) > 5 else ""
        raise ConflictError(
            f"{origin}: {len(conflicts)} conflict(s) between the quant config and the "
            f"stored draft tensors: {lines}{more}. Fix the config (vllm-draft-quant fix "
            f"{origin} --write) or use mode 'auto' to follow the tensors."
        )
    return result
