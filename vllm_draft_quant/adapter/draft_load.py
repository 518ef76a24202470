"""P1: what happens when vLLM loads a model whose architecture is a known drafter."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllm_draft_quant.adapter import compat, context, settings
from vllm_draft_quant.core.plan import Plan
from vllm_draft_quant.core.resolver import Mode
from vllm_draft_quant.core.schemes import DEQUANTIZABLE, Scheme, StoredFormat
from vllm_draft_quant.errors import DraftLoadError, UnsupportedSchemeError
from vllm_draft_quant.profiles import draft_architectures

_DRAFTERS = draft_architectures()  # profile architectures and their aliases
_PLANS: dict[tuple[Any, ...], Plan] = {}


def draft_architecture(model_config: Any) -> str | None:
    for a in compat.architectures(model_config):
        if a in _DRAFTERS:
            return a
    return None


def _model_dir(loader: Any, model_config: Any) -> Path:
    from vllm_draft_quant.checkpoint.locate import locate_model

    model, revision = compat.model_source(model_config)
    if not os.path.isdir(model):
        compat.download(loader, model_config)
    return locate_model(model, revision)


def _target_dir(vllm_config: Any) -> Path | None:
    """The target model's folder, when vLLM's configs say (None if it cannot be located)."""
    from vllm_draft_quant.checkpoint.locate import locate_model

    source = compat.target_source(vllm_config)
    if source is None:
        return None
    try:
        return locate_model(*source)
    except Exception:  # not a folder nor cached: then it cannot be the draft's folder
        return None


def separate_draft(vllm_config: Any, draft_dir: Path) -> bool:
    """Whether the draft's weights come from another folder than the target's
    (``speculative_config.model`` names its own checkpoint)."""
    target = _target_dir(vllm_config)
    return target is not None and target.resolve() != draft_dir.resolve()


def plan_for(model_dir: Path, arch: str, st: settings.Settings,
             target_layers: int | None = None) -> Plan:
    """The plan, cached per process by folder, drafter, mode, overrides and file times.

    ``target_layers``: the target's layer count, for drafters numbered after it (EAGLE3).
    """
    from vllm_draft_quant.checkpoint.planner import plan

    stamp = tuple(
        (f, os.stat(model_dir / f).st_mtime_ns) for f in
        ("config.json", "hf_quant_config.json", "model.safetensors.index.json")
        if (model_dir / f).exists()
    )
    key = (str(model_dir.resolve()), arch, st.mode, st.overrides, stamp, target_layers)
    if key not in _PLANS:
        mode: Mode = "strict" if st.mode == "strict" else "auto"
        _PLANS[key] = plan(model_dir, mode=mode, overrides=st.overrides, drafter=arch,
                           target_layers=target_layers)
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
        if arch is None:
            return orig(self, vllm_config, model_config, prefix)
        st = settings.from_env()
        if st.mode == "off":
            return orig(self, vllm_config, model_config, prefix)
        return _load_draft(orig, self, vllm_config, model_config, prefix, arch, st, before_draft)

    return load_model


def _load_draft(orig: Callable[..., Any], loader: Any, vllm_config: Any, model_config: Any,
                prefix: str, arch: str, st: settings.Settings,
                before_draft: Callable[[], Any]) -> Any:
    from vllm_draft_quant.adapter import verify, weights
    from vllm_draft_quant.profiles import profile_for_draft

    log = compat.logger()
    draft_dir = _model_dir(loader, model_config)  # the *draft's* folder, whatever the target's
    target_layers = None
    if profile_for_draft(arch).hidden_layers_from == "target":  # as llama_eagle3 counts
        target_layers = compat.target_num_layers(vllm_config)
    plan = plan_for(draft_dir, arch, st, target_layers)
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
    target_config = vllm_config.quant_config
    separate = separate_draft(vllm_config, draft_dir)
    # A draft from its own checkpoint is built on that checkpoint's config (as vLLM's
    # Step-3.5 and EAGLE3 drafters do), never on the target's; same folder: a private copy.
    private = (compat.own_quant_config(model_config, vllm_config.load_config) if separate
               else compat.private_copy(target_config))
    build = context.DraftBuild(plan, private)
    load_weights = loader.load_weights

    profile = profile_for_draft(arch)

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
    log.info("vllm-draft-quant %s%s", _summary(plan, build), origin)
    return model
