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

import fnmatch
import re
from collections.abc import Mapping, Sequence

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.core.vllm_range import measured_on
from vllm_draft_quant.profiles import DrafterProfile, StockBehaviour

__all__ = ["VLLM_VERSION", "packed_mapping", "stock_behaviour", "stock_quantizes"]

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


def _modelopt_excluded(prefix: str, entries: Sequence[str],
                       packed: Mapping[str, list[str]]) -> bool | None:
    """vLLM's ModelOpt ``is_layer_excluded``; None where vLLM raises (mixed shards)."""
    if not entries:
        return False
    proj = prefix.rsplit(".", 1)[-1]
    listed = set(entries)
    skipped: bool | None
    if proj in packed and prefix in listed:
        skipped = True
    elif proj in packed:
        shards = {prefix.replace(proj, s) in listed for s in packed[proj]}
        if len(shards) > 1:
            return None
        skipped = shards.pop()
    elif "experts" in prefix:
        skipped = any(prefix in e for e in entries if "experts" in e)
    else:
        skipped = prefix in listed
    if skipped:
        return True
    if any(e != prefix and e in prefix for e in entries):
        return True
    return any(fnmatch.fnmatch(prefix, e) for e in entries)


def _ct_match(name: str, entry: str) -> bool:
    if entry.startswith("re:"):
        try:
            return re.match(entry[3:], name) is not None
        except re.error:
            return False
    return name == entry


def _ct_ignored(prefix: str, entries: Sequence[str], packed: Mapping[str, list[str]]) -> bool | None:
    """vLLM's ``should_ignore_layer`` (``config_utils.py:find_matching_patterns``): an
    entry naming the prefix itself wins; else every shard of a fused prefix must match."""
    if any(_ct_match(prefix, e) for e in entries):
        return True
    proj = prefix.rsplit(".", 1)[-1]
    names = [prefix.replace(proj, s) for s in packed[proj]] if proj in packed else [prefix]
    hits = {any(_ct_match(n, e) for e in entries) for n in names}
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
) -> bool | None:
    """Would stock vLLM build this draft module quantized? None: vLLM raises instead.

    The drafter's facts come from ``profile.stock``; ``architecture``, if given, must
    name that profile (callers from before the facts moved into the profile pass it).
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
