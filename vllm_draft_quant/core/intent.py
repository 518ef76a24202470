"""What a checkpoint's quantization config *says* about each module.

`QuantIntent` is parsed from ``hf_quant_config.json`` and/or ``config.json``
``quantization_config`` (dicts; reading files is the caller's job) and answers,
for the checkpoint names of one module, which scheme the config intends and
which rule said so. Supported producers: ModelOpt (incl. ``MIXED_PRECISION``
``quantized_layers``), compressed-tensors, Quark, DeepSeek-native ``fp8``, and
the transformers-style ``modules_to_not_convert`` of GPTQ/AWQ/MXFP4 configs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vllm_draft_quant.core.rules import Rule, RuleSet, make_rules
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.errors import ConfigError

__all__ = ["Intent", "QuantIntent", "intent_from_configs"]

# Producers that leave LM heads unquantized unless told otherwise (DeepSeek's native
# fp8 export keeps lm_head and shared_head.head BF16 with no ignore list; vLLM's
# fp8.py get_quant_method only quantizes LinearBase and MoE layers).
_HEADS_NEVER_QUANTIZED = frozenset({"fp8", "gptq", "awq", "mxfp4"})

_MODELOPT_ALGOS = {
    "NVFP4": Scheme.NVFP4,
    "FP8": Scheme.FP8,
    "FP8_PER_CHANNEL_PER_TOKEN": Scheme.FP8,
    "FP8_PB_WO": Scheme.FP8_BLOCK,
    "W4A8_AWQ": Scheme.INT4,
    "W4A16_AWQ": Scheme.INT4,
    "MXFP4": Scheme.MXFP4,
}


@dataclass(frozen=True)
class Intent:
    """The config's answer for one module."""

    scheme: Scheme
    rule: Rule | None  # the exclusion/target rule that decided, if any
    reason: str
    partial: bool = False  # some shards excluded, others not


@dataclass(frozen=True)
class TargetGroup:
    scheme: Scheme
    targets: RuleSet
    name: str


@dataclass(frozen=True)
class QuantIntent:
    producer: str  # modelopt | compressed-tensors | quark | fp8 | <quant_method>
    scheme: Scheme  # the default scheme of quantized modules
    exclusions: RuleSet
    origin: str
    groups: tuple[TargetGroup, ...] = ()  # compressed-tensors/quark targets
    per_module: Mapping[str, Scheme] = field(default_factory=dict)  # MIXED_PRECISION

    def decide(self, checkpoint_names: Sequence[str], runtime_name: str, kind: ModuleKind) -> Intent:
        """What the config intends for one runtime module.

        ``checkpoint_names`` are the checkpoint module names of every shard (every
        expert's, for fused experts). Rules are written in checkpoint names, but a
        rule naming the runtime prefix (e.g. a fused ``qkv_proj``) counts too.
        """
        if not kind.quantizable:
            return Intent(Scheme.UNQUANTIZED, None, f"{kind.value} module: vLLM never quantizes it")
        if kind is ModuleKind.LM_HEAD and self.producer in _HEADS_NEVER_QUANTIZED:
            return Intent(Scheme.UNQUANTIZED, None,
                          f"{self.producer} configs never quantize an LM head in vLLM")
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
                              partial=True)
        if self.groups:
            for g in self.groups:
                r = g.targets.first_match(names, kind)
                if r is not None:
                    return Intent(g.scheme, None, f"targeted by {r.origin} {r.text!r}")
            return Intent(Scheme.UNQUANTIZED, None, f"{self.origin}: no config group targets it")
        return Intent(self.scheme, None, f"{self.origin}: {self.scheme} by default, no exclusion matches")


def _algo_scheme(algo: object, origin: str) -> Scheme:
    if not isinstance(algo, str) or algo.upper() not in _MODELOPT_ALGOS:
        raise ConfigError(
            f"{origin}: quant_algo {algo!r} is not one of {sorted(_MODELOPT_ALGOS)} "
            "or MIXED_PRECISION; fix the field or re-export with a supported algorithm."
        )
    return _MODELOPT_ALGOS[algo.upper()]


def _modelopt(q: Mapping[str, Any], origin: str, excl_key: str) -> QuantIntent:
    algo = q.get("quant_algo")
    if algo is None:
        raise ConfigError(f"{origin}: missing 'quant_algo'; ModelOpt configs name their algorithm there.")
    rules = make_rules(q.get(excl_key, q.get("exclude_modules")), grammar="modelopt",
                       origin=f"{origin}.{excl_key}")
    if isinstance(algo, str) and algo.upper() == "MIXED_PRECISION":
        layers = q.get("quantized_layers")
        if not isinstance(layers, dict) or not layers:
            raise ConfigError(
                f"{origin}.quantized_layers: MIXED_PRECISION needs a non-empty object mapping "
                "module names to {\"quant_algo\": ...}; add it or set a single quant_algo."
            )
        per: dict[str, Scheme] = {}
        for name, spec in layers.items():
            if not isinstance(spec, dict):
                raise ConfigError(f"{origin}.quantized_layers[{name!r}]: expected an object "
                                  f"with 'quant_algo', found {type(spec).__name__}.")
            per[name] = _algo_scheme(spec.get("quant_algo"), f"{origin}.quantized_layers[{name!r}]")
        default = next(iter(per.values()))
        return QuantIntent("modelopt", default, RuleSet(rules), origin, per_module=per)
    return QuantIntent("modelopt", _algo_scheme(algo, f"{origin}.quant_algo"), RuleSet(rules), origin)


