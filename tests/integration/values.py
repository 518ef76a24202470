"""Bit-exact comparison of a loaded drafter's parameters with the checkpoint's tensors.

For each planned module, every parameter is rebuilt from the checkpoint tensors the
plan names, the way vLLM's weight loaders place them, and compared byte for byte:

- a linear module's ``<param>`` is the concatenation (dim 0) of its shards'
  ``<param>`` tensors; a per-tensor scalar per shard fills element ``i`` of a
  ``[num_shards]`` parameter (``weight_scale``/``input_scale``/``weight_scale_2``);
- fused experts: ``w13_<param>[e]`` is gate_e then up_e, ``w2_<param>[e]`` is down_e
  (per-expert checkpoint names, or stacked 3-D ``moe.{gate,up,down}_proj`` tensors);
- an LM head may be padded past the vocabulary: only the checkpoint's rows are compared;
- GPTQ/AWQ tensors (``qweight``, ``qzeros``, ``scales``) keep the output dimension last,
  so their shards (and an expert's gate/up) are joined along the last dimension;
  compressed-tensors' ``weight_shape`` ([out, in] as data) is compared for modules of one
  shard only (vLLM keeps one [2] parameter for a fused module); the expert biases
  GPTQ/AWQ MoE methods register for checkpoints that have them are skipped when none
  is stored.

Values are compared before vLLM's post-load processing (the worker dumps them there).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vllm_draft_quant.core.plan import Plan


def load_checkpoint(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    out: dict[str, Any] = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        out.update(load_file(str(f)))
    return out


def _bytes(t: Any) -> Any:
    import torch

    t = t.detach().contiguous()
    return (
        t.view(torch.uint8)
        if t.element_size() == 1
        else t.view(torch.int16)
        if t.element_size() == 2
        else t.view(torch.int32)
        if t.element_size() == 4
        else t
    )


def _same(a: Any, b: Any) -> bool:
    import torch

    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    return bool(torch.equal(_bytes(a), _bytes(b)))


#: parameters whose output dimension is the last one (GPTQ / AWQ packing)
OUT_LAST = ("qweight", "qzeros", "scales")


def _expected_linear(shards: list[str], pname: str, ckpt: Mapping[str, Any], param: Any) -> Any:
    import torch

    parts = [ckpt[f"{s}.{pname}"] for s in shards if f"{s}.{pname}" in ckpt]
    if not parts:
        return None
    if all(p.numel() == 1 for p in parts) and param.numel() == len(parts):
        return torch.stack([p.reshape(()) for p in parts]).reshape(param.shape)
    if all(p.numel() == 1 for p in parts) and param.numel() == 1:
        return parts[0].reshape(param.shape)
    if len(parts) == 1 and parts[0].numel() == 1 and param.dim() == 1:
        # a fused module stored fused (DFlash-Laguna's qkv_proj): vLLM fills every shard's
        # slot with its one scale (linear.py:QKVParallelLinear.weight_loader_v2)
        return parts[0].reshape(()).expand(param.shape)
    return torch.cat(parts, dim=-1 if pname in OUT_LAST else 0)


def _expected_experts(
    shards: list[str], pname: str, ckpt: Mapping[str, Any], param: Any, n_experts: int
) -> Any:
    import torch

    w13 = pname.startswith("w13_")
    base = pname.removeprefix("w13_").removeprefix("w2_")
    if len(shards) != 3:  # a learned mapping lists every expert's names: as templates
        shards = list(dict.fromkeys(re.sub(r"\.experts\.\d+\.", ".experts.{e}.", s)
                                    for s in shards))
    if len(shards) == 2:  # non-gated experts (Nemotron-H): up and down only
        up, down = shards
        per = [up] if w13 else [down]
    else:
        gate, up, down = shards  # templates, "{e}" for per-expert names
        per = [gate, up] if w13 else [down]
    rows = []
    for e in range(n_experts):
        ts = []
        for tmpl in per:
            name = f"{tmpl.replace('{e}', str(e))}.{base}"
            if name in ckpt:
                ts.append(ckpt[name])
            elif f"{tmpl}.{base}" in ckpt:  # stacked 3-D
                ts.append(ckpt[f"{tmpl}.{base}"][e])
            else:
                return None
        if all(t.numel() == 1 for t in ts):
            if param.dim() == 1 and len(ts) == 2:
                # one activation scale per expert for w1 and w3 (vLLM requires them equal)
                if not torch.equal(ts[0], ts[1]):
                    return None
                ts = ts[:1]
            rows.append(torch.stack([t.reshape(()) for t in ts]))
        else:
            rows.append(torch.cat(ts, dim=-1 if base in OUT_LAST else 0))
    out = torch.stack(rows)
    return out.reshape(param.shape) if out.numel() == param.numel() else out


def mismatches(
    plan: Plan,
    modules: Mapping[str, Any],
    dump: Mapping[str, Any],
    ckpt: Mapping[str, Any],
    shard_templates: Mapping[str, list[str]],
) -> list[str]:
    """Every parameter of every planned module that differs from the checkpoint."""
    bad: list[str] = []
    for d in plan.modules:
        info = modules.get(d.module)
        if info is None:
            if d.kind not in ("plain",):
                bad.append(f"{d.module}: planned but not built")
            continue
        shards = shard_templates[d.module]
        for pname, _ in info.params.items():
            if d.kind == "experts" and not pname.startswith(("w13_", "w2_")):
                continue  # router state shared with the gate (e_score_correction_bias)
            if pname.endswith("weight_shape") and (d.kind == "experts" or len(shards) > 1):
                continue  # one [2] parameter for several shards (see the docstring)
            key = f"{info.module_path}.{pname}"
            if key not in dump:
                bad.append(f"{key}: not in the dump")
                continue
            param = dump[key]
            if d.kind == "experts":
                n = param.shape[0]
                exp = _expected_experts(shards, pname, ckpt, param, n)
            else:
                exp = _expected_linear(shards, pname, ckpt, param)
                if exp is not None and d.kind == "lm_head" and exp.shape[0] < param.shape[0]:
                    param = param[: exp.shape[0]]
            if exp is None and d.kind == "experts" and pname in ("w13_bias", "w2_bias"):
                continue  # INT4 MoE methods' optional expert bias (GPTQ/AWQ); none stored
            if exp is None:
                bad.append(f"{key}: no checkpoint tensor for it")
            elif not _same(param, exp):
                bad.append(
                    f"{key}: {param.dtype}{tuple(param.shape)} differs from the "
                    f"checkpoint's {exp.dtype}{tuple(exp.shape)}"
                )
    return bad
