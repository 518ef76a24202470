"""Learn a drafter's name mapping from vLLM's own code: a dry run on the meta device.

For a draft architecture without a hand profile, P1 (``draft_load.py``) asks
`learned_profile` before it builds the drafter for real:

1. **Construct** the drafter class vLLM resolved (``initialize_model``) on PyTorch's meta
   device (no weight memory), on a private copy of the draft's ``VllmConfig`` (its own
   quant-config copy and a fresh ``static_forward_context``, so nothing of the real build
   or of the target is touched). While it is built the layer patches (P2-P4) see a
   `context.LearnBuild`: every linear, expert and head layer is built unquantized and
   its prefix, class and whether the drafter passed it a quant config are recorded.
2. **Load** with the drafter's own ``load_weights`` on meta placeholders shaped and typed
   from the safetensors headers (every tensor of the checkpoint except quantization side
   tensors, see `core.learned.fed_name`). Each parameter's ``weight_loader`` is replaced
   by a recorder that notes which checkpoint tensor reached it with which shard/expert id
   and copies nothing; so does vLLM's default loader where the drafter's module calls it
   directly (`_direct_default_loader`). The drafter's completeness check is off for the
   dry run (vLLM's own scoped switch).
   A layer built with no quant config whose stored scales the drafter's
   ``load_weights`` does not deliver to it (`_probe_side_tensors`: it takes them itself)
   becomes ``fixed``, so a module stored quantized is dequantized at load.
3. `core.learned.learned_profile` turns the record into an ordinary `DrafterProfile`
   (absolute modules), which the planner uses exactly like a hand profile.

Deterministic (same vLLM code, same headers -> same profile in every worker); cached per
process by checkpoint and drafter. The kinds: ``RoutedExperts`` -> experts,
``ParallelLMHead`` -> lm_head (fixed when the drafter gives it no quant config, as the
Qwen3-Next and MiMo heads), a ``ReplicatedLinear`` the drafter builds with no quant
config (routers) -> fixed, any other ``LinearBase`` -> linear (a drafter that passes
``None`` to a general linear layer only under some configs, e.g. Qwen's ``mtp.fc`` under
``modelopt_fp4``, is a workaround the plan overrides from the stored tensors), a plain
``torch.nn.Linear`` -> plain. Embeddings that are not heads are left out (shared with
the target after loading, never quantized by the exports).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from vllm_draft_quant.adapter import compat, context
from vllm_draft_quant.core.learned import (
    Feed,
    LearnedLayer,
    LearnError,
    Observation,
    fed_name,
    learned_profile,
)
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.schemes import ModuleKind

__all__ = ["learned_profile_for", "observe"]

_CACHE: dict[tuple[Any, ...], DrafterProfile] = {}

#: safetensors dtype -> torch dtype name, for the placeholders
_DTYPES = {
    "BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "U8": "uint8", "I8": "int8",
    "I16": "int16", "I32": "int32", "I64": "int64", "BOOL": "bool",
}


def _stamp(model_dir: Path) -> tuple[Any, ...]:
    return tuple(
        (f.name, f.stat().st_mtime_ns, f.stat().st_size)
        for f in sorted(model_dir.iterdir())
        if f.suffix in (".json", ".safetensors")
    )


def learned_profile_for(vllm_config: Any, model_config: Any, prefix: str, arch: str,
                        draft_dir: Path, install_patches: Callable[[], Any]) -> DrafterProfile:
    """The learned profile of the drafter ``model_config`` describes (cached per process)."""
    key = (str(draft_dir.resolve()), arch, _stamp(draft_dir), prefix)
    if key not in _CACHE:
        obs = observe(vllm_config, model_config, prefix, arch, draft_dir, install_patches)
        _CACHE[key] = learned_profile(obs, origin=str(draft_dir))
    return _CACHE[key]


def _placeholders(draft_dir: Path, current: list[str],
                  ids: dict[int, tuple[Any, str]]) -> Iterator[tuple[str, Any]]:
    import torch

    from vllm_draft_quant.checkpoint.index import CheckpointFiles

    files = CheckpointFiles(draft_dir)
    names = files.weight_names()
    infos = files.tensors(names)
    for name in sorted(names):
        fed = fed_name(name)
        if fed is None:
            continue
        info = infos[name]
        dtype = getattr(torch, _DTYPES.get(info.dtype, "bfloat16"))
        if dtype in (torch.float8_e4m3fn, torch.float8_e5m2) and fed.endswith(".weight"):
            # fed as the unquantized weight it stands for (the dry run builds every
            # layer unquantized): a drafter that converts FP8 weights of a layer it
            # holds in BF16 (GLM-5-Next's _try_load_fp8_attn_proj) buffers an FP8
            # weight until its scale comes, which the dry run never feeds
            dtype = torch.get_default_dtype()
        t = torch.empty(info.shape, dtype=dtype, device="meta")
        ids[id(t)] = (t, name)  # the tensor is kept alive, so its id stays its own
        current[0] = name
        yield fed, t


def _origin(t: Any, ids: dict[int, tuple[Any, str]]) -> str | None:
    """The checkpoint tensor a placeholder (or a view of one) came from."""
    while t is not None:
        hit = ids.get(id(t))
        if hit is not None and hit[0] is t:
            return hit[1]
        t = getattr(t, "_base", None)
    return None


def _recorder(param_name: str, original: Any, feeds: list[Feed], current: list[str],
              ids: dict[int, tuple[Any, str]]) -> Any:
    try:
        sig: inspect.Signature | None = inspect.signature(original)
    except (TypeError, ValueError):
        sig = None

    def weight_loader(param: Any, loaded_weight: Any, *args: Any, **kwargs: Any) -> Any:
        bound: dict[str, Any] = dict(kwargs)
        if sig is not None:
            with contextlib.suppress(TypeError):
                bound = dict(sig.bind_partial(param, loaded_weight, *args, **kwargs).arguments)
        shard = bound.get("shard_id", bound.get("loaded_shard_id"))
        if shard is None and args and isinstance(args[-1], (str, int)) and sig is None:
            shard = args[-1]
        expert = bound.get("expert_id")
        # the placeholder itself (a loader that buffers the stream, as EAGLE3's does,
        # has read past it), else the tensor the stream yielded last
        tensor = _origin(loaded_weight, ids) or current[0]
        feeds.append(Feed(tensor=tensor, param=param_name,
                          shard=None if shard is None else str(shard),
                          expert=None if expert is None else int(expert)))
        return True if bound.get("return_success") else None

    return weight_loader


@contextlib.contextmanager
def _direct_default_loader(model: Any, feeds: list[Feed], current: list[str],
                           ids: dict[int, tuple[Any, str]]) -> Iterator[None]:
    """Record the loads a drafter makes by calling vLLM's default loader itself.

    Some drafters' ``load_weights`` call ``default_weight_loader(param, tensor)``
    directly (a module global), not ``param.weight_loader``, whenever the shapes agree
    (``inkling/nvidia/mtp.py:_load_inkling_mtp_weights``): a BF16 tensor into the dry
    run's unquantized parameter never reached a recorder, and the layer went unplanned.
    For the dry run, that global in the modules of the drafter's classes records too."""
    import sys

    dwl = compat.default_weight_loader()
    names = {id(p): n for n, p in model.named_parameters()}

    def recording_loader(param: Any, loaded_weight: Any) -> None:
        name = names.get(id(param))
        if name is not None:
            feeds.append(Feed(tensor=_origin(loaded_weight, ids) or current[0], param=name))

    patched = [m for m in {sys.modules.get(c.__module__) for c in type(model).__mro__}
               if m is not None and getattr(m, compat.DEFAULT_WEIGHT_LOADER, None) is dwl]
    for m in patched:
        setattr(m, compat.DEFAULT_WEIGHT_LOADER, recording_loader)
    try:
        yield
    finally:
        for m in patched:
            setattr(m, compat.DEFAULT_WEIGHT_LOADER, dwl)


