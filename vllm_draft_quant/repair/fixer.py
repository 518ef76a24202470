r"""Truthful exclusion entries for a checkpoint's draft layers (what ``fix`` writes).

`compute_fix` reads the plan (the stored format of every draft module) and
returns new exclusion lists, in each producer's own grammar, such that both
our resolver and stock vLLM (`repair.stock`) build every unquantized draft
module unquantized:

- a draft layer whose tensors are all unquantized, when every quantizable
  module in it needs an entry: ModelOpt's tree wildcard ``<layer root>*``
  (e.g. ``model.layers.45*``), which also covers its runtime prefixes
  (Step-3.5's ``mtp_block.``, DeepSeek's ``head``), or
  compressed-tensors' ``re:`` on the layer's checkpoint and runtime roots
  (``re:model\.layers\.61\.``; MiMo ``re:(?:model\.mtp_layers\.0|model\.layers\.36)\.``);
- otherwise, per module: the checkpoint name of every shard (all experts as one
  entry: ModelOpt ``<experts root>*``, compressed-tensors one ``re:`` on the
  experts' checkpoint root and runtime prefix), plus the runtime prefix itself
  where stock vLLM still would not match (Step-3.5's ``mtp_block.*``, DeepSeek's
  ``model.layers.N.head``).

Entries that exclude a *quantized* draft module are removed when that is safe
(an exact name of that module) and reported otherwise. Nothing is added that
would newly exclude a quantized module outside the drafter. Pure: no I/O
beyond the facts' header reads; `render_json` and the caller do the writing.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.checkpoint.facts import CheckpointFacts
from vllm_draft_quant.core import formats
from vllm_draft_quant.core.decisions import Decision, Decisions
from vllm_draft_quant.core.evidence import classify, group_by_module
from vllm_draft_quant.core.intent import intent_from_configs
from vllm_draft_quant.core.names import RuntimeModule, module_of
from vllm_draft_quant.core.rules import Grammar, RuleSet, glob_matches, make_rules
from vllm_draft_quant.core.schemes import Scheme, StoredFormat
from vllm_draft_quant.errors import ConfigError
from vllm_draft_quant.repair.stock import VLLM_VERSION, stock_quantizes

if TYPE_CHECKING:  # fix reads the resolver's plain decisions; a pydantic Plan reads the same
    from typing import TypeAlias

    from vllm_draft_quant.core.plan import ModuleDecision, Plan

    AnyDecision: TypeAlias = Decision | ModuleDecision
    AnyPlan: TypeAlias = Decisions | Plan

__all__ = ["ExclusionList", "FixResult", "compute_fix", "render_json", "unified_diff"]

CONFIG = "config.json"
HF_QUANT = "hf_quant_config.json"


@dataclass(frozen=True)
class ExclusionList:
    """One exclusion field of one file, before and after the fix."""

    file: str
    path: tuple[str, ...]  # keys from the file's top level to the list
    before: tuple[str, ...]
    after: tuple[str, ...]

    @property
    def field(self) -> str:
        return ".".join(self.path)


@dataclass
class FixResult:
    """What `fix` would change, and what it cannot fix."""

    producer: str
    lists: list[ExclusionList] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # information
    remaining: list[str] = field(default_factory=list)  # still untruthful after the fix
    stock_limits: list[str] = field(default_factory=list)  # stock vLLM still fails

    @property
    def changed(self) -> bool:
        return any(x.before != x.after for x in self.lists)

    def new_objects(self, objects: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Copies of the changed files' JSON objects with the new lists in place."""
        out: dict[str, dict[str, Any]] = {}
        for x in self.lists:
            if x.before == x.after:
                continue
            obj = out.setdefault(x.file, json.loads(json.dumps(objects[x.file])))
            node = obj
            for key in x.path[:-1]:
                node = node[key]
            node[x.path[-1]] = list(x.after)
        return out


