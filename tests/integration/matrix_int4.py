"""Issue 14's cases: INT4 producers around MTP drafters, as data.

Cases are ``(family, producer, scheme, layout)``:

- ``PRODUCER_CASES``: Qwen3-Next, Qwen3.5 MoE, dense Qwen3.5 (``Qwen3_5MTP``),
  GLM-4.5 MoE and DeepSeek-V3, each as a
  GPTQ, AWQ, AutoRound (``auto_round:auto_gptq``) and compressed-tensors WNA16
  (pack-quantized) export (``support/_formats_int4.py``), in layouts
  a (BF16 MTP, no exclusion), b (BF16 MTP, one wildcard in the producer's field),
  c (BF16 MTP, every module opted out in the producer's field: GPTQ ``dynamic`` ``-:``,
  AWQ ``modules_to_not_convert``, AutoRound ``extra_config`` ``bits: 16``,
  compressed-tensors ``ignore``), e (mixed: MLP / experts INT4; attention and the MTP
  head or ``fc`` BF16, each opted out by exact name in the producer's field) and g (INT4
  MTP). 100 cases, 200 builds (dense Qwen3.5's 20: 40 builds, 91 s of worker time for
  its first 16 with the full suite running beside them, about 15 s on a quiet machine;
  layout e's 20: 40 builds, 21 s of worker time in a session of their own, 16 s of it
  for the 16 beyond Qwen3-Next);
- ``CROSS_CASES``: an INT4 MTP next to a target of another scheme: a BF16 target (no
  quant config) with a GPTQ MTP, a ModelOpt NVFP4 target with a compressed-tensors
  WNA16 MTP, and a GPTQ group-32 export whose MTP is GPTQ group 64 with no ``dynamic``
  rule saying so (the group size only the shapes tell) (`write_case` puts one export's
  MTP tensors into the other), and a BF16 target whose GPTQ MTP comes from an
  activation-order export (``mtp.fc.g_idx`` permuted: `PLUGIN_REFUSES`).

GPTQ/AWQ/AutoRound never quantize a ``ParallelLMHead`` (no ``lm_head`` flag), so MTP heads
stay BF16 for them (GLM/DeepSeek NextN heads; Qwen's ``mtp.fc`` is a linear and follows
its group). ``STOCK_INT4`` is what stock vLLM 0.33.0 does (plugin off, CPU platform with
``demo/cpu_shims.py``, the target loaded first), in ``matrix.py``'s ``Expected`` terms.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, cast

from matrix import OK, Expected, _loud, _silent  # noqa: F401  (the table uses them)
from support import CheckpointSpec, _formats_int4, write_checkpoint
from support._formats_int4 import act_order_g_idx, with_mtp_of

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

FAMILIES = ("qwen3_next", "qwen3_5_moe", "qwen3_5", "glm4_moe", "deepseek_v3")
PRODUCERS = ("gptq", "awq", "auto-round", "compressed-tensors")
LAYOUTS = ("a", "b", "c", "e", "g")

PRODUCER_CASES: tuple[Case, ...] = tuple(
    (f, p, "int4", lay)
    for f in FAMILIES
    for p in PRODUCERS
    for lay in LAYOUTS
)
#: (base export, MTP export): producers joined by "+"
CROSS_CASES: tuple[Case, ...] = (
    ("qwen3_next", "bf16+gptq", "int4", "g"),
    ("qwen3_next", "modelopt+compressed-tensors", "int4", "g"),
    ("qwen3_next", "gptq+gptq-g64", "int4", "g"),
    ("qwen3_next", "bf16+gptq-actorder", "int4", "g"),
)
CASES: tuple[Case, ...] = PRODUCER_CASES + CROSS_CASES


def case_id(case: Case) -> str:
    return "-".join(case)


def spec_for(case: Case, **options: Any) -> CheckpointSpec:
    family, producer, scheme, layout = case
    return CheckpointSpec(
        cast(Any, family), cast(Any, scheme), cast(Any, producer), layout=layout, **options
    )


def _is_mtp(family: str) -> Any:
    if family.startswith("qwen"):
        return lambda n: n.startswith("mtp.")
    root = "model.layers.2."  # the tiny GLM/DeepSeek targets have 2 layers
    return lambda n: n.startswith(root)


def write_case(case: Case, path: Path) -> Path:
    """Write ``case``'s checkpoint at ``path``; return the model folder."""
    family, producer, _, layout = case
    if "+" not in producer:
        return write_checkpoint(path, spec_for(case)).path
    base_p, mtp_p = producer.split("+")
    variant = ""
    if match := re.fullmatch(r"(.+)-(g\d+|actorder)", mtp_p):  # gptq-g64, gptq-actorder
        mtp_p, variant = match.groups()
    group = variant[1:] if variant.startswith("g") else ""
    saved = _formats_int4.GROUP
    _formats_int4.GROUP = int(group or saved)
    try:
        mtp = write_checkpoint(path.with_name(path.name + ".mtp"),
                               spec_for((family, mtp_p, "int4", layout)))
    finally:
        _formats_int4.GROUP = saved
    if base_p == "bf16":
        base = CheckpointSpec(cast(Any, family), "nvfp4", quantized=False)
    elif base_p == "modelopt":
        base = CheckpointSpec(cast(Any, family), "nvfp4", "modelopt", layout="a")
    else:
        base = CheckpointSpec(cast(Any, family), "int4", cast(Any, base_p), layout="g")
    src = write_checkpoint(path.with_name(path.name + ".base"), base)
    with_mtp_of(path, src.path, mtp.path, _is_mtp(family))
    if variant == "actorder":
        act_order_g_idx(path / "model.safetensors", "mtp.fc.g_idx")
    return path


