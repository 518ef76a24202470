"""A drafter's name mapping learned from vLLM's own code, as data, and the profile it makes.

For a draft architecture no hand profile describes, the adapter builds the drafter on
PyTorch's meta device and runs the drafter's own ``load_weights`` on placeholders
(``adapter/learn.py``). What it saw is an `Observation`:

- ``layers``: every layer of a quantizable kind the drafter built: its module path, the
  prefix vLLM resolved its quant method with, and its `ModuleKind` (the adapter reads
  the kind off vLLM's classes);
- ``feeds``: which checkpoint tensor reached which drafter parameter, with the shard and
  expert ids the drafter passed to the parameter's weight loader.

`learned_profile` turns that into an ordinary `DrafterProfile` whose modules are all
absolute (``globals``, no layer roots), so the resolver, the plan, the adapter's layer
patches and its checks treat it exactly like a hand profile. Pure: data in, data out;
the same observation gives the same profile in every process.

`mapping_rows` gives the comparable form (runtime prefix -> kind and checkpoint modules
in shard order) that the conformance test uses to hold every hand profile against the
installed vLLM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict

from vllm_draft_quant.core.names import NameMap, module_of
from vllm_draft_quant.core.profile import (
    DrafterProfile,
    LayerRoot,
    ModuleSpec,
    StockBehaviour,
    StockLimit,
)
from vllm_draft_quant.core.schemes import Group, ModuleKind
from vllm_draft_quant.errors import UnknownDrafterError

__all__ = [
    "AUX_SUFFIXES",
    "Feed",
    "LearnError",
    "LearnedLayer",
    "NoDraftLayers",
    "Observation",
    "fed_name",
    "learned_profile",
    "learned_stock",
    "mapping_rows",
    "profile_rows",
]

#: tensor names ending in these are a quantized module's side tensors (scales, zero
#: points, packing metadata): the dry run does not feed them (the drafter is built
#: unquantized there), they follow their module's ``weight``.
AUX_SUFFIXES: tuple[str, ...] = (
    "weight_scale", "weight_scale_2", "weight_scale_inv", "weight_global_scale",
    "input_scale", "input_global_scale", "weight_zero_point", "input_zero_point",
    "weight_shape", "weight_g_idx", "g_idx", "qzeros", "scales", "k_scale", "v_scale",
    "q_scale", "prob_scale", "output_scale",
)
#: a stored weight under another name than vLLM's unquantized ``weight``
_WEIGHT_ALIASES: dict[str, str] = {"weight_packed": "weight", "qweight": "weight"}


class LearnError(UnknownDrafterError):
    """The mapping of a drafter without a profile could not be learned from vLLM."""


class NoDraftLayers(LearnError):
    """The drafter builds no linear, expert or head layer at all (vLLM's
    ``extract_hidden_states.py:ExtractHiddenStatesModel``: one cache-only attention
    layer, no weights): there is nothing to plan, in any mode."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LearnedLayer(_Frozen):
    path: str  # the module's path in the drafter (``named_modules``)
    prefix: str  # the prefix vLLM resolved its quant method with (plain layers: the path)
    kind: ModuleKind
    layer_class: str = ""
    #: the drafter built it with ``quant_config=None`` (recorded for every linear; a
    #: non-replicated one stays ``linear``: the dry run cannot tell a layer vLLM never
    #: quantizes from a per-config workaround such as Qwen's ``mtp.fc``)
    no_quant_config: bool = False
    #: a layer built with no quant config whose stored side tensors (scales) the
    #: drafter's ``load_weights`` did not deliver to it on the dry run's probe (it takes
    #: them itself): made ``fixed``, so a quantized module is dequantized at load
    side_unloaded: bool = False


class Feed(_Frozen):
    tensor: str  # checkpoint tensor name as the checkpoint stores it
    param: str  # drafter parameter name (``named_parameters``)
    shard: str | None = None  # the shard id the drafter passed ("q", "0", "w1"), as text
    expert: int | None = None