# ------------------------------------------------------------------------ where lists live
def _exclusion_fields(facts: CheckpointFacts, producer: str) -> list[tuple[str, tuple[str, ...]]]:
    fields: list[tuple[str, tuple[str, ...]]] = []
    if producer == "modelopt" and isinstance(facts.hf_quant_config, dict):
        fields.append((HF_QUANT, ("quantization", "exclude_modules")))
    qc_path: tuple[str, ...] | None = None
    if isinstance(facts.config.get("quantization_config"), dict):
        qc_path = ("quantization_config",)
    else:
        for key in facts.profile.text_config_keys:
            sub = facts.config.get(key)
            if isinstance(sub, dict) and isinstance(sub.get("quantization_config"), dict):
                qc_path = (key, "quantization_config")
                break
    if qc_path is not None:
        qc = _get(facts.config, qc_path)
        if producer == "modelopt" and isinstance(qc.get("quantization"), dict):
            qc_path, qc = (*qc_path, "quantization"), qc["quantization"]
        key = "ignore"
        if producer == "modelopt" and "ignore" not in qc and "exclude_modules" in qc:
            key = "exclude_modules"
        fields.append((CONFIG, (*qc_path, key)))
    return fields


def _get(obj: Mapping[str, Any], path: Sequence[str]) -> Any:
    for key in path:
        obj = obj[key]
    return obj


def _read_list(objects: Mapping[str, Mapping[str, Any]], file: str, path: tuple[str, ...]) -> list[str]:
    node: Any = objects[file]
    for key in path[:-1]:
        node = node[key]
    value = node.get(path[-1], [])
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{file}: field {'.'.join(path)} must be a list of strings, found "
                          f"{value!r}; fix the file by hand, then rerun fix.")
    return list(value)


# ---------------------------------------------------------------------------- matching
def _grammar(producer: str) -> Grammar:
    """The grammar ``fix`` writes for ``producer`` (its quant format's ``fix_grammar``)."""
    grammar = formats.fix_grammar(producer)
    if grammar is None:
        raise ConfigError(f"fix writes no exclusion lists for {producer} configs")
    return grammar


def _entry_hits(producer: str, entry: str) -> Callable[[str], bool]:
    """Does ``entry`` exclude a name, in our grammar *or* in vLLM's looser reading?"""
    grammar = _grammar(producer)
    rule = make_rules([entry], grammar=grammar, origin="fix")[0]
    if grammar == "modelopt":
        return lambda n: rule.matches(n) or entry in n or glob_matches(n, entry)
    if entry.startswith("re:"):
        pat = re.compile(entry[3:])
        return lambda n: pat.match(n) is not None
    return lambda n: n == entry


def _names(d: AnyDecision) -> list[str]:
    return sorted({module_of(t) for t in d.checkpoint_tensors})


class _Context:
    """The facts a fix is computed from, with helpers."""

    def __init__(self, facts: CheckpointFacts, plan: AnyPlan, producer: str, scheme: Scheme):
        self.facts, self.plan, self.producer, self.scheme = facts, plan, producer, scheme
        self.nm = facts.names
        self._quantized_modules: set[str] | None = None
        self._stored: dict[str, StoredFormat] | None = None
        self.flagged: set[str] = set()  # modules already reported as still untruthful

    def runtime(self, d: AnyDecision) -> RuntimeModule | None:
        return self.nm.module(d.module)

    def wants_excluded(self, d: AnyDecision) -> bool:
        return d.kind.quantizable and d.stored is StoredFormat.UNQUANTIZED

    def wants_quantized(self, d: AnyDecision) -> bool:
        return d.kind.quantizable and d.stored not in (
            StoredFormat.UNQUANTIZED, StoredFormat.UNKNOWN)

    def stock(self, d: AnyDecision, entries: Sequence[str]) -> bool | None:
        return stock_quantizes(
            producer=self.producer, scheme=self.scheme, profile=self.facts.profile,
            prefix=d.module, kind=d.kind, entries=entries,
            num_hidden_layers=self.nm.num_hidden_layers)

    def ours(self, d: AnyDecision, entries: Sequence[str]) -> bool:
        """Does our grammar exclude the whole module with these entries?"""
        rules = _rule_set(self.producer, tuple(entries))
        kind = d.kind
        names = _names(d)
        return rules.matches(d.module, kind) or (bool(names) and all(
            rules.matches(n, kind) for n in names))

    def checkpoint_modules(self) -> dict[str, StoredFormat]:
        """Every checkpoint module (any layer) and the format its tensors are stored in."""
        if self._stored is None:
            files = self.facts.files
            names = files.weight_names()
            infos = files.tensors(names)
            self._stored = {
                module: classify(module, {t: infos[t].dtype for t in tensors}).format
                for module, tensors in group_by_module(names).items()
            }
        return self._stored

    def quantized_modules(self) -> set[str]:
        """Checkpoint and runtime names of every module stored quantized (any layer)."""
        if self._quantized_modules is None:
            out = {m for m, fmt in self.checkpoint_modules().items()
                   if fmt is not StoredFormat.UNQUANTIZED}
            out |= {d.module for d in self.plan.modules if self.wants_quantized(d)}
            self._quantized_modules = out
        return self._quantized_modules

    def safe(self, entry: str) -> bool:
        """``entry`` excludes no quantized module (target or draft)."""
        hits = _entry_hits(self.producer, entry)
        return not any(hits(n) for n in self.quantized_modules())


