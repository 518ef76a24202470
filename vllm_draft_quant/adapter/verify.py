"""After the draft weights are loaded: did every planned module get what the plan says?

Runs between ``load_weights`` and post-load processing (post-processing can
fold a never-loaded scale away, e.g. a max over fused shards).
"""

from __future__ import annotations

from typing import Any

from vllm_draft_quant.adapter import compat
from vllm_draft_quant.adapter.context import DraftBuild
from vllm_draft_quant.core.schemes import Scheme

_QUANT_DTYPES = ("float8_e4m3fn", "float8_e5m2", "uint8", "int8", "int32", "float4_e2m1fn_x2")


def problems(model: Any, build: DraftBuild) -> list[str]:
    """Human-readable problems; empty when the drafter loaded as planned."""
    import torch

    sentinel = torch.finfo(torch.float32).min
    out: list[str] = []
    for _, module in model.named_modules():
        prefix = compat.module_prefix(module)
        d = build.decisions.get(prefix) if prefix else None
        qm = getattr(module, "quant_method", None)
        if d is None or qm is None:
            continue
        unquant = type(qm).__name__.startswith("Unquantized")
        if d.scheme is Scheme.UNQUANTIZED and not unquant:
            out.append(f"{prefix}: stored unquantized but built with {type(qm).__name__}")
        elif d.scheme is not Scheme.UNQUANTIZED and unquant:
            out.append(f"{prefix}: stored {d.scheme} but built unquantized")
        for pname, p in module.named_parameters(recurse=False):
            dtype = str(p.dtype).removeprefix("torch.")
            if d.scheme is Scheme.UNQUANTIZED and dtype in _QUANT_DTYPES:
                out.append(f"{prefix}.{pname}: checkpoint tensor is unquantized but the "
                           f"parameter is {dtype}")
            if "scale" in pname and p.is_floating_point() and p.numel():
                data = p.detach().float()
                if torch.isnan(data).any():
                    out.append(f"{prefix}.{pname}: NaN (never loaded?)")
                elif (data <= sentinel * 0.5).any():
                    out.append(f"{prefix}.{pname}: still vLLM's initial value {sentinel:.3g} "
                               "(no scale in the checkpoint loaded into it)")
    return out