def _ct_scheme(group: Mapping[str, Any], fmt: object, origin: str) -> Scheme:
    w = group.get("weights")
    if not isinstance(w, dict):
        raise ConfigError(f"{origin}.weights: expected an object describing the weight "
                          "quantization (num_bits, type, strategy).")
    bits, typ = w.get("num_bits"), w.get("type")
    strategy, gsize = w.get("strategy"), w.get("group_size")
    if typ == "float" and bits == 4:
        return Scheme.MXFP4 if gsize == 32 and fmt != "nvfp4-pack-quantized" else Scheme.NVFP4
    if typ == "float" and bits == 8:
        return Scheme.FP8_BLOCK if strategy == "block" else Scheme.FP8
    if typ == "int" and bits == 4:
        return Scheme.INT4
    return Scheme.UNKNOWN


def _compressed_tensors(q: Mapping[str, Any], origin: str) -> QuantIntent:
    groups_raw = q.get("config_groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        raise ConfigError(f"{origin}.config_groups: expected a non-empty object of quantization "
                          "groups (compressed-tensors); re-export or fix the field.")
    fmt = q.get("format")
    groups = []
    for name, g in sorted(groups_raw.items()):
        where = f"{origin}.config_groups.{name}"
        if not isinstance(g, dict):
            raise ConfigError(f"{where}: expected an object, found {type(g).__name__}.")
        targets = make_rules(g.get("targets"), grammar="compressed-tensors", origin=f"{where}.targets")
        if not targets:
            raise ConfigError(f"{where}.targets: missing or empty; list module names, 're:' "
                              "patterns or class names such as 'Linear'.")
        groups.append(TargetGroup(_ct_scheme(g, g.get("format", fmt), where), RuleSet(targets), name))
    rules = make_rules(q.get("ignore"), grammar="compressed-tensors", origin=f"{origin}.ignore")
    return QuantIntent("compressed-tensors", groups[0].scheme, RuleSet(rules), origin, tuple(groups))


def _quark(q: Mapping[str, Any], origin: str) -> QuantIntent:
    g = q.get("global_quant_config")
    if g is not None and not isinstance(g, dict):
        raise ConfigError(f"{origin}.global_quant_config: expected an object (with 'weight'), "
                          f"found {type(g).__name__}; re-export or fix the field.")
    scheme = Scheme.UNKNOWN
    if isinstance(g, dict) and isinstance(g.get("weight"), dict):
        dtype = str(g["weight"].get("dtype", "")).lower()
        scheme = {"fp4": Scheme.MXFP4, "mxfp4": Scheme.MXFP4, "fp8_e4m3": Scheme.FP8,
                  "int4": Scheme.INT4, "uint4": Scheme.INT4}.get(dtype, Scheme.UNKNOWN)
    rules = make_rules(q.get("exclude"), grammar="quark", origin=f"{origin}.exclude")
    return QuantIntent("quark", scheme, RuleSet(rules), origin)


def _generic(q: Mapping[str, Any], method: str, origin: str) -> QuantIntent:
    scheme = {"fp8": Scheme.FP8_BLOCK if q.get("weight_block_size") else Scheme.FP8,
              "gptq": Scheme.INT4, "awq": Scheme.INT4, "mxfp4": Scheme.MXFP4}.get(method, Scheme.UNKNOWN)
    rules = make_rules(q.get("modules_to_not_convert"), grammar="substring",
                       origin=f"{origin}.modules_to_not_convert")
    rules += make_rules(q.get("ignored_layers"), grammar="exact", origin=f"{origin}.ignored_layers")
    return QuantIntent(method, scheme, RuleSet(rules), origin)


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
        intents.append(_modelopt(q, origin, "exclude_modules"))
    if quantization_config is not None:
        qc = quantization_config
        origin = f"{config_origin}: quantization_config"
        method = qc.get("quant_method")
        if not isinstance(method, str):
            raise ConfigError(f"{origin}.quant_method: missing or not a string ({method!r}); "
                              "it names the producer (modelopt, compressed-tensors, quark, fp8, ...).")
        m = method.lower()
        if m.startswith("modelopt"):
            nested = qc.get("quantization")
            inner: Mapping[str, Any] = nested if isinstance(nested, dict) else qc
            intents.append(_modelopt(inner, origin, "ignore" if "ignore" in inner else "exclude_modules"))
        elif m == "compressed-tensors":
            intents.append(_compressed_tensors(qc, origin))
        elif m == "quark":
            intents.append(_quark(qc, origin))
        else:
            intents.append(_generic(qc, m, origin))
    if not intents:
        return None
    if len(intents) == 2 and intents[0].producer == intents[1].producer == "modelopt":
        a, b = intents
        return QuantIntent("modelopt", a.scheme, RuleSet([*a.exclusions.rules, *b.exclusions.rules]),
                           f"{a.origin} + {b.origin}", per_module=a.per_module or b.per_module)
    # Different producers: config.json is what vLLM reads first.
    return intents[-1]