# ------------------------------------------------------------------------------ the fix
def compute_fix(facts: CheckpointFacts, plan: AnyPlan) -> FixResult:
    """The exclusion lists that make ``facts``' configs truthful about its draft tensors."""
    intent = facts.intent
    if intent is None:
        res = FixResult(producer="none")
        res.notes.append("the checkpoint has no quantization config: nothing to exclude")
        return res
    producer = intent.producer
    if formats.fix_grammar(producer) is None or intent.per_module:
        kind = "MIXED_PRECISION ModelOpt" if intent.per_module else intent.method
        raise ConfigError(
            f"{facts.model_dir}: fix writes ModelOpt and compressed-tensors exclusion lists; "
            f"this checkpoint's config is {kind} ({intent.origin}); edit it by hand, or load "
            "it with the plugin (it follows the stored tensors)")
    ctx = _Context(facts, plan, producer, intent.scheme)
    fields = _exclusion_fields(facts, producer)
    objects: dict[str, Mapping[str, Any]] = {CONFIG: facts.config}
    if facts.hf_quant_config is not None:
        objects[HF_QUANT] = facts.hf_quant_config
    current = {f: _read_list(objects, *f) for f in fields}
    merged = list(dict.fromkeys(e for f in fields for e in current[f]))
    res = FixResult(producer=producer)
    removed = _wrong_entries(ctx, merged, res)
    kept = [e for e in merged if e not in removed]
    added = _needed_entries(ctx, kept, res)
    res.added, res.removed = added, sorted(removed)
    for (file, path), before in current.items():
        after = [e for e in before if e not in removed]
        after += [e for e in added if e not in after]
        res.lists.append(ExclusionList(file, path, tuple(before), tuple(after)))
    _verify(ctx, res, objects)
    res.stock_limits = stock_limits(ctx, [*kept, *added])
    return res


def _wrong_entries(ctx: _Context, entries: list[str], res: FixResult) -> set[str]:
    """Entries that exclude a quantized draft module; the safe ones to remove."""
    remove: set[str] = set()
    kept: dict[str, list[str]] = {}
    for d in ctx.plan.modules:
        if not ctx.wants_quantized(d):
            continue
        if ctx.stock(d, entries) is not False and not _any_hit(ctx, d, entries):
            continue  # fast path: nothing excludes it
        own = {d.module, *_names(d)}
        for e in entries:
            hits = _entry_hits(ctx.producer, e)
            by_stock = ctx.stock(d, []) is True and ctx.stock(d, [e]) is not True
            if not (by_stock or any(hits(n) for n in own)):
                continue
            if e in own:
                remove.add(e)
            else:
                kept.setdefault(e, []).append(f"{d.module} ({d.stored})")
                ctx.flagged.add(d.module)
    for e, mods in kept.items():
        shown = ", ".join(mods[:3]) + (f" and {len(mods) - 3} more" if len(mods) > 3 else "")
        res.remaining.append(
            f"entry {e!r} also excludes quantized draft modules {shown}; it was left in place "
            "because it covers other modules too: replace it by hand with narrower entries")
    return remove


@functools.lru_cache(maxsize=8)
def _rule_set(producer: str, entries: tuple[str, ...]) -> RuleSet:
    """The entries as our grammar reads them, compiled once per list (not per module)."""
    return RuleSet(make_rules(list(entries), grammar=_grammar(producer), origin="fix"))


def _any_hit(ctx: _Context, d: AnyDecision, entries: list[str]) -> bool:
    rules = _rule_set(ctx.producer, tuple(entries))
    kind = d.kind
    return any(rules.matches(n, kind) for n in (d.module, *_names(d)))


