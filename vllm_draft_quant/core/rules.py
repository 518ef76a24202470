"""Exclusion and target rules in each producer's own grammar, compiled for matching.

What each producer means (we match what the producer *meant*, in checkpoint
names, and document where vLLM's own matcher differs):

- **ModelOpt** (``hf_quant_config.json`` ``quantization.exclude_modules``,
  ``config.json`` ``quantization_config.ignore``): module names with
  ``fnmatch`` wildcards. ModelOpt writes ``path*`` for "the module tree rooted
  at ``path``", so ``model.layers.4*`` means ``model.layers.4`` and
  ``model.layers.4.*``, not ``model.layers.40`` (vLLM's ``is_layer_excluded``
  also does substring containment, so for vLLM ``model.layers.4`` hits
  ``model.layers.40`` too). Only a path ending in a letter or digit reads as a
  tree: ``*``, ``x.*`` and ``gate_*`` are plain ``fnmatch`` globs.
- **compressed-tensors** (``ignore``, ``config_groups.*.targets``): exact
  module names, ``re:`` regexes matched with ``re.match`` (anchored at the
  start only), or class names (``Linear``). A fused module is ignored only if
  every shard is.
- **Quark** (``exclude``): exact names, ``fnmatch`` globs and ``re:`` regexes.
- **modules_to_not_convert** (transformers' GPTQ/AWQ/bnb/MXFP4 configs):
  substring containment, as transformers checks it.
- **ignored_layers** (vLLM's ``fp8`` config): exact names, fused names
  expanded by the caller.
- **gptq** (GPTQModel's ``dynamic`` keys): ``-:<regex>`` (skip) or ``+:<regex>`` /
  ``<regex>`` (override), matched with ``re.match`` (anchored at the start only), the
  first key in the dict's order that matches deciding (``gptq.py`` compiles that
  order into the patterns).

A rule set's decision is independent of rule order: a name is excluded iff
*some* rule matches, and the rule reported is the first match in sorted order.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.errors import ConfigError

__all__ = ["GRAMMARS", "GlobIndex", "Grammar", "Rule", "RuleSet", "glob_matches"]

Grammar = Literal["modelopt", "compressed-tensors", "quark", "substring", "exact", "gptq"]
GRAMMARS: tuple[Grammar, ...] = get_args(Grammar)

# Class names a compressed-tensors/Quark rule may use, and the module kinds they cover.
_CLASS_KINDS: dict[str, frozenset[ModuleKind]] = {
    "Linear": frozenset({ModuleKind.LINEAR, ModuleKind.EXPERTS, ModuleKind.LM_HEAD}),
    "LinearBase": frozenset({ModuleKind.LINEAR}),
    "FusedMoE": frozenset({ModuleKind.EXPERTS}),
    "LMHead": frozenset({ModuleKind.LM_HEAD}),
    "ParallelLMHead": frozenset({ModuleKind.LM_HEAD}),
}
_WILD = re.compile(r"[*?\[]")


def _wild(text: str) -> bool:
    return "*" in text or "?" in text or "[" in text
_CLASS_NAME = re.compile(r"[A-Z][A-Za-z0-9_]*\Z")
# Longest rule we compile; longer ones are refused (hostile configs).
_MAX_RULE_LEN = 4096


@dataclass(frozen=True)
class Rule:
    """One rule as written, where it came from, and how it matches."""

    text: str
    grammar: str
    origin: str  # "<file>: <field>[<i>]"
    form: str = field(default="exact", compare=False)  # exact | glob | tree | regex | class | substring

    def matches(self, name: str, kind: ModuleKind | None = None) -> bool:
        return bool(_matcher(self)(name, kind))


def _classify(text: str, grammar: str) -> str:
    if grammar == "substring":
        return "substring"
    if grammar == "gptq":
        return "regex"
    if grammar in ("compressed-tensors", "quark") and text.startswith("re:"):
        return "regex"
    if grammar in ("compressed-tensors", "quark") and _CLASS_NAME.match(text) and text in _CLASS_KINDS:
        return "class"
    if grammar in ("modelopt", "quark") and _wild(text):
        # `path*` with path ending in a letter or digit; a bare `*`, `x.*` or
        # `gate_*` is a plain glob.
        if grammar == "modelopt" and text.endswith("*") and text[-2:-1].isalnum() \
                and not _wild(text[:-1]):
            return "tree"
        return "glob"
    return "exact"


def _regex_body(rule: Rule) -> str:
    if rule.grammar == "gptq":
        return rule.text[2:] if rule.text[:2] in ("-:", "+:") else rule.text
    return rule.text[3:]


def _compile_regex(rule: Rule) -> re.Pattern[str]:
    try:
        return re.compile(_regex_body(rule))
    except (re.error, OverflowError, RecursionError) as e:  # a{99999999999}, deep nesting
        raise ConfigError(
            f"{rule.origin}: {rule.text!r} is not a valid regular expression ({e}); "
            "fix the pattern (Python re syntax)."
        ) from e


def _matcher(rule: Rule):  # type: ignore[no-untyped-def]
    form, text = rule.form, rule.text
    if form == "regex":
        pat = _compile_regex(rule)
        return lambda name, kind: pat.match(name) is not None
    if form == "class":
        kinds = _CLASS_KINDS[text]
        return lambda name, kind: kind in kinds
    if form == "tree":
        root = text[:-1]
        return lambda name, kind: name == root or name.startswith(root + ".")
    if form == "glob":
        pat = _glob_regex(text)
        return lambda name, kind: pat.match(name) is not None
    if form == "substring":
        return lambda name, kind: text in name
    return lambda name, kind: name == text


def glob_matches(name: str, pattern: str) -> bool:
    """``fnmatch.fnmatchcase(name, pattern)`` with the pattern compiled once."""
    return _glob_regex(pattern).match(name) is not None


def make_rules(entries: object, *, grammar: Grammar, origin: str) -> tuple[Rule, ...]:
    """Parse a list of rule strings from a config field, with a clear error on bad types."""
    if entries is None:
        return ()
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list):
        raise ConfigError(
            f"{origin}: expected a list of module names or patterns, found "
            f"{type(entries).__name__}; write it as a JSON list of strings."
        )
    rules = []
    for i, text in enumerate(entries):
        where = f"{origin}[{i}]"
        if not isinstance(text, str):
            raise ConfigError(
                f"{where}: expected a string, found {type(text).__name__} {text!r}; "
                "every entry must be a module name or pattern."
            )
        if len(text) > _MAX_RULE_LEN:
            raise ConfigError(f"{where}: entry is {len(text)} characters long (limit "
                              f"{_MAX_RULE_LEN}); shorten the pattern.")
        rule = Rule(text, grammar, where, _classify(text, grammar))
        if rule.form == "regex":
            _compile_regex(rule)
        rules.append(rule)
    return tuple(rules)


@functools.lru_cache(maxsize=1 << 16)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``fnmatch.fnmatchcase``'s regex for ``pattern``, compiled once (fnmatch's own cache
    holds 32,768 patterns and thrashes beyond that)."""
    return re.compile(fnmatch.translate(pattern), re.S)