# ------------------------------------------------------------------ stock outcomes (measured)
def _row(**by_layouts: Expected) -> dict[str, Expected]:
    row = dict.fromkeys(LAYOUTS, OK)
    for layouts, expected in by_layouts.items():
        for layout in layouts:
            row[layout] = expected
    return row


# stock vLLM's failures, by the module they name
_EXPERTS_BF16 = _loud("AttributeError", "mtp.layers.0.mlp.experts has no parameter 'w2_weight'")  # INT4 experts
_FC_BF16 = _loud("ValueError", "fc.weight")  # an INT4 fc built for BF16 tensors
_ROUTED_BF16 = _loud("KeyError", "mlp.experts.routed_experts.w2_weight")  # GLM / DeepSeek
_G_IDX = _loud("KeyError", "mlp.experts.routed_experts.w2_g_idx")
_HEAD_INT4 = _loud("KeyError", "shared_head.head.weight_packed")  # heads are never CT targets
# Qwen3.5: any GPTQ ``dynamic`` "-:" key containing "mtp" unquantizes the whole MTP
# (qwen3_5_mtp.py:Qwen3_5MultiTokenPredictor.__init__), INT4 experts included
_QWEN35_OPTED_OUT = _loud("AttributeError", "mtp.layers.0.mlp.experts has no parameter 'w2_qweight'")
# the same rule on dense Qwen3.5: its INT4 MLP meets BF16 layers
_QWEN35_DENSE_OPTED_OUT = _loud("ValueError", "no module or parameter named "
                                "'layers.0.mlp.down_proj.qweight' in Qwen3_5MultiTokenPredictor")

_GROUPS: dict[tuple[str, str], dict[str, Expected]] = {
    ("qwen3_next", "gptq"): _row(ac=_EXPERTS_BF16),
    ("qwen3_next", "awq"): _row(a=_FC_BF16, c=_EXPERTS_BF16),
    ("qwen3_next", "auto-round"): _row(a=_FC_BF16, c=_EXPERTS_BF16),
    ("qwen3_next", "compressed-tensors"): _row(a=_FC_BF16),
    ("qwen3_5_moe", "gptq"): _row(a=_EXPERTS_BF16, eg=_QWEN35_OPTED_OUT),
    ("qwen3_5_moe", "awq"): _row(a=_FC_BF16, c=_EXPERTS_BF16),
    ("qwen3_5_moe", "auto-round"): _row(a=_FC_BF16, c=_EXPERTS_BF16),
    ("qwen3_5_moe", "compressed-tensors"): _row(a=_FC_BF16),
    # dense Qwen3.5: GPTQ's layout a loads right because, with no
    # ``modules_in_block_to_quantize``, vLLM fills it from the safetensors dtypes
    # (auto_gptq.py:AutoGPTQConfig.maybe_update_config), so BF16 linears are built
    # unquantized (MoE experts take get_quant_method's RoutedExperts branch, which does
    # not ask it: hence the MoE families' failures above)
    # Layout e: its ``dynamic`` "-:" keys for the BF16 attention name "mtp", so the
    # Qwen3.5 rule above unquantizes the whole MTP, the INT4 MLP included (b and c opt
    # the whole MTP out, which that rule gets right; a and g write no "-:" key)
    ("qwen3_5", "gptq"): _row(e=_QWEN35_DENSE_OPTED_OUT),
    **{("qwen3_5", p): _row(a=_FC_BF16) for p in ("awq", "auto-round", "compressed-tensors")},
    **{(f, p): _row(ac=_ROUTED_BF16, eg=_G_IDX) for f in ("glm4_moe", "deepseek_v3")
       for p in ("gptq", "auto-round")},
    **{(f, "awq"): _row(ac=_ROUTED_BF16) for f in ("glm4_moe", "deepseek_v3")},
    **{(f, "compressed-tensors"): _row(a=_ROUTED_BF16, g=_HEAD_INT4)
       for f in ("glm4_moe", "deepseek_v3")},
}
STOCK_INT4: dict[Case, Expected] = {
    **{(f, p, "int4", lay): expected for (f, p), row in _GROUPS.items()
       for lay, expected in row.items() if (f, p, "int4", lay) in PRODUCER_CASES},
    ("qwen3_next", "bf16+gptq", "int4", "g"): _loud("ValueError", "fc.g_idx"),
    ("qwen3_next", "modelopt+compressed-tensors", "int4", "g"): _loud("ValueError",
                                                                       "fc.weight_packed"),
    ("qwen3_next", "gptq+gptq-g64", "int4", "g"): _loud("AssertionError", "fc.qzeros"),
    ("qwen3_next", "bf16+gptq-actorder", "int4", "g"): _loud("ValueError", "fc.g_idx"),
}

#: cases the plugin refuses, with the one error it names the tensor in (stock's failure is
#: in ``STOCK_INT4``): an MTP from an activation-order GPTQ export (``g_idx`` not
#: ``i // group``) grafted into a BF16 target. vLLM 0.33's GPTQ kernels cannot apply an
#: activation order, and the config the plugin builds for the stored layout says
#: ``desc_act: false``: dropping that ``g_idx`` as vLLM's own weight mapper does would load
#: ``mtp.fc`` silently wrong (``adapter/weights.py``).
PLUGIN_REFUSES: dict[Case, Expected] = {
    ("qwen3_next", "bf16+gptq-actorder", "int4", "g"): _loud("DraftLoadError", "mtp.fc.g_idx"),
}
