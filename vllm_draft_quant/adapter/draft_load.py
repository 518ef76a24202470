"""P1: what happens when vLLM loads a model whose architecture is a known drafter."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllm_draft_quant.adapter import compat, context, settings
from vllm_draft_quant.core.plan import Plan
from vllm_draft_quant.core.profile import DrafterProfile
from vllm_draft_quant.core.resolver import Mode
from vllm_draft_quant.core.schemes import DEQUANTIZABLE, Scheme, StoredFormat
from vllm_draft_quant.errors import DraftLoadError, UnsupportedSchemeError
from vllm_draft_quant.profiles import draft_architectures

_DRAFTERS = draft_architectures()  # profile architectures and their aliases
_PLANS: dict[tuple[Any, ...], Plan] = {}


def draft_architecture(model_config: Any) -> str | None:
    """The architecture of ``model_config`` a hand profile describes, if any."""
    for a in compat.architectures(model_config):
        if a in _DRAFTERS:
            return a
    return None


def unprofiled_drafter(vllm_config: Any, model_config: Any) -> str | None:
    """The draft architecture of a drafter load no hand profile describes: the
    speculative config's draft model, of an architecture in vLLM's drafter registry."""
    if not compat.is_draft_load(vllm_config, model_config):
        return None
    registry = compat.speculative_architectures()
    return next((a for a in compat.architectures(model_config) if a in registry), None)


def _model_dir(loader: Any, model_config: Any) -> Path:
    """The folder vLLM's loader reads the drafter's weights from (`compat.resolved_folder`)."""
    return compat.resolved_folder(loader, *compat.model_source(model_config))


def _target_dir(loader: Any, vllm_config: Any) -> Path | None:
    """The target model's folder as the same loader resolves it (None if it cannot)."""
    source = compat.target_source(vllm_config)
    if source is None:
        return None
    try:
        return compat.resolved_folder(loader, *source)
    except Exception:  # vLLM cannot find it: then it cannot be the draft's folder
        return None


def separate_draft(vllm_config: Any, draft_dir: Path, loader: Any = None) -> bool:
    """Whether the draft's weights come from another folder than the target's
    (``speculative_config.model`` names its own checkpoint)."""
    target = _target_dir(loader, vllm_config)
    return target is not None and target.resolve() != draft_dir.resolve()


def plan_for(model_dir: Path, arch: str, st: settings.Settings,
             target_layers: int | None = None,
             profile: DrafterProfile | None = None) -> Plan:
    """The plan, cached per process by folder, drafter, mode, overrides and file times.

    ``target_layers``: the target's layer count, for drafters numbered after it (EAGLE3).
    """
    from vllm_draft_quant.checkpoint.planner import plan

    stamp = tuple(
        (f, os.stat(model_dir / f).st_mtime_ns) for f in
        ("config.json", "hf_quant_config.json", "model.safetensors.index.json")
        if (model_dir / f).exists()
    )
    key = (str(model_dir.resolve()), arch, st.mode, st.overrides, stamp, target_layers,
           profile)
    if key not in _PLANS:
        mode: Mode = "strict" if st.mode == "strict" else "auto"
        _PLANS[key] = plan(model_dir, mode=mode, overrides=st.overrides, drafter=arch,
                           target_layers=target_layers, profile=profile)
    return _PLANS[key]


def _summary(plan: Plan, build: context.DraftBuild) -> str:
    quantizable = [m for m in plan.modules if m.kind.quantizable]
    per: dict[str, int] = {}
    why: dict[str, int] = {}
    for m in quantizable:
        per[m.scheme.value] = per.get(m.scheme.value, 0) + 1
        if m.scheme is Scheme.UNQUANTIZED:
            why[m.source] = why.get(m.source, 0) + 1
    schemes = ", ".join(f"{n} {s}" for s, n in sorted(per.items()))
    reasons = ", ".join(f"{n} by {s}" for s, n in sorted(why.items())) or "none"
    deq = [m.module for m in plan.modules if m.source == "dequantize"]
    dequantized = f"; dequantized at load into unquantized layers: {deq}" if deq else ""
    return (f"{plan.drafter}: {len(build.seen)}/{len(quantizable)} draft modules set from the "
            f"plan ({schemes}); unquantized: {reasons}; conflicts resolved toward the "
            f"tensors: {len(plan.conflicts)}{dequantized}")


