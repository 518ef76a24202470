"""What a quant format module provides (`QuantFormat`) and the data it answers with.

A format is one producer's way of writing a quantized checkpoint. Its module
holds, as one `QuantFormat`:

- its **producer grammar**: ``parse`` reads its ``quantization_config`` section
  (a dict; reading files is the caller's job) into a `ConfigReading`;
- its **stored-format classification**: ``classify`` says which `StoredFormat`
  a module's ``{param suffix: safetensors dtype}`` is, or None when the layout
  is not one this format writes;
- whether vLLM quantizes **LM heads** under it when no rule says otherwise;
- the rule **grammar** ``fix`` writes exclusions in (None: ``fix`` refuses);
- the **vLLM config** it builds for a stored scheme, as data (`VllmConfigSpec`),
  and how to read the scheme back from a vLLM config object of its own
  (``vllm_names``, ``runtime_attrs``, ``runtime_scheme``; the adapter reads the
  attributes and passes their plain values, so no vLLM object reaches the core).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from vllm_draft_quant.core.rules import Grammar, RuleSet, make_rules
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat

__all__ = ["E8M0_DTYPES", "FP8_DTYPES", "ConfigReading", "Params", "Producer", "QuantFormat",
           "Shapes", "TargetGroup", "VllmConfigSpec", "ordered_groups", "rule_group"]

#: the registry's format names; a ``quant_method`` no format reads is ``other``
Producer = Literal["modelopt", "compressed-tensors", "quark", "fp8", "gptq", "awq", "auto-round",
                   "moe_wna16", "mxfp4", "other"]

#: one module's stored parameters: ``{param suffix: safetensors dtype}``
Params = Mapping[str, str]
#: one module's stored shapes: ``{param suffix: shape}`` (header facts, like the dtypes)
Shapes = Mapping[str, tuple[int, ...]]
#: safetensors dtypes of FP8 data, and of MX (power-of-two) scales
FP8_DTYPES = frozenset({"F8_E4M3", "F8_E5M2"})
E8M0_DTYPES = frozenset({"U8", "F8_E8M0"})


@dataclass(frozen=True)
class TargetGroup:
    """A compressed-tensors config group: the scheme it quantizes the modules it targets with."""

    scheme: Scheme
    targets: RuleSet
    name: str
    group_size: int | None = None  # packed integers: the group size it says (-1: channel)


def rule_group(scheme: Scheme, patterns: list[str], *, grammar: Grammar, origin: str, name: str,
               group_size: int | None = None) -> TargetGroup:
    """One target group: the modules ``patterns`` (in ``grammar``) match get ``scheme``."""
    return TargetGroup(scheme, RuleSet(make_rules(patterns, grammar=grammar, origin=origin)), name,
                       group_size)


def ordered_groups(listed: list[TargetGroup] | tuple[TargetGroup, ...], default: Scheme, *,
                   everything: str, grammar: Grammar, origin: str, name: str,
                   group_size: int | None = None) -> tuple[TargetGroup, ...]:
    """Per-module overrides a config lists in its own order (the first that matches
    decides), then every other module with the config's defaults (``everything``: the
    grammar's match-all pattern); none when it lists none. What GPTQ ``dynamic``, AutoRound
    ``extra_config`` and Quark ``layer_quant_config`` read into."""
    if not listed:
        return ()
    return (*listed, rule_group(default, [everything], grammar=grammar, origin=origin, name=name,
                                group_size=group_size))


@dataclass(frozen=True)
class ConfigReading:
    """What one config section says, before the core adds who said it."""

    scheme: Scheme  # the default scheme of quantized modules
    exclusions: RuleSet
    groups: tuple[TargetGroup, ...] = ()  # compressed-tensors targets
    per_module: Mapping[str, Scheme] = field(default_factory=dict)  # ModelOpt MIXED_PRECISION
    #: None: the format's `QuantFormat.quantizes_lm_heads`; a config field may say otherwise
    #: (GPTQ/AWQ ``lm_head: true``)
    quantizes_lm_heads: bool | None = None
    #: packed integers: the default group size the config says (-1: per channel)
    group_size: int | None = None


@dataclass(frozen=True)
class VllmConfigSpec:
    """A vLLM quant config as data: ``get_quantization_config(method).from_config(config)``."""

    method: str
    config: Mapping[str, Any]


def _claims_nothing(params: Params) -> StoredFormat | None:
    return None


def _no_layout(params: Params, shapes: Shapes) -> tuple[StoredFormat, IntLayout | None] | None:
    return None


def _builds_no_layout(stored: StoredFormat, layout: IntLayout | None) -> VllmConfigSpec | None:
    return None


def _reads_nothing(name: str, attrs: Mapping[str, Any]) -> Scheme | None:
    return None


@dataclass(frozen=True)
class QuantFormat:
    """One quant format: every fact the core, ``fix`` and the adapter need about it."""

    name: Producer
    parse: Callable[[Mapping[str, Any], str], ConfigReading]
    #: ``quantization_config.quant_method`` values it parses (lower case; ``x*``: prefix);
    #: empty: its own name
    quant_methods: tuple[str, ...] = ()
    classify: Callable[[Params], StoredFormat | None] = _claims_nothing
    quantizes_lm_heads: bool = True
    fix_grammar: Grammar | None = None
    builds: Mapping[Scheme, VllmConfigSpec] = field(default_factory=dict)
    #: ``QuantizationConfig.get_name()`` values of the vLLM configs it reads back;
    #: empty: its own name
    vllm_names: tuple[str, ...] = ()
    #: attributes of those configs ``runtime_scheme`` is given, as plain values
    runtime_attrs: tuple[str, ...] = ()
    runtime_scheme: Callable[[str, Mapping[str, Any]], Scheme | None] = _reads_nothing
    #: with shapes: the stored format and, for packed integers, bits and group size read
    #: from the shapes (None: not a layout of this format; ``classify`` is asked then)
    classify_shapes: Callable[[Params, Shapes], tuple[StoredFormat, IntLayout | None] | None] = \
        _no_layout
    #: the vLLM config that loads a module stored as ``stored`` with ``layout`` (None: none)
    builds_stored: Callable[[StoredFormat, IntLayout | None], VllmConfigSpec | None] = \
        _builds_no_layout

    def __post_init__(self) -> None:
        for attr in ("quant_methods", "vllm_names"):
            if not getattr(self, attr):
                object.__setattr__(self, attr, (self.name,))

    def reads_method(self, method: str) -> bool:
        return any(method.startswith(m[:-1]) if m.endswith("*") else method == m
                   for m in self.quant_methods)
