"""Issue 14's cases: INT4 producers around MTP drafters, as data.

Cases are ``(family, producer, scheme, layout)``:

- ``PRODUCER_CASES``: Qwen3-Next, Qwen3.5 MoE, GLM-4.5 MoE and DeepSeek-V3, each as a
  GPTQ, AWQ, AutoRound (``auto_round:auto_gptq``) and compressed-tensors WNA16
  (pack-quantized) export (``support/_formats_int4.py``), in layouts
  a (BF16 MTP, no exclusion), b (BF16 MTP, one wildcard in the producer's field),
  c (BF16 MTP, every module opted out in the producer's field: GPTQ ``dynamic`` ``-:``,
  AWQ ``modules_to_not_convert``, AutoRound ``extra_config`` ``bits: 16``,
  compressed-tensors ``ignore``), e (mixed: attention BF16, MLP INT4) and g (INT4 MTP);
- ``CROSS_CASES``: an INT4 MTP next to a target of another scheme: a BF16 target (no
  quant config) with a GPTQ MTP, and a ModelOpt NVFP4 target with a compressed-tensors
  WNA16 MTP (`write_case` puts one export's MTP tensors into the other).

GPTQ/AWQ/AutoRound never quantize a ``ParallelLMHead`` (no ``lm_head`` flag), so MTP heads
stay BF16 for them (GLM/DeepSeek NextN heads; Qwen's ``mtp.fc`` is a linear and follows
its group). ``STOCK_INT4`` is what stock vLLM 0.33.0 does (plugin off, CPU platform with
``demo/cpu_shims.py``, the target loaded first), in ``matrix.py``'s ``Expected`` terms.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from matrix import OK, Expected, _loud, _silent  # noqa: F401  (the table uses them)
from support import CheckpointSpec, write_checkpoint
from support._formats_int4 import with_mtp_of

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

FAMILIES = ("qwen3_next", "qwen3_5_moe", "glm4_moe", "deepseek_v3")
PRODUCERS = ("gptq", "awq", "auto-round", "compressed-tensors")
LAYOUTS = ("a", "b", "c", "e", "g")

PRODUCER_CASES: tuple[Case, ...] = tuple(
    (f, p, "int4", lay) for f in FAMILIES for p in PRODUCERS for lay in LAYOUTS
)
#: (base export, MTP export): producers joined by "+"
CROSS_CASES: tuple[Case, ...] = (
    ("qwen3_next", "bf16+gptq", "int4", "g"),
    ("qwen3_next", "modelopt+compressed-tensors", "int4", "g"),
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
    mtp = write_checkpoint(path.with_name(path.name + ".mtp"), spec_for((family, mtp_p, "int4",
                                                                         layout)))
    if base_p == "bf16":
        base = CheckpointSpec(cast(Any, family), "nvfp4", quantized=False)
    else:
        base = CheckpointSpec(cast(Any, family), "nvfp4", cast(Any, base_p), layout="a")
    src = write_checkpoint(path.with_name(path.name + ".base"), base)
    with_mtp_of(path, src.path, mtp.path, _is_mtp(family))
    return path


# ------------------------------------------------------------------ stock outcomes (measured)
def _row(**by_layouts: Expected) -> dict[str, Expected]:
    row = dict.fromkeys(LAYOUTS, OK)
    for layouts, expected in by_layouts.items():
        for layout in layouts:
            row[layout] = expected
    return row


STOCK_INT4: dict[Case, Expected] = {}
