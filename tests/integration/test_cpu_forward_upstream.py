"""The forward stand-ins (``vllm_draft_quant/demo/cpu_forward.py``, entries F1-F21): each still needed.

Per ledger op, against the installed vLLM with its ``_C`` extension imported and no
stand-in installed (only the e2e tier's engine process installs them): the op is still
missing from ``torch.ops._C`` (once it is present the wheel has the CPU kernel: drop the
stand-in and its entry) and vLLM still calls it by that name from the file the ledger
cites (otherwise vLLM moved the call: rewrite the entry). Their counterpart for the
construction shims is ``test_cpu_shims_upstream.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from vllm_draft_quant.demo import cpu_forward

# op -> the vLLM file (relative to the package) that calls it
CALLERS = {
    "init_cpu_memory_env": "v1/worker/cpu_worker.py",
    "greedy_argmax": "v1/sample/sampler.py",
    "compute_slot_mapping_kernel_impl": "utils/cpu_triton_utils.py",
    "get_scheduler_metadata": "_custom_ops.py",
    "cpu_attn_reshape_and_cache": "_custom_ops.py",
    "cpu_attention_with_kv_cache": "_custom_ops.py",
    "rejection_greedy_sample_kernel_impl": "utils/cpu_triton_utils.py",
    "expand_kernel_impl": "utils/cpu_triton_utils.py",
    "eagle_prepare_inputs_padded_kernel_impl": "utils/cpu_triton_utils.py",
    "eagle_prepare_next_token_padded_kernel_impl": "utils/cpu_triton_utils.py",
    "eagle_step_slot_mapping_metadata_kernel_impl": "utils/cpu_triton_utils.py",
    "copy_and_expand_eagle_inputs_kernel_impl": "utils/cpu_triton_utils.py",
    "static_scaled_fp8_quant": "_custom_ops.py",
    "silu_and_mul_quant": "model_executor/layers/fusion/fused_act_quant.py",
    "prepack_moe_weight": "_custom_ops.py",
    "cpu_fused_moe": "_custom_ops.py",
    "mla_decode_kvcache": "_custom_ops.py",
    "causal_conv1d_update_cpu_vec": "_custom_ops.py",
    "fused_gdn_gating_cpu": "_custom_ops.py",
    "chunk_gated_delta_rule_cpu": "_custom_ops.py",
    "fused_sigmoid_gating_delta_rule_update_cpu": "_custom_ops.py",
    "fused_sigmoid_gating_delta_rule_update_spec_cpu": "_custom_ops.py",
}


def test_every_stand_in_is_checked_here() -> None:
    assert sorted(CALLERS) == sorted(cpu_forward.STAND_INS)


@pytest.mark.parametrize("op", sorted(CALLERS))
def test_stand_in_still_needed(op: str) -> None:
    import torch
    import vllm._custom_ops  # noqa: F401 - loads vllm._C's ops where the wheel has them

    assert not cpu_forward.installed(), "a forward stand-in was installed in the pytest process"
    assert not hasattr(torch.ops._C, op), (
        f"vLLM's wheel now has torch.ops._C.{op} on this platform: drop stand-in {op} from "
        "vllm_draft_quant/demo/cpu_forward.py and its ledger entry"
    )


@pytest.mark.parametrize("op", sorted(CALLERS))
def test_stand_in_still_applies(op: str) -> None:
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None
    source = (Path(spec.origin).parent / CALLERS[op]).read_text()
    assert f"torch.ops._C.{op}(" in source, (
        f"vLLM's {CALLERS[op]} no longer calls torch.ops._C.{op}: find what it calls now "
        "and rewrite that entry of vllm_draft_quant/demo/cpu_forward.py"
    )


def test_nvfp4_emulation_experts_still_needed() -> None:
    """F20 (not a ``torch.ops._C`` op): vLLM's NVFP4 emulation experts launch a Triton
    kernel, which needs an active Triton driver; on this CPU vLLM finds none (its ``tl``
    is a placeholder). Once it does, F20 is not installed: drop it."""
    from vllm.triton_utils import HAS_TRITON

    assert not cpu_forward.installed(), "a forward stand-in was installed in the pytest process"
    assert not HAS_TRITON, (
        "vLLM now finds a Triton driver on this machine: F20 (NVFP4 emulation experts) is "
        "no longer installed; drop it from vllm_draft_quant/demo/cpu_forward.py"
    )


def test_nvfp4_emulation_experts_still_applies() -> None:
    """F20 replaces ``Nvfp4QuantizationEmulationTritonExperts.apply``: the method still
    exists with the same parameters and still launches the Triton kernel."""
    import inspect

    from vllm.model_executor.layers.fused_moe.experts import nvfp4_emulation_moe as m

    ours = list(inspect.signature(cpu_forward._nvfp4_emulation_experts_apply).parameters)
    theirs = list(inspect.signature(m.Nvfp4QuantizationEmulationTritonExperts.apply).parameters)
    assert ours == theirs, (ours, theirs)
    source = inspect.getsource(m.Nvfp4QuantizationEmulationTritonExperts.apply)
    assert "invoke_fused_moe_nvfp4_emulation_kernel(" in source
    assert "moe_kernel_quantize_input(" in source


def test_router_stand_in_still_needed() -> None:
    """F21: vLLM's CPU router still refuses ungrouped sigmoid routing with a bias
    (Step-3.5's MoE), asked exactly as ``install`` asks it (and it was not installed)."""
    from vllm.model_executor.layers.fused_moe.router.cpu_router import CPURouter

    compute = CPURouter._compute_routing
    assert getattr(compute, "__wrapped__", None) is None, "F21 was installed in pytest"
    assert cpu_forward._router_refuses_sigmoid_bias(compute), (
        "vLLM's CPURouter now routes sigmoid scores with a bias without expert groups: drop "
        "F21 (cpu_router_sigmoid_bias_topk) from vllm_draft_quant/demo/cpu_forward.py"
    )


def test_router_stand_in_still_applies() -> None:
    """F21: on the CPU platform every MoE layer still gets a ``CPURouter``, and Step-3.5's
    MoE still asks for sigmoid routing with its ``router_bias`` and no expert groups."""
    spec = importlib.util.find_spec("vllm")
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent / "model_executor"
    factory = (root / "layers/fused_moe/router/router_factory.py").read_text()
    step3p5 = (root / "models/step3p5.py").read_text()
    assert "current_platform.is_cpu()" in factory and "router = CPURouter(" in factory
    assert "e_score_correction_bias=self.router_bias" in step3p5
    assert "use_grouped_topk" not in step3p5