class Observation(_Frozen):
    drafter: str  # vLLM's draft architecture
    drafter_class: str = ""
    vllm: str = ""
    layers: tuple[LearnedLayer, ...]
    feeds: tuple[Feed, ...]


def fed_name(tensor: str) -> str | None:
    """The name the dry run feeds a checkpoint tensor under (None: not fed, a side tensor)."""
    head, _, last = tensor.rpartition(".")
    if last in AUX_SUFFIXES:
        return None
    if last in _WEIGHT_ALIASES and head:
        return f"{head}.{_WEIGHT_ALIASES[last]}"
    return tensor


_SHARD_RANK = {"q": 0, "k": 1, "v": 2, "w1": 0, "w3": 1, "w2": 2}


def _shard_key(shard: str | None) -> tuple[int, str]:
    if shard is None:
        return (0, "")
    if shard in _SHARD_RANK:
        return (_SHARD_RANK[shard], shard)
    return (int(shard), shard) if shard.isdigit() else (99, shard)


def _group(layer: LearnedLayer) -> Group:
    if layer.kind in (ModuleKind.LM_HEAD, ModuleKind.PLAIN):
        return "head"
    parts = layer.prefix.lower().split(".")
    if layer.kind is ModuleKind.EXPERTS or any(
            p in ("mlp", "moe", "ffn", "feed_forward", "shared_experts", "shared_expert")
            for p in parts):
        return "mlp"
    if any("attn" in p or "attention" in p for p in parts):
        return "attn"
    return "head"


def _owner(param: str, layers: Mapping[str, LearnedLayer]) -> LearnedLayer | None:
    path = param.rsplit(".", 1)[0] if "." in param else ""
    return layers.get(path)


def _common(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split("."), b.split("."), strict=False):
        if x != y:
            break
        n += 1
    return n


def learned_profile(obs: Observation, *, origin: str = "") -> DrafterProfile:
    """The profile of ``obs``' drafter: one absolute module per layer a checkpoint tensor
    reached, its checkpoint modules in vLLM's shard order (experts, then w1/w3/w2).

    Raises `LearnError` where the observation does not decide: no checkpoint tensor
    reached a layer of the drafter, or one checkpoint module is the own source of two
    layers. Several checkpoint modules feeding the same shard of one layer (GLM's
    ``lm_head`` and the NextN head) keep the one nearest the layer's prefix and record
    the others as ``also_fed_by``, as a hand profile would.
    """
    where = f"{origin}: " if origin else ""
    layers = {layer.path: layer for layer in obs.layers}
    # layer path -> (expert, shard) -> [checkpoint modules, in the order fed]
    slots: dict[str, dict[tuple[int, tuple[int, str]], list[str]]] = {}
    for f in obs.feeds:
        layer = _owner(f.param, layers)
        if layer is None:
            continue
        mod = module_of(f.tensor)
        key = (-1 if f.expert is None else f.expert, _shard_key(f.shard))
        fed = slots.setdefault(layer.path, {}).setdefault(key, [])
        if mod not in fed:
            fed.append(mod)
    if not obs.layers:
        raise NoDraftLayers(
            f"{where}vLLM's {obs.drafter} builds no linear, expert or head layer: it has "
            "no weights to plan")
    if not slots:
        raise LearnError(
            f"{where}cannot learn how vLLM's {obs.drafter} maps checkpoint names: its "
            "load_weights passed no checkpoint tensor to any of its linear, expert or head "
            "layers. Set VLLM_DRAFT_QUANT=off to load it as stock vLLM does, or add a "
            "profile (vllm_draft_quant/profiles/README.md).")
    specs: list[ModuleSpec] = []
    owned: dict[str, str] = {}
    for path in sorted(slots, key=lambda p: layers[p].prefix):
        layer = layers[path]
        runtime = layer.prefix or layer.path
        ordered: list[str] = []
        also: list[str] = []
        for key in sorted(slots[path]):
            fed = slots[path][key]
            own = max(fed, key=lambda m: (_common(m, runtime), -fed.index(m)))
            ordered.append(own)
            also.extend(m for m in fed if m != own and m not in also)
        for m in ordered:
            if owned.setdefault(m, runtime) != runtime:
                raise LearnError(
                    f"{where}cannot learn how vLLM's {obs.drafter} maps checkpoint names: "
                    f"checkpoint module {m!r} feeds both {owned[m]!r} and {runtime!r}. "
                    "Set VLLM_DRAFT_QUANT=off to load it as stock vLLM does, or add a "
                    "profile (vllm_draft_quant/profiles/README.md).")
        specs.append(ModuleSpec(runtime, tuple(dict.fromkeys(ordered)), layer.kind,
                                group=_group(layer),
                                also_fed_by=tuple(a for a in also if a not in ordered)))
    return DrafterProfile(
        architecture=obs.drafter,
        target_architectures=(),
        root=LayerRoot(checkpoint="", runtime=""),
        modules=(),
        globals=tuple(specs),
        num_layers_keys=(),  # every module is absolute: no layer roots to place
        default_num_layers=0,
        notes=f"learned from vLLM {obs.vllm} {obs.drafter_class or obs.drafter} in-process",
        stock=learned_stock(obs, {path for path in slots}),
        reads=tuple(sorted({f.tensor for f in obs.feeds})),
    )


