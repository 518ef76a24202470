"""How stock vLLM 0.33.0 (no plugin) reads an exclusion list for a drafter, as pure data.

`fix` must make a config that *stock* vLLM follows, not only one that reads
truthfully to us, so it checks its entries against this model of vLLM's own
matchers (FINDINGS.md "Names"; ``modelopt.py:is_layer_excluded``,
``quant_utils.py:is_layer_skipped``, ``compressed_tensors/utils.py:
should_ignore_layer``, ``compressed_tensors_moe.py:get_moe_method``):

- ModelOpt: exact runtime prefix (a fused prefix also by all its shards when
  the draft's quant config has a packed-module mapping), for experts any
  entry containing the prefix, then substring containment, then ``fnmatch``.
- compressed-tensors: exact name or ``re:`` (``re.match``) on the runtime
  prefix, else a fused prefix by all its shards; experts by expert 0's
  ``gate/up/down_proj``; ``ParallelLMHead`` is never a ``Linear`` target.

What differs per drafter (whether exclusions see a packed-module mapping, modules
it always builds unquantized, what it cannot load at all) is profile data:
``DrafterProfile.stock`` (`vllm_draft_quant.core.profile.StockBehaviour`), written in
the family's file under ``vllm_draft_quant/profiles/``. A profile without it gets
the cautious reading (no packed mapping, nothing forced) and ``fix`` says it has no
record of that drafter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.rules import GlobIndex
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.core.vllm_range import measured_on
from vllm_draft_quant.profiles import DrafterProfile, StockBehaviour

__all__ = ["VLLM_VERSION", "packed_mapping", "shifted", "stock_behaviour", "stock_quantizes"]

VLLM_VERSION = measured_on()  # the release the stock behaviour was measured on

#: no record: read exclusions as strictly as vLLM ever does (exact shard names do not
#: exclude a fused module) and force nothing
_UNKNOWN = StockBehaviour(quant_config="target", packed_exclusions=False)


def stock_behaviour(profile: DrafterProfile) -> StockBehaviour:
    """The profile's stock-vLLM facts, or the cautious reading when it has none."""
    return profile.stock if profile.stock is not None else _UNKNOWN


def packed_mapping(profile: DrafterProfile) -> dict[str, list[str]]:
    """Fused runtime name -> shard names (last components), as vLLM's mapping has them."""
    out: dict[str, list[str]] = {}
    for spec in (*profile.modules, *profile.globals):
        if spec.fused and not spec.per_expert:
            out[spec.runtime.rsplit(".", 1)[-1]] = [c.rsplit(".", 1)[-1] for c in spec.checkpoint]
    return out


class _Entries:
    """One exclusion list, compiled once for vLLM's ModelOpt matcher: a set for exact
    names, the entries containing ``experts``, and a `GlobIndex` for ``fnmatch``; so each
    question costs time in the prefix's length, not in the number of entries."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.listed = frozenset(entries)
        self.experts = tuple(e for e in self.listed if "experts" in e)
        self.globs = GlobIndex(e for e in self.listed if any(c in e for c in "*?["))
        self._substring: dict[str, bool] = {}
        self._experts: dict[str, bool] = {}

    def contained_in(self, prefix: str) -> bool:
        """Some entry other than ``prefix`` itself is a substring of ``prefix``."""
        hit = self._substring.get(prefix)
        if hit is None:
            n = len(prefix)
            hit = ("" in self.listed and n > 0) or any(
                prefix[i:j] in self.listed for i in range(n) for j in range(i + 1, n + 1)
                if (i, j) != (0, n))
            self._substring[prefix] = hit
        return hit

    def expert_entry_contains(self, prefix: str) -> bool:
        hit = self._experts.get(prefix)
        if hit is None:
            hit = self._experts[prefix] = any(prefix in e for e in self.experts)
        return hit


@functools.lru_cache(maxsize=16)
def _compiled(entries: tuple[str, ...]) -> _Entries:
    return _Entries(entries)


def _modelopt_excluded(prefix: str, entries: Sequence[str],
                       packed: Mapping[str, list[str]]) -> bool | None:
    """vLLM's ModelOpt ``is_layer_excluded``; None where vLLM raises (mixed shards)."""
    if not entries:
        return False
    c = _compiled(tuple(entries))
    proj = prefix.rsplit(".", 1)[-1]
    listed = c.listed
    skipped: bool | None
    if proj in packed and prefix in listed:
        skipped = True
    elif proj in packed:
        shards = {prefix.replace(proj, s) in listed for s in packed[proj]}
        if len(shards) > 1:
            return None
        skipped = shards.pop()
    elif "experts" in prefix:
        skipped = c.expert_entry_contains(prefix)
    else:
        skipped = prefix in listed
    if skipped:
        return True
    if c.contained_in(prefix):
        return True
    # fnmatch (on POSIX the same as fnmatchcase): a plain entry matches only itself
    return prefix in listed or c.globs.any_match(prefix)