class GlobIndex:
    """Which of many ``fnmatch`` globs match a name, in time linear in the name, not in
    the number of globs: each glob is filed under its literal prefix (the text before
    its first wildcard), so a name only tries the globs filed under one of its own
    prefixes; each glob's regex is compiled once, when first tried."""

    def __init__(self, patterns: Iterable[str]):
        self._by_prefix: dict[str, list[str]] = {}
        for p in dict.fromkeys(patterns):
            m = _WILD.search(p)
            lead = p if m is None else p[: m.start()]
            self._by_prefix.setdefault(lead, []).append(p)
        self._lengths = sorted({len(k) for k in self._by_prefix})

    def __bool__(self) -> bool:
        return bool(self._by_prefix)

    def matching(self, name: str) -> Iterator[str]:
        """The globs matching ``name`` (by literal prefix length, then in given order)."""
        for n in self._lengths:
            if n > len(name):
                break
            for p in self._by_prefix.get(name[:n], ()):
                if p == name or (_wild(p) and _glob_regex(p).match(name)):
                    yield p

    def any_match(self, name: str) -> bool:
        return next(self.matching(name), None) is not None


_COMBINE_MAX = 256


def _order(r: Rule) -> tuple[str, str]:
    return r.text, r.origin


def _first(a: Rule | None, b: Rule) -> Rule:
    return b if a is None or _order(b) < _order(a) else a


