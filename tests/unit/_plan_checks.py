"""Checks of a Plan against what the factory wrote (shared by the plan tests)."""

from __future__ import annotations

from support import WrittenCheckpoint

from vllm_draft_quant import Plan
from vllm_draft_quant.core.names import module_of
from vllm_draft_quant.profiles import profile_for_draft

#: factory per-tensor format -> the scheme a plan must give its module
SCHEME_OF_FORMAT = {"bf16": "unquantized", "nvfp4": "nvfp4", "fp8": "fp8",
                    "fp8_block": "fp8_block", "mxfp4": "mxfp4"}
QUANTIZABLE_KINDS = ("linear", "experts", "lm_head")


def stored_scheme(ckpt: WrittenCheckpoint, tensors: tuple[str, ...]) -> str:
    """The one scheme the module's tensors are stored in (they must agree)."""
    formats = {ckpt.tensors[t].format for t in tensors}
    assert len(formats) == 1, f"module stored in several formats: {sorted(formats)}"
    return SCHEME_OF_FORMAT[formats.pop()]


def assert_plan_follows_stored_formats(plan: Plan, ckpt: WrittenCheckpoint) -> None:
    """Every planned scheme is the stored format; no target module is planned;
    every MTP linear of the checkpoint is covered by some planned module."""
    profile = profile_for_draft(plan.drafter)
    shared = {c for spec in profile.globals for c in spec.checkpoint}  # e.g. Qwen3-Next lm_head
    n_target = ckpt.config.get("num_hidden_layers",
                               ckpt.config.get("text_config", {}).get("num_hidden_layers"))
    covered: set[str] = set()
    for d in plan.modules:
        assert d.checkpoint_tensors, d.module
        assert d.scheme.value == stored_scheme(ckpt, d.checkpoint_tensors), (
            f"{d.module}: planned {d.scheme.value}, stored "
            f"{stored_scheme(ckpt, d.checkpoint_tensors)} ({d.reason})")
        for t in d.checkpoint_tensors:
            assert ckpt.tensors[t].mtp or module_of(t) in shared, f"target tensor {t} in plan"
            assert not any(t.startswith(f"model.layers.{i}.") for i in range(n_target)), t
            covered.add(module_of(t))
    missing = sorted(ckpt.mtp_modules - covered)
    assert not missing, f"MTP modules no planned module covers: {missing}"