def learned_stock(obs: Observation, fed: Iterable[str] = ()) -> StockBehaviour:
    """What `fix` may assume of stock vLLM for a learned drafter: the prefixes its
    layers resolve their quant method with were observed, and an exact prefix is excluded
    by every matcher vLLM has, so fix names those; which config object the layers get is
    not observed, so exact shard names are not trusted to exclude a fused layer (the
    cautious reading). A vLLM layer built with an empty prefix (HY-V3's NextN head,
    ``hy_v3_mtp.py:HYV3SharedHead``) can be named by no entry: a limit. Its kind is not
    trusted there: the dry run tells a layer built without a quant config by its prefix,
    and "" is every unnamed layer's (HY-V3's head reads as ``fixed`` but is built with the
    quant config)."""
    fed = set(fed)
    limits = tuple(
        StockLimit(f"builds {layer.path} ({layer.layer_class or layer.kind.value}) with an "
                   "empty prefix, which no exclusion entry can name: it is quantized whatever "
                   "the config says")
        for layer in obs.layers
        if not layer.prefix and layer.kind is not ModuleKind.PLAIN and layer.path in fed)
    return StockBehaviour(quant_config="unknown", packed_exclusions=False, limits=limits)


Row = tuple[str, tuple[str, ...]]


def mapping_rows(profile: DrafterProfile) -> dict[str, Row]:
    """``{runtime prefix: (kind, checkpoint modules)}`` of an all-absolute profile."""
    return {s.runtime: (s.kind.value, s.checkpoint) for s in profile.globals}


def profile_rows(names: NameMap, checkpoint_modules: Iterable[str]) -> dict[str, Row]:
    """The same rows for a hand profile placed on a checkpoint holding ``checkpoint_modules``:
    every module vLLM builds for it that the checkpoint feeds, experts expanded, in the
    checkpoint's own names (before the profile's ``checkpoint_renames``)."""
    raw = {names.canonical(m): m for m in checkpoint_modules}
    present = set(raw)
    experts = sorted({hit[2] for m in present
                      if (hit := names.runtime_of(m, present)) is not None
                      and hit[2] is not None})
    out: dict[str, Row] = {}
    for rm in names.modules:
        if not names.is_active(rm, present):
            continue
        mods: list[str] = []
        for e in experts if rm.spec.per_expert else [None]:
            for c in rm.checkpoint_modules:
                name = c.replace("{e}", str(e)) if e is not None else c
                if name in present:
                    mods.append(raw[name])
        if mods:
            out[rm.prefix] = (rm.spec.kind.value, tuple(mods))
    return out

