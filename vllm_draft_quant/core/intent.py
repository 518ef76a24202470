"""What a checkpoint's quantization config *says* about each module.

`QuantIntent` is parsed from ``hf_quant_config.json`` and/or ``config.json``
``quantization_config`` (dicts; reading files is the caller's job) and answers,
for the checkpoint names of one module, which scheme the config intends and
which rule said so. Each producer's grammar lives in its format module
(`vllm_draft_quant.core.formats`); `intent_from_configs` picks the format by
``quant_method`` and adds who said it: ``producer`` is the format's name, a
closed `Producer` (``other`` for a ``quant_method`` no format reads), and
``method`` the ``quant_method`` as written, for messages.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vllm_draft_quant.core import formats
from vllm_draft_quant.core.formats import ConfigReading, Producer, QuantFormat, TargetGroup
from vllm_draft_quant.core.formats.modelopt import parse_hf_quant_config
from vllm_draft_quant.core.rules import Rule, RuleSet
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["Intent", "Producer", "QuantIntent", "intent_from_configs"]


@dataclass(frozen=True)
class Intent:
    """The config's answer for one module."""

    scheme: Scheme
    rule: Rule | None  # the exclusion/target rule that decided, if any
    reason: str
    partial: bool = False  # some shards excluded, others not
    group_size: int | None = None  # packed integers: the group size the config says


@dataclass(frozen=True)
class QuantIntent:
    producer: Producer  # the format's name in the registry
    scheme: Scheme  # the default scheme of quantized modules
    exclusions: RuleSet
    origin: str
    method: str  # the config's quant_method as written (``modelopt`` for hf_quant_config.json)
    groups: tuple[TargetGroup, ...] = ()  # compressed-tensors targets
    per_module: Mapping[str, Scheme] = field(default_factory=dict)  # MIXED_PRECISION
    quantizes_lm_heads: bool = True  # False: vLLM never quantizes an LM head for this format
    group_size: int | None = None  # packed integers: the default group size

    @classmethod
    def of(cls, fmt: QuantFormat, reading: ConfigReading, origin: str, method: str) -> QuantIntent:
        heads = fmt.quantizes_lm_heads if reading.quantizes_lm_heads is None \
            else reading.quantizes_lm_heads
        return cls(fmt.name, reading.scheme, reading.exclusions, origin, method, reading.groups,
                   reading.per_module, heads, reading.group_size)

    def decide(self, checkpoint_names: Sequence[str], runtime_name: str, kind: ModuleKind) -> Intent:
        """What the config intends for one runtime module.

        ``checkpoint_names`` are the checkpoint module names of every shard (every
        expert's, for fused experts). Rules are written in checkpoint names, but a
        rule naming the runtime prefix (e.g. a fused ``qkv_proj``) counts too.
        """
        if not kind.quantizable:
            return Intent(Scheme.UNQUANTIZED, None, f"{kind.value} module: vLLM never quantizes it")
        if kind is ModuleKind.LM_HEAD and not self.quantizes_lm_heads:
            return Intent(Scheme.UNQUANTIZED, None,
                          f"{self.method} configs never quantize an LM head in vLLM")
        names = [*checkpoint_names, runtime_name]
        if self.per_module:
            listed = {self.per_module[n] for n in names if n in self.per_module}
            if len(listed) == 1:
                s = listed.pop()
                return Intent(s, None, f"{self.origin}.quantized_layers lists it as {s}")
            if not listed:
                return Intent(Scheme.UNQUANTIZED, None,
                              f"{self.origin}.quantized_layers does not list it")
            # Shards listed with different algorithms: no single scheme is intended
            # (and none may depend on the order of quantized_layers).
            return Intent(Scheme.UNKNOWN, None, f"{self.origin}.quantized_layers lists its "
                          f"shards as {', '.join(sorted(s.value for s in listed))}")
        if self.exclusions:
            hit = [n for n in checkpoint_names if self.exclusions.matches(n, kind)]
            whole = self.exclusions.matches(runtime_name, kind) or (
                bool(checkpoint_names) and len(hit) == len(checkpoint_names))
            if whole or hit:
                rule = self.exclusions.first_match(hit or [runtime_name], kind)
                where = f"{rule.origin} {rule.text!r}" if rule else "an exclusion"
                if whole:
                    return Intent(Scheme.UNQUANTIZED, rule, f"excluded by {where}")
                return Intent(self.scheme, rule,
                              f"{len(hit)} of {len(checkpoint_names)} shards excluded by {where}",
                              partial=True, group_size=self.group_size)
        if self.groups:
            for g in self.groups:
                r = g.targets.first_match(names, kind)
                if r is not None:
                    return Intent(g.scheme, None, f"targeted by {r.origin} {r.text!r}",
                                  group_size=g.group_size)
            return Intent(Scheme.UNQUANTIZED, None, f"{self.origin}: no config group targets it")
        return Intent(self.scheme, None, f"{self.origin}: {self.scheme} by default, no exclusion "
                      "matches", group_size=self.group_size)


def intent_from_configs(
    hf_quant_config: Mapping[str, Any] | None,
    quantization_config: Mapping[str, Any] | None,
    *,
    hf_quant_origin: str = "hf_quant_config.json",
    config_origin: str = "config.json",
) -> QuantIntent | None:
    """Parse the quantization intent; None for an unquantized checkpoint.

    When both files describe a ModelOpt export, their exclusions are merged
    (they describe the same tensors); the algorithm comes from
    ``hf_quant_config.json``.
    """
    intents: list[QuantIntent] = []
    if hf_quant_config is not None:
        q = hf_quant_config.get("quantization")
        origin = f"{hf_quant_origin}: quantization"
        if not isinstance(q, dict):
            raise ConfigError(f"{hf_quant_origin}: field 'quantization' must be an object with "
                              "'quant_algo' and 'exclude_modules'; found "
                              f"{type(q).__name__}. Re-export or fix the file.")
        intents.append(QuantIntent.of(formats.MODELOPT, parse_hf_quant_config(q, origin), origin,
                                      "modelopt"))
    if quantization_config is not None:
        qc = quantization_config
        origin = f"{config_origin}: quantization_config"
        method = qc.get("quant_method")
        if not isinstance(method, str):
            raise ConfigError(f"{origin}.quant_method: missing or not a string ({method!r}); "
                              "it names the producer (modelopt, compressed-tensors, quark, fp8, ...).")
        fmt = formats.for_method(method)
        intents.append(QuantIntent.of(fmt, fmt.parse(qc, origin), origin, method.lower()))
    if not intents:
        return None
    if len(intents) == 2 and intents[0].producer == intents[1].producer:
        return _merged(*intents)
    # Different producers: config.json is what vLLM reads first.
    return intents[-1]


def _merged(a: QuantIntent, b: QuantIntent) -> QuantIntent:
    """One ModelOpt export described by both files: ``a``'s algorithm, both exclusion lists."""
    rules: list[Rule] = [*a.exclusions.rules, *b.exclusions.rules]
    return QuantIntent(a.producer, a.scheme, RuleSet(rules), f"{a.origin} + {b.origin}", a.method,
                       per_module=a.per_module or b.per_module,
                       quantizes_lm_heads=a.quantizes_lm_heads)