class _CtEntries:
    """A compressed-tensors ``ignore`` list compiled once: exact names in a set, each
    ``re:`` entry compiled once (an invalid one never matches, as in vLLM's reading)."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.exact = frozenset(e for e in entries if not e.startswith("re:"))
        self.regexes: list[re.Pattern[str]] = []
        for e in dict.fromkeys(e for e in entries if e.startswith("re:")):
            try:
                self.regexes.append(re.compile(e[3:]))
            except (re.error, OverflowError, RecursionError):
                continue

    def match(self, name: str) -> bool:
        return name in self.exact or any(p.match(name) is not None for p in self.regexes)


_LAYER_NUMBER = re.compile(r"(?<=\.layers\.)\d+")


def shifted(entries: Sequence[str], start: str, offset: int) -> tuple[str, ...]:
    """The entries as a drafter that renumbers them reads them: in each entry starting
    with ``start``, every ``.layers.<k>`` becomes ``.layers.<offset + k>`` (Qwen4Exp:
    ``qwen4_exp/nvidia/mtp.py:_remap_ignored_layers``)."""
    return tuple(_LAYER_NUMBER.sub(lambda m: str(offset + int(m.group(0))), e)
                 if e.startswith(start) else e for e in entries)


@functools.lru_cache(maxsize=16)
def _ct_compiled(entries: tuple[str, ...]) -> _CtEntries:
    return _CtEntries(entries)


def _ct_ignored(prefix: str, entries: Sequence[str], packed: Mapping[str, list[str]]) -> bool | None:
    """vLLM's ``should_ignore_layer`` (``config_utils.py:find_matching_patterns``): an
    entry naming the prefix itself wins; else every shard of a fused prefix must match."""
    c = _ct_compiled(tuple(entries))
    if c.match(prefix):
        return True
    proj = prefix.rsplit(".", 1)[-1]
    names = [prefix.replace(proj, s) for s in packed[proj]] if proj in packed else [prefix]
    hits = {c.match(n) for n in names}
    return None if len(hits) > 1 else hits.pop()


def stock_quantizes(
    *,
    producer: str,
    scheme: Scheme,
    profile: DrafterProfile,
    prefix: str,
    kind: ModuleKind,
    entries: Sequence[str],
    architecture: str | None = None,
    num_hidden_layers: int = 0,
) -> bool | None:
    """Would stock vLLM build this draft module quantized? None: vLLM raises instead.

    The drafter's facts come from ``profile.stock``; ``architecture``, if given, must
    name that profile (callers from before the facts moved into the profile pass it).
    ``num_hidden_layers`` (the target's) is what a drafter that renumbers the entries
    (``StockBehaviour.shifts_layer_numbers``) adds to their layer numbers.
    """
    if architecture is not None and architecture != profile.architecture and \
            architecture not in profile.architecture_aliases:
        raise ValueError(f"stock_quantizes: architecture {architecture!r} is not the "
                         f"profile's ({profile.architecture!r})")
    if not kind.quantizable:
        return False
    drafter = stock_behaviour(profile)
    if (producer, scheme, prefix) in drafter.always_unquantized:
        return False
    packed = packed_mapping(profile) if drafter.packed_exclusions else {}
    if drafter.shifts_layer_numbers is not None:
        entries = shifted(entries, drafter.shifts_layer_numbers, num_hidden_layers)
    grammar = formats.fix_grammar(producer)  # the lists fix writes are read by this matcher
    if grammar == "modelopt":
        excluded = _modelopt_excluded(prefix, entries, packed)
    elif grammar == "compressed-tensors":
        if kind is ModuleKind.LM_HEAD:
            return False
        if kind is ModuleKind.EXPERTS:
            seen = {_ct_ignored(f"{prefix}.0.{p}", entries, {})
                    for p in ("gate_proj", "up_proj", "down_proj")}
            excluded = None if len(seen) > 1 else seen.pop()
        else:
            excluded = _ct_ignored(prefix, entries, packed)
    else:
        return None
    return None if excluded is None else not excluded