def wrap_load_model(orig: Callable[..., Any],
                    before_draft: Callable[[], Any] = lambda: None) -> Callable[..., Any]:
    """P1's wrapper of ``orig`` (``BaseModelLoader.load_model``); ``before_draft`` runs
    once a drafter load is going ahead (the patch ledger installs the layer patches)."""

    @functools.wraps(orig)
    def load_model(self: Any, vllm_config: Any, model_config: Any, prefix: str = "") -> Any:
        arch = draft_architecture(model_config)
        learn = arch is None
        if learn:
            arch = unprofiled_drafter(vllm_config, model_config)
        if arch is None:
            return orig(self, vllm_config, model_config, prefix)
        st = settings.from_env()
        if st.mode == "off":
            return orig(self, vllm_config, model_config, prefix)
        if learn:
            profile = _learned(self, vllm_config, model_config, prefix, arch, st,
                               before_draft)
            if profile is None:  # nothing to plan, or auto mode could not learn: stand aside
                return orig(self, vllm_config, model_config, prefix)
        else:
            from vllm_draft_quant.profiles import profile_for_draft

            profile = profile_for_draft(arch)
        return _load_draft(orig, self, vllm_config, model_config, prefix, arch, st, before_draft,
                           profile, learned=learn)

    return load_model


def _learned(loader: Any, vllm_config: Any, model_config: Any, prefix: str, arch: str,
             st: settings.Settings, install_patches: Callable[[], Any]) -> DrafterProfile | None:
    """The mapping of a drafter without a hand profile, learned from vLLM (``learn.py``).

    Where it cannot be learned: ``strict`` raises the one `LearnError` naming the drafter;
    ``auto`` logs one warning and returns None (the load goes on as stock vLLM's). A
    drafter with no linear, expert or head layer at all (`NoDraftLayers`) has nothing to
    plan: None in every mode, logged at info level.
    """
    from vllm_draft_quant.adapter.learn import learned_profile_for
    from vllm_draft_quant.core.learned import LearnError, NoDraftLayers

    try:
        return learned_profile_for(vllm_config, model_config, prefix, arch,
                                   _model_dir(loader, model_config), install_patches)
    except NoDraftLayers as e:
        compat.logger().info("vllm-draft-quant: %s; loading it as stock vLLM does", e)
        return None
    except LearnError as e:
        if st.mode == "strict":
            raise
        if arch not in _WARNED:
            _WARNED.add(arch)
            compat.logger().warning("vllm-draft-quant standing aside for %s: %s", arch, e)
        return None


_WARNED: set[str] = set()