def _needed_entries(ctx: _Context, kept: list[str], res: FixResult) -> list[str]:
    need = [d for d in ctx.plan.modules
            if ctx.wants_excluded(d) and (not ctx.ours(d, kept) or ctx.stock(d, kept) is not False)]
    added: list[str] = []
    by_layer: dict[str | None, list[AnyDecision]] = {}
    for d in need:
        rm = ctx.runtime(d)
        by_layer.setdefault(rm.layer.checkpoint_root if rm and rm.layer else None, []).append(d)
    for root, mods in by_layer.items():
        if root is not None and _whole_layer(ctx, root, mods):
            entry = _layer_entry(ctx, root, mods)
            if entry is not None and ctx.safe(entry):
                added.append(entry)
                continue
        for d in mods:
            for e in _module_entries(ctx, d):
                if e not in added and e not in kept:
                    added.append(e)
    for d in need:  # runtime prefix where stock vLLM still misses the module
        if ctx.stock(d, [*kept, *added]) is not False and d.module not in added:
            added.append(d.module)
    return added


def _whole_layer(ctx: _Context, root: str, need: list[AnyDecision]) -> bool:
    """All of the layer's tensors are unquantized and every quantizable module needs an entry."""
    in_layer = [d for d in ctx.plan.modules
                if (rm := ctx.runtime(d)) and rm.layer and rm.layer.checkpoint_root == root]
    if {d.module for d in in_layer if d.kind.quantizable} != {d.module for d in need}:
        return False
    return not any(m == root or m.startswith(root + ".") for m in ctx.quantized_modules())


def _ct_pattern(prefixes: Sequence[str]) -> str:
    """One compressed-tensors ``re:`` entry matching everything under any of ``prefixes``
    (vLLM's ``re.match``: anchored at the start; the escaped dot keeps ``layers.4``
    from matching ``layers.40``)."""
    alts = [re.escape(p) for p in dict.fromkeys(prefixes)]
    body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
    return f"re:{body}\\."


def _layer_entry(ctx: _Context, root: str, mods: list[AnyDecision]) -> str | None:
    """One entry for a whole unquantized draft layer: ModelOpt's tree wildcard, or a
    compressed-tensors ``re:`` on the layer's checkpoint and runtime roots (vLLM matches
    runtime prefixes, which for some drafters are not the checkpoint's names)."""
    if ctx.producer == "modelopt":
        return f"{root}*"
    if formats.fix_grammar(ctx.producer) != "compressed-tensors":
        return None
    runtime = {rm.layer.runtime_root for d in mods
               if (rm := ctx.runtime(d)) is not None and rm.layer is not None}
    return _ct_pattern([root, *sorted(runtime)])


def _module_entries(ctx: _Context, d: AnyDecision) -> list[str]:
    names = _names(d)
    rm = ctx.runtime(d)
    if rm is not None and rm.spec.per_expert:
        roots = sorted({c.split(".{e}", 1)[0] for c in rm.checkpoint_modules if "{e}" in c})
        rest = [n for n in names if not any(n.startswith(r + ".") for r in roots)]
        if ctx.producer == "modelopt":
            trees = [f"{r}*" for r in roots]
            if all(ctx.safe(t) for t in trees):
                return trees + rest
        elif formats.fix_grammar(ctx.producer) == "compressed-tensors":
            # every expert by one pattern (vLLM checks expert 0's names under the
            # runtime prefix), instead of one exact name per expert
            pattern = _ct_pattern([*roots, d.module])
            if ctx.safe(pattern):
                return [pattern, *rest]
    return names


def _verify(ctx: _Context, res: FixResult, objects: Mapping[str, Mapping[str, Any]]) -> None:
    """Re-read the new configs as the resolver would; note what is still not truthful."""
    new = {**objects, **res.new_objects(objects)}
    config = new[CONFIG]
    qc = config.get("quantization_config")
    if qc is None:
        qc = ctx.facts.text_config.get("quantization_config")
        for key in ctx.facts.profile.text_config_keys:
            sub = config.get(key)
            if isinstance(sub, dict) and isinstance(sub.get("quantization_config"), dict):
                qc = sub["quantization_config"]
    intent = intent_from_configs(new.get(HF_QUANT), qc)
    if intent is None:
        return
    for d in ctx.plan.modules:
        kind = d.kind
        if not kind.quantizable or d.module in ctx.flagged:
            continue
        stored = d.stored
        if stored is StoredFormat.UNKNOWN:
            res.remaining.append(f"{d.module}: stored format unknown or mixed ({d.reason}); no "
                             "exclusion list can describe it")
            ctx.flagged.add(d.module)
            continue
        said = intent.decide(_names(d), d.module, kind).scheme
        if (said is Scheme.UNQUANTIZED) != (stored is StoredFormat.UNQUANTIZED):
            res.remaining.append(f"{d.module}: the config still says {said} but it is stored {stored}")