class RuleSet:
    """A compiled set of rules: exact names by hash lookup, ModelOpt trees by their
    roots, globs through a `GlobIndex`, the rest one by one. Building and matching are
    linear in the number of rules (no regex combining them all).

    ``first_match`` is deterministic and independent of the rules' order.
    """

    def __init__(self, rules: Iterable[Rule]):
        self._set = frozenset(rules)
        self._sorted: tuple[Rule, ...] | None = None
        self._exact: dict[str, Rule] = {}
        self._trees: dict[str, Rule] = {}
        self._globs: dict[str, Rule] = {}
        others: list[Rule] = []
        first = _first
        for r in self._set:
            if r.form == "exact":
                self._exact[r.text] = first(self._exact.get(r.text), r)
            elif r.form == "tree":
                self._trees[r.text[:-1]] = first(self._trees.get(r.text[:-1]), r)
            elif r.form == "glob":
                self._globs[r.text] = first(self._globs.get(r.text), r)
            else:
                others.append(r)
        others.sort(key=_order)
        self._glob_index = GlobIndex(self._globs)
        self._non_glob = [(r, _matcher(r)) for r in others]
        # A few globs/trees (the usual case): one combined regex answers "any of them?"
        # at C speed. Many: the index only (compiling a regex of thousands of
        # alternatives costs more than it saves, and grows faster than linearly).
        self._any_glob: re.Pattern[str] | None = None
        if 0 < len(self._globs) + len(self._trees) <= _COMBINE_MAX:
            parts = [fnmatch.translate(g) for g in self._globs]
            parts += [re.escape(t) + r"(?:\..*)?\Z" for t in self._trees]
            self._any_glob = re.compile("|".join(f"(?:{p})" for p in parts), re.S)

    @property
    def rules(self) -> tuple[Rule, ...]:
        """Every rule once, in sorted order (text, then origin)."""
        if self._sorted is None:
            self._sorted = tuple(sorted(self._set, key=_order))
        return self._sorted

    def __bool__(self) -> bool:
        return bool(self._set)

    def __len__(self) -> int:
        return len(self._set)

    def _tree_hits(self, name: str) -> Iterator[Rule]:
        if not self._trees:
            return
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            r = self._trees.get(".".join(parts[:i]))
            if r is not None:
                yield r

    def _hits(self, name: str, kind: ModuleKind | None) -> Iterator[Rule]:
        r = self._exact.get(name)
        if r is not None:
            yield r
        if self._any_glob is None or self._any_glob.match(name) is not None:
            yield from self._tree_hits(name)
            for g in self._glob_index.matching(name):
                yield self._globs[g]
        for r, m in self._non_glob:
            if m(name, kind):
                yield r

    def first_match(self, names: Sequence[str], kind: ModuleKind | None = None) -> Rule | None:
        """The first rule (sorted order) matching any of ``names``, or None."""
        hits = [r for n in names for r in self._hits(n, kind)]
        if not hits:
            return None
        return min(hits, key=_order)

    def matches(self, name: str, kind: ModuleKind | None = None) -> bool:
        """Fast path: does any rule match this one name?"""
        return next(self._hits(name, kind), None) is not None
