"""P1: what happens when vLLM loads a model whose architecture is a known drafter."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vllm_draft_quant.adapter import context, settings
from vllm_draft_quant.core.plan import Plan
from vllm_draft_quant.core.schemes import ModuleKind, Scheme
from vllm_draft_quant.errors import DraftQuantError
from vllm_draft_quant.profiles import PROFILES


def _logger() -> Any:
    from vllm.logger import init_logger

    # Under vLLM's "vllm" logger so vLLM's handlers and format apply.
    return init_logger("vllm.draft_quant")


_DRAFTERS = {p.architecture for p in PROFILES}
_PLANS: dict[tuple[Any, ...], Plan] = {}


def draft_architecture(model_config: Any) -> str | None:
    archs = getattr(model_config, "architectures", None) or getattr(
        getattr(model_config, "hf_config", None), "architectures", None) or []
    for a in archs:
        if a in _DRAFTERS:
            return str(a)
    return None


def _model_dir(loader: Any, model_config: Any) -> Path:
    from vllm_draft_quant.checkpoint.locate import locate_model

    model = str(model_config.model)
    if not os.path.isdir(model):
        loader.download_model(model_config)  # vLLM's own: a no-op when already cached
    return locate_model(model, getattr(model_config, "revision", None))


def plan_for(model_dir: Path, arch: str, st: settings.Settings) -> Plan:
    """The plan, cached per process by folder, drafter, mode, overrides and file times."""
    from vllm_draft_quant.core.resolver import plan

    stamp = tuple(
        (f, os.stat(model_dir / f).st_mtime_ns) for f in
        ("config.json", "hf_quant_config.json", "model.safetensors.index.json")
        if (model_dir / f).exists()
    )
    key = (str(model_dir.resolve()), arch, st.mode, st.overrides, stamp)
    if key not in _PLANS:
        mode = "strict" if st.mode == "strict" else "auto"
        _PLANS[key] = plan(model_dir, mode=mode, overrides=st.overrides, drafter=arch)
    return _PLANS[key]


def _summary(plan: Plan, build: context.DraftBuild) -> str:
    quantizable = [m for m in plan.modules if ModuleKind(m.kind).quantizable]
    per: dict[str, int] = {}
    why: dict[str, int] = {}
    for m in quantizable:
        per[m.scheme.value] = per.get(m.scheme.value, 0) + 1
        if m.scheme is Scheme.UNQUANTIZED:
            why[m.source] = why.get(m.source, 0) + 1
    schemes = ", ".join(f"{n} {s}" for s, n in sorted(per.items()))
    reasons = ", ".join(f"{n} by {s}" for s, n in sorted(why.items())) or "none"
    return (f"{plan.drafter}: {len(build.seen)}/{len(quantizable)} draft modules set from the "
            f"plan ({schemes}); unquantized: {reasons}; conflicts resolved toward the "
            f"tensors: {len(plan.conflicts)}")


def wrap_load_model(orig: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(orig)
    def load_model(self: Any, vllm_config: Any, model_config: Any, prefix: str = "") -> Any:
        arch = draft_architecture(model_config)
        if arch is None:
            return orig(self, vllm_config, model_config, prefix)
        st = settings.from_env()
        if st.mode == "off":
            return orig(self, vllm_config, model_config, prefix)
        return _load_draft(orig, self, vllm_config, model_config, prefix, arch, st)

    return load_model


def _load_draft(orig: Callable[..., Any], loader: Any, vllm_config: Any, model_config: Any,
                prefix: str, arch: str, st: settings.Settings) -> Any:
    from vllm_draft_quant.adapter import compat, patches, verify

    log = _logger()
    plan = plan_for(_model_dir(loader, model_config), arch, st)
    unknown = [m.module for m in plan.modules if m.scheme is Scheme.UNKNOWN]
    if unknown:
        raise DraftQuantError(
            f"{plan.drafter}: cannot build {len(unknown)} draft module(s) whose stored format "
            f"is unknown or mixed: {unknown[:5]}; see `vllm-draft-quant plan {model_config.model}`"
            " and add an override or re-export those tensors."
        )
    patches.apply_layer_patches()
    for m in plan.modules:
        log.debug("draft module %s -> %s (%s: %s)", m.module, m.scheme, m.source, m.reason)
    target_config = vllm_config.quant_config
    private = compat.private_copy(target_config)
    build = context.DraftBuild(plan, private)
    load_weights = loader.load_weights

    def checked_load_weights(model: Any, mc: Any) -> Any:
        result = load_weights(model, mc)
        found = verify.problems(model, build)
        if found:
            raise DraftQuantError(
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
            raise DraftQuantError(msg)
        log.warning("%s", msg)
    log.info("vllm-draft-quant %s", _summary(plan, build))
    return model