# ----------------------------------------------------------------------- stock limits
def stock_limits(ctx: _Context, entries: Sequence[str]) -> list[str]:
    """Why stock vLLM still cannot load this drafter correctly, even with ``entries``.

    The drafter's own limits are profile data (``DrafterProfile.stock``); a profile
    without them gets an honest "no record" instead of a guess.
    """
    profile = ctx.facts.profile
    head = f"stock vLLM {VLLM_VERSION}"
    if profile.stock is None:
        return [f"{head}: no record of how {profile.architecture} reads exclusions; "
                "try the plugin"]
    out = [f"{head} {limit.text}" for limit in profile.stock.limits
           if limit.producer in (None, ctx.producer)]
    out += _double_fed(ctx, head)
    for d in ctx.plan.modules:
        if d.module in ctx.flagged:
            continue
        stored = d.stored
        if not d.kind.quantizable or stored is StoredFormat.UNQUANTIZED:
            if ctx.wants_excluded(d) and ctx.stock(d, entries) is not False:
                out.append(f"{head} would still build {d.module} quantized (stored unquantized)")
            continue
        q = ctx.stock(d, entries)
        if q is None:
            out.append(f"{head} raises on {d.module}: its shards are excluded unevenly")
        elif not q and ctx.stock(d, []) is False:
            out.append(f"{head} builds {d.module} unquantized whatever the config says, but it "
                       f"is stored {stored}: the load fails")
        elif not q:
            out.append(f"{head} would build {d.module} unquantized, but it is stored {stored}")
        elif stored.scheme is not ctx.scheme:
            out.append(f"{head} builds {d.module} as {ctx.scheme} (the config's scheme) but it "
                       f"is stored {stored}")
    return out


def _double_fed(ctx: _Context, head: str) -> list[str]:
    """Modules the drafter's ``load_weights`` also feeds from outside its layers
    (``ModuleSpec.also_fed_by``, first draft layer): stock vLLM writes the feeder's
    ``weight`` into the same parameter, so a feeder stored differently either fails
    the load (another shape) or leaves whichever tensor vLLM reads last."""
    out: list[str] = []
    present = ctx.checkpoint_modules()
    files = ctx.facts.files
    for d in ctx.plan.modules:
        rm = ctx.runtime(d)
        if rm is None or (rm.layer is not None and rm.layer.k != 0) or d.module in ctx.flagged:
            continue
        own = [t for t in d.checkpoint_tensors if t.endswith(".weight")]
        for feeder in rm.spec.also_fed_by:
            fmt = present.get(feeder)
            if fmt is None or fmt is d.stored or not own:
                continue  # no ``weight`` of its own (``weight_packed``): reported below
            shapes = {t.shape for t in files.tensors([f"{feeder}.weight", own[0]]).values()}
            what = ("the load fails (the weights differ in shape)" if len(shapes) > 1
                    else "it keeps whichever of the two weights it reads last")
            out.append(f"{head} also loads {feeder} (stored {fmt}) into {d.module} (stored "
                       f"{d.stored}): {what}")
    return out


# ----------------------------------------------------------------------------- output
def render_json(original: str, obj: Mapping[str, Any]) -> str:
    """``obj`` as JSON in the original file's indentation and final-newline style."""
    indent: int | str | None = None
    m = re.search(r"\n([ \t]+)\S", original)
    if m:
        ws = m.group(1)
        indent = len(ws) if set(ws) == {" "} else ws
    text = json.dumps(obj, indent=indent, ensure_ascii=False)
    return text + "\n" if original.endswith("\n") else text


def unified_diff(name: str, before: str, after: str) -> str:
    """``diff -u`` of two texts, with git's marker for a missing final newline."""
    lines = difflib.unified_diff(before.splitlines(keepends=True),
                                 after.splitlines(keepends=True),
                                 fromfile=f"a/{name}", tofile=f"b/{name}")
    return "".join(x if x.endswith("\n") else x + "\n\\ No newline at end of file\n"
                   for x in lines)