def _dry_config(vllm_config: Any) -> Any:
    """A copy of the draft's VllmConfig whose mutable registries are the dry run's own."""
    dry = copy.copy(vllm_config)
    dry.quant_config = compat.private_copy(vllm_config.quant_config)
    cc = copy.copy(vllm_config.compilation_config)
    for attr, fresh in (("static_forward_context", dict), ("static_all_moe_layers", list)):
        if hasattr(cc, attr):
            setattr(cc, attr, fresh())
    if isinstance(getattr(cc, "splitting_ops", None), list):
        cc.splitting_ops = list(cc.splitting_ops)
    dry.compilation_config = cc
    return dry


def _kinds(model: Any, given_none: dict[str, bool]) -> list[LearnedLayer]:
    import torch

    classes = compat.layer_classes()
    out: list[LearnedLayer] = []
    for path, module in model.named_modules():
        cls = type(module).__name__
        if isinstance(module, classes["experts"]):
            out.append(LearnedLayer(path=path, prefix=module.layer_name,
                                    kind=ModuleKind.EXPERTS, layer_class=cls))
        elif isinstance(module, classes["lm_head"]):
            fixed = given_none.get(module.prefix)  # a head built with no quant config
            out.append(LearnedLayer(path=path, prefix=module.prefix,
                                    kind=ModuleKind.FIXED if fixed else ModuleKind.LM_HEAD,
                                    layer_class=cls))
        elif isinstance(module, classes["linear"]):
            none = bool(given_none.get(module.prefix))
            fixed = isinstance(module, classes["replicated"]) and none
            out.append(LearnedLayer(path=path, prefix=module.prefix,
                                    kind=ModuleKind.FIXED if fixed else ModuleKind.LINEAR,
                                    layer_class=cls, no_quant_config=none))
        elif isinstance(module, torch.nn.Linear):
            out.append(LearnedLayer(path=path, prefix=path, kind=ModuleKind.PLAIN,
                                    layer_class=cls))
    return out


