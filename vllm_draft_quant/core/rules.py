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
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.errors import ConfigError

__all__ = ["GRAMMARS", "Grammar", "Rule", "RuleSet"]

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
    if grammar in ("modelopt", "quark") and any(ch in text for ch in "*?["):
        # `path*` with path ending in a letter or digit; a bare `*`, `x.*` or
        # `gate_*` is a plain glob.
        if grammar == "modelopt" and text.endswith("*") and text[-2:-1].isalnum() \
                and not any(ch in text[:-1] for ch in "*?["):
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
        return lambda name, kind: fnmatch.fnmatchcase(name, text)
    if form == "substring":
        return lambda name, kind: text in name
    return lambda name, kind: name == text


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


class RuleSet:
    """A compiled set of rules: exact names by hash lookup, the rest by one pass.

    ``first_match`` is deterministic and independent of the rules' order.
    """

    def __init__(self, rules: Iterable[Rule]):
        self.rules: tuple[Rule, ...] = tuple(sorted(set(rules), key=lambda r: (r.text, r.origin)))
        self._exact: dict[str, Rule] = {}
        others: list[Rule] = []
        for r in self.rules:
            if r.form == "exact":
                self._exact.setdefault(r.text, r)
            else:
                others.append(r)
        self._others = [(r, _matcher(r)) for r in others]
        globs = [r for r in others if r.form in ("glob", "tree")]
        # One combined regex answers "does any glob match" in one call.
        self._any_glob: re.Pattern[str] | None = None
        if globs:
            parts = [
                fnmatch.translate(r.text) if r.form == "glob"
                else re.escape(r.text[:-1]) + r"(?:\..*)?\Z"
                for r in globs
            ]
            self._any_glob = re.compile("|".join(f"(?:{p})" for p in parts), re.S)
        self._non_glob = [(r, m) for r, m in self._others if r.form not in ("glob", "tree")]

    def __bool__(self) -> bool:
        return bool(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def first_match(self, names: Sequence[str], kind: ModuleKind | None = None) -> Rule | None:
        """The first rule (sorted order) matching any of ``names``, or None."""
        hits = [self._exact[n] for n in names if n in self._exact]
        glob_hit = self._any_glob is not None and any(
            self._any_glob.match(n) is not None for n in names
        )
        for r, m in self._others:
            if (r.form in ("glob", "tree") and not glob_hit):
                continue
            if any(m(n, kind) for n in names):
                hits.append(r)
                break
        if not hits:
            return None
        return min(hits, key=lambda r: (r.text, r.origin))

    def matches(self, name: str, kind: ModuleKind | None = None) -> bool:
        """Fast path: does any rule match this one name?"""
        if name in self._exact:
            return True
        if self._any_glob is not None and self._any_glob.match(name) is not None:
            return True
        return any(m(name, kind) for _, m in self._non_glob)
