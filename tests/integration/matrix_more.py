"""Issue 8's cases: more drafter families and more checkpoint formats, as data.

Cases are ``(family, producer, scheme, layout)``; layouts a..g are
``vllm_draft_quant.testing.LAYOUTS`` (FINDINGS.md "Outcomes"):

- ``FAMILY_CASES``: GLM-4.5 MoE (``Glm4MoeMTPModel``), Qwen3.5 MoE text-only and
  multimodal (``Qwen3_5MoeMTP``), MiMo (``MiMoMTPModel``), each with ModelOpt NVFP4
  and FP8: 4 x 2 x 7 = 56.
- ``FORMAT_CASES``: Step-3.5, Qwen3-Next and DeepSeek-V3 with compressed-tensors
  NVFP4 (``nvfp4-pack-quantized``) and FP8 (``float-quantized``) -- ``ignore`` absent
  (a), ``re:`` (b) and exact (c-g) --, DeepSeek-native FP8 block (``weight_scale_inv``,
  ``modules_to_not_convert`` absent / substring / exact) and Quark MXFP4 (``exclude``
  absent / ``re:`` / exact): 3 x 4 x 7 = 84.

vLLM's ``fp8`` and ``quark`` configs cannot build a quantized ``ParallelLMHead``, so
for those producers layout g keeps LM heads BF16 (``_formats_more.head_stays_bf16``).
compressed-tensors layout g quantizes the MTP head: stock vLLM cannot load that
(``ParallelLMHead`` is never a ``Linear`` target), the plugin can.

``STOCK_OUTCOMES_MORE`` is what stock vLLM 0.33.0 does (plugin off; CPU platform with
the test shims of ``vllm_draft_quant/testing/cpu_shims*.py``), measured with the
target model loaded first; ``Expected`` has the same meaning as in ``matrix.py``
(``silent``: each ``(runtime prefix, checkpoint module)`` loads into a parameter of
the wrong precision, either way round).
"""

from __future__ import annotations

from typing import Any, cast

from matrix import OK, Expected, _loud, _silent

from vllm_draft_quant.testing import CheckpointSpec

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

NEW_FAMILIES = ("glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo")
FIRST_FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
FORMATS = (
    ("compressed-tensors", "nvfp4"),
    ("compressed-tensors", "fp8"),
    ("fp8", "fp8_block"),
    ("quark", "mxfp4"),
)
LAYOUT_KEYS = tuple("abcdefg")

FAMILY_CASES: tuple[Case, ...] = tuple(
    (f, "modelopt", s, lay) for f in NEW_FAMILIES for s in ("nvfp4", "fp8") for lay in LAYOUT_KEYS
)
FORMAT_CASES: tuple[Case, ...] = tuple(
    (f, p, s, lay) for f in FIRST_FAMILIES for p, s in FORMATS for lay in LAYOUT_KEYS
)
CASES: tuple[Case, ...] = FAMILY_CASES + FORMAT_CASES

#: EngineArgs a family needs (MiMo's config is remote code; the Qwen3.5 wrapper's
#: vision tower is not built, so the factory writes none)
ENGINE_ARGS: dict[str, dict[str, Any]] = {
    "mimo": {"trust_remote_code": True},
    "qwen3_5_moe_vl": {"limit_mm_per_prompt": {"image": 0, "video": 0}},
}


def case_id(case: Case) -> str:
    return "-".join(case)


def group_of(case: Case) -> str:
    """Cases are built in groups (one worker batch each), so ``-k`` can pick a group."""
    family, producer, scheme, _ = case
    return f"{family}-{producer}-{scheme}"


def spec_for(case: Case, **options: Any) -> CheckpointSpec:
    family, producer, scheme, layout = case
    return CheckpointSpec(
        cast(Any, family), cast(Any, scheme), cast(Any, producer), layout=layout, **options
    )


def engine_args(family: str) -> dict[str, Any]:
    return dict(ENGINE_ARGS.get(family, {}))


STOCK_OUTCOMES_MORE: dict[Case, Expected] = {}  # filled below

assert len(FAMILY_CASES) == 56 and len(FORMAT_CASES) == 84
assert OK.outcome == "ok" and callable(_loud) and callable(_silent)