def _probe_side_tensors(model: Any, layers: list[LearnedLayer], feeds: list[Feed],
                        draft_dir: Path) -> set[str]:
    """Paths of the linear layers vLLM built with no quant config whose stored side
    tensors (scales) the drafter's ``load_weights`` does not deliver to them.

    Each such fed layer gets a meta placeholder parameter per side tensor its checkpoint
    modules store (as a quantized build would have), with a recording loader; each side
    tensor is then fed alone to ``load_weights``. One that reaches no parameter of its
    layer is taken by the drafter itself (GLM-5-Next's ``_try_load_fp8_attn_proj`` takes
    every ``weight_scale`` of its MLA projections and converts DeepSeek block FP8 only):
    building the layer quantized would leave its scales unloaded, so the learned
    profile makes it ``fixed`` (built unquantized, as vLLM builds it, and a stored
    quantized module dequantized at load, ``weights.py``).
    """
    import torch

    from vllm_draft_quant.checkpoint.index import CheckpointFiles
    from vllm_draft_quant.core.learned import AUX_SUFFIXES
    from vllm_draft_quant.core.names import module_of

    paths = {layer.path for layer in layers
             if layer.no_quant_config and layer.kind is ModuleKind.LINEAR}
    owner: dict[str, str] = {}  # checkpoint module -> layer path
    for f in feeds:
        path = f.param.rsplit(".", 1)[0]
        if path in paths:
            owner.setdefault(module_of(f.tensor), path)
    if not owner:
        return set()
    files = CheckpointFiles(draft_dir)
    side = [n for n in sorted(files.weight_names())
            if n.rpartition(".")[2] in AUX_SUFFIXES and n.rpartition(".")[0] in owner]
    if not side:
        return set()
    infos = files.tensors(side)
    modules = dict(model.named_modules())
    got: list[Feed] = []
    current = [""]
    ids: dict[int, tuple[Any, str]] = {}
    for name in side:
        mod = modules[owner[name.rpartition(".")[0]]]
        suffix = name.rpartition(".")[2]
        if hasattr(mod, suffix):  # a parameter, buffer or attribute of that name already
            continue
        p = torch.nn.Parameter(torch.empty((), device="meta"), requires_grad=False)
        p.weight_loader = _recorder(f"{owner[name.rpartition('.')[0]]}.{suffix}",
                                    compat.default_weight_loader(), got, current, ids)
        mod.register_parameter(suffix, p)
    unloaded: set[str] = set()
    for name in side:
        module, _, suffix = name.rpartition(".")
        info = infos[name]
        t = torch.empty(info.shape, dtype=getattr(torch, _DTYPES.get(info.dtype, "float32")),
                        device="meta")
        ids[id(t)] = (t, name)
        current[0] = name
        before = len(got)
        # a side tensor fed alone: the drafter's own checks (other tensors missing) may
        # raise afterwards; only what reached the layer's placeholder counts
        with contextlib.suppress(Exception), compat.mtp_completeness_check_disabled(), \
                torch.device("meta"):
            model.load_weights(iter([(name, t)]))
        if not any(f.tensor == name and f.param == f"{owner[module]}.{suffix}"
                   for f in got[before:]):
            unloaded.add(owner[module])
    return unloaded