def _load_draft(orig: Callable[..., Any], loader: Any, vllm_config: Any, model_config: Any,
                prefix: str, arch: str, st: settings.Settings,
                before_draft: Callable[[], Any], profile: DrafterProfile, *,
                learned: bool) -> Any:
    """Build the drafter from the plan ``profile`` (a hand profile, or one ``learned``
    from vLLM's code) gives for its checkpoint; the profile is looked up once, by the
    caller, and the planner plans with it."""
    from vllm_draft_quant.adapter import verify, weights

    log = compat.logger()
    draft_dir = _model_dir(loader, model_config)  # the *draft's* folder, whatever the target's
    target_layers = None
    if profile.hidden_layers_from == "target":  # as llama_eagle3 counts
        target_layers = compat.target_num_layers(vllm_config)
    plan = plan_for(draft_dir, arch, st, target_layers, profile)
    unknown = [m.module for m in plan.modules if m.scheme is Scheme.UNKNOWN]
    if unknown:
        raise UnsupportedSchemeError(
            f"{plan.drafter}: cannot build {len(unknown)} draft module(s) whose stored format "
            f"is unknown or mixed: {unknown[:5]}; see `vllm-draft-quant plan {model_config.model}`"
            " and add an override or re-export those tensors."
        )
    # a layer vLLM builds without a quant method, stored in a format the adapter cannot
    # dequantize: one error naming it (stock vLLM fails on its first scale tensor)
    stuck = [(m.module, m.stored.value, m.kind.value) for m in plan.modules
             if not m.kind.quantizable and m.source != "dequantize"
             and m.stored not in (StoredFormat.UNQUANTIZED, StoredFormat.UNKNOWN)]
    if stuck:
        module, stored, kind = stuck[0]
        raise UnsupportedSchemeError(
            f"{plan.drafter}: draft module {module} is stored {stored}, but vLLM builds it as "
            f"a {kind} layer that cannot hold quantized weights and vllm-draft-quant can "
            f"dequantize only {', '.join(sorted(f.value for f in DEQUANTIZABLE))} at load"
            + (f" (and {len(stuck) - 1} more: {[s[0] for s in stuck[1:4]]})" if len(stuck) > 1
               else "")
            + "; store that module unquantized (re-export it, or graft it from the BF16 "
            "original).")
    before_draft()
    for m in plan.modules:
        log.debug("draft module %s -> %s (%s: %s)", m.module, m.scheme, m.source, m.reason)
    for w in plan.warnings:
        log.warning("vllm-draft-quant: %s", w)
    target_config = vllm_config.quant_config
    separate = separate_draft(vllm_config, draft_dir, loader)
    # A draft from its own checkpoint is built on that checkpoint's config (as vLLM's
    # Step-3.5 and EAGLE3 drafters do), never on the target's; same folder: a private copy.
    private = (compat.own_quant_config(model_config, vllm_config.load_config) if separate
               else compat.private_copy(target_config))
    build = context.DraftBuild(plan, private)
    load_weights = loader.load_weights

    def checked_load_weights(model: Any, mc: Any) -> Any:
        with weights.weight_stream(model, profile, plan,
                                   compat.weight_block_size(private)) as dropped:  # P5
            result = load_weights(model, mc)
        if dropped:
            log.info("vllm-draft-quant %s: did not pass %d tensor(s) to the drafter (its "
                     "load_weights would also write them into planned modules): %s",
                     plan.drafter, len(dropped), dropped[:4])
        found = verify.problems(model, build)
        if found:
            raise DraftLoadError(
                f"{plan.drafter}: {len(found)} draft parameter(s) did not load as planned: "
                + "; ".join(found[:8]) + (" ..." if len(found) > 8 else "")
                + ". Run `vllm-draft-quant plan` on the checkpoint and report this with its output."
            )
        return result

    prev = context.activate(build)
    vllm_config.quant_config = private
    loader.load_weights = checked_load_weights
    try:
        model = orig(loader, vllm_config, model_config, prefix)
    finally:
        del loader.load_weights
        vllm_config.quant_config = target_config
        context.activate(prev)
    unseen = sorted(set(build.decisions) - set(build.seen))
    if unseen:
        msg = (f"{plan.drafter}: {len(unseen)} planned module(s) were never built by vLLM "
               f"(profile out of date for this vLLM?): {unseen[:5]}")
        if st.mode == "strict":
            raise DraftLoadError(msg)
        log.warning("%s", msg)
    origin = f"; weights and plan from the separate draft checkpoint {draft_dir}" if separate else ""
    how = "; mapping learned from vLLM's drafter (no hand profile)" if learned else ""
    log.info("vllm-draft-quant %s%s%s", _summary(plan, build), how, origin)
    return model