def _tied_feeds(model: Any, feeds: list[Feed]) -> list[Feed]:
    """The feeds of a parameter shared under several names, again under its other names.

    A tied head (``tie_word_embeddings``: the Gemma4 assistant's ``lm_head`` is its
    ``embed_tokens``) is one parameter: ``named_parameters()`` lists it, and the recorder
    notes its loads, under the first name only, so the head layer looked unfed and went
    unplanned; built quantized by a config that does not exclude it, it then held the
    BF16 embedding in an FP8 layer whose scales never load. Fed like the parameter it is,
    the head is planned from the stored embedding."""
    head = compat.layer_classes()["lm_head"]
    first: dict[int, str] = {}
    aliases: dict[str, list[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        # only a head's: a MoE block's router weight is also its experts' (one gate), and
        # must keep feeding the router alone
        if first.setdefault(id(p), name) != name and isinstance(
                model.get_submodule(name.rpartition(".")[0]), head):
            aliases.setdefault(first[id(p)], []).append(name)
    return [f.model_copy(update={"param": a}) for f in feeds for a in aliases.get(f.param, ())]


def observe(vllm_config: Any, model_config: Any, prefix: str, arch: str,
            draft_dir: Path, install_patches: Callable[[], Any]) -> Observation:
    """Build the drafter on the meta device and run its ``load_weights`` on placeholders.

    ``install_patches`` installs the layer patches P2-P4 (``patches.apply_layer_patches``,
    passed in: ``patches`` imports this module's caller). Raises `LearnError` naming the
    drafter if vLLM's own code fails on the dry run.
    """
    import torch

    install_patches()
    dry = _dry_config(vllm_config)
    learn = context.LearnBuild()
    prev = context.activate(learn)
    cls_name = ""
    try:
        with compat.default_dtype(model_config.dtype), torch.device("meta"):
            model = compat.initialize_model(dry, model_config, prefix)
        cls_name = type(model).__name__
    except Exception as e:
        raise LearnError(
            f"{draft_dir}: cannot learn how vLLM's {arch} maps checkpoint names: building it "
            f"on the meta device failed ({type(e).__name__}: {str(e).splitlines()[0][:300]})."
            " Set VLLM_DRAFT_QUANT=off to load it as stock vLLM does, or add a profile "
            "(vllm_draft_quant/profiles/README.md).") from e
    finally:
        context.activate(prev)
    layers = _kinds(model, learn.given_none)
    feeds: list[Feed] = []
    current = [""]
    ids: dict[int, tuple[Any, str]] = {}
    for pname, p in model.named_parameters():
        original = getattr(p, "weight_loader", None) or compat.default_weight_loader()
        with contextlib.suppress(AttributeError, TypeError):
            p.weight_loader = _recorder(pname, original, feeds, current, ids)
    try:
        with compat.mtp_completeness_check_disabled(), torch.device("meta"), \
                _direct_default_loader(model, feeds, current, ids):
            model.load_weights(_placeholders(draft_dir, current, ids))
    except Exception as e:
        raise LearnError(
            f"{draft_dir}: cannot learn how vLLM's {arch} maps checkpoint names: its "
            f"load_weights failed on the dry run ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:300] if str(e) else ''}). Set VLLM_DRAFT_QUANT=off to "
            "load it as stock vLLM does, or add a profile "
            "(vllm_draft_quant/profiles/README.md).") from e
    feeds += _tied_feeds(model, feeds)
    unloaded = _probe_side_tensors(model, layers, feeds, draft_dir)
    layers = [layer.model_copy(update={"kind": ModuleKind.FIXED, "side_unloaded": True})
              if layer.path in unloaded else layer for layer in layers]
    del model
    return Observation(drafter=arch, drafter_class=cls_name, vllm=compat.vllm_version(),
                       layers=tuple(sorted(layers, key=lambda x: x.path)),
                       feeds=tuple(feeds))
