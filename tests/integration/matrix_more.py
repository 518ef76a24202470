"""Issue 8's cases: more drafter families and more checkpoint formats, as data.

Cases are ``(family, producer, scheme, layout)``; layouts a..g are
``support.factory.LAYOUTS`` (FINDINGS.md "Outcomes"):

- ``FAMILY_CASES``: GLM-4.5 MoE (``Glm4MoeMTPModel``), Qwen3.5 MoE text-only and
  multimodal (``Qwen3_5MoeMTP``), MiMo (``MiMoMTPModel``), and (issue 13) GLM-5
  (``DeepseekV32MTPModel``, built with CPU shim 6), dense Qwen3.5 (``Qwen3_5MTP``) and
  GLM-4.7-Flash (``Glm4MoeLiteMTPModel``), each with ModelOpt NVFP4 and FP8:
  7 x 2 x 7 = 98; and DeepSeek-V3.2 (``DeepseekV32ForCausalLM``: GLM-5's drafter and
  tensors under another target) in the layouts issue 13's acceptance names, BF16 MTP
  with no exclusions (a), a wildcard (b), exact names (c), and quantized MTP (g):
  2 x 4 = 8.
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
the CPU shims of ``vllm_draft_quant/demo/cpu_shims.py``), measured with the
target model loaded first; ``Expected`` has the same meaning as in ``matrix.py``
(``silent``: each ``(runtime prefix, checkpoint module)`` loads into a parameter of
the wrong precision, either way round). It is generated from ``_GROUPS``: one row per
(family, producer, scheme) giving the layouts that do not load correctly
(``_row(acf=X)``: layouts a, c and f fail as X, the others are ``ok``).
"""

from __future__ import annotations

from typing import Any, cast

from matrix import OK, Expected, _loud, _silent
from support import CheckpointSpec

Case = tuple[str, str, str, str]  # (family, producer, scheme, layout)

NEW_FAMILIES = (
    "glm4_moe", "qwen3_5_moe", "qwen3_5_moe_vl", "mimo", "glm5", "qwen3_5", "glm4_moe_lite"
)
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
DSV32_CASES: tuple[Case, ...] = tuple(
    ("deepseek_v32", "modelopt", s, lay) for s in ("nvfp4", "fp8") for lay in "abcg"
)
CASES: tuple[Case, ...] = FAMILY_CASES + DSV32_CASES + FORMAT_CASES

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


# ------------------------------------------------------------------ stock outcomes, as data
def _row(**by_layouts: Expected) -> dict[str, Expected]:
    """The outcome of each layout a..g of one group: ``_row(acf=X, e=Y)`` gives layouts a,
    c and f the outcome X, e the outcome Y, every other layout ``OK``."""
    row = dict.fromkeys(LAYOUT_KEYS, OK)
    for layouts, expected in by_layouts.items():
        for layout in layouts:
            row[layout] = expected
    return row


def _pairs(layer: str, *modules: str, root: str = "") -> tuple[tuple[str, str], ...]:
    """``(runtime prefix, checkpoint module)`` of each ``"runtime=checkpoint"`` module of MTP
    layer ``layer`` (one name when both agree); ``root`` prefixes checkpoint names."""
    out = []
    for m in modules:
        runtime, _, ckpt = m.partition("=")
        out.append((f"{layer}.{runtime}", f"{root or layer}.{ckpt or runtime}"))
    return tuple(out)


# Qwen3.5 / Qwen3-Next: BF16 MTP in FP8 parameters (exclusion prefixes in checkpoint form)
_QWEN_MTP_SILENT = _silent(
    ("mtp.fc", "mtp.fc"),
    *_pairs(
        "mtp.layers.0",
        "self_attn.qkv_proj=self_attn.k_proj",
        "self_attn.o_proj",
        "mlp.shared_expert.gate_up_proj=mlp.shared_expert.gate_proj",
        "mlp.shared_expert.down_proj",
        "mlp.experts=mlp.experts.0.down_proj",
    ),
)
_QWEN_EXPERTS = _loud("RuntimeError", "mtp.layers.0.mlp.experts.w2_weight")
# DeepSeek-V3 FP8 (compressed-tensors, native block): every BF16 MTP module in FP8
_DS_MTP_SILENT = _silent(
    *_pairs(
        "model.layers.2",
        "self_attn.fused_qkv_a_proj=self_attn.kv_a_proj_with_mqa",
        "self_attn.q_b_proj",
        "self_attn.kv_b_proj",
        "self_attn.o_proj",
        "mlp.shared_experts.gate_up_proj=mlp.shared_experts.gate_proj",
        "mlp.shared_experts.down_proj",
        "mlp.experts=mlp.experts.0.down_proj",
    )
)
# GLM: the NextN head's runtime prefix is model.layers.N.head
_GLM_HEAD_PAIR = _pairs("model.layers.2", "head=shared_head.head")
_GLM_HEAD_SIZE = _loud("RuntimeError", "model.layers.2.shared_head.head.weight")
_GLM_MTP_SILENT = _silent(
    *_GLM_HEAD_PAIR,
    *_pairs(
        "model.layers.2",
        "self_attn.qkv_proj=self_attn.k_proj",
        "self_attn.o_proj",
        "mlp.shared_experts.gate_up_proj=mlp.shared_experts.gate_proj",
        "mlp.shared_experts.down_proj",
        "mlp.experts=mlp.experts.0.down_proj",
    ),
)
# MiMo: runtime model.layers.N, checkpoint model.mtp_layers.k
_MIMO_ATTN = _pairs(
    "model.layers.2",
    "self_attn.qkv_proj=self_attn.k_proj",
    "self_attn.o_proj",
    root="model.mtp_layers.0",
)
_MIMO_MLP = _pairs(
    "model.layers.2", "mlp.gate_up_proj=mlp.gate_proj", "mlp.down_proj", root="model.mtp_layers.0"
)
_MIMO_BLOCK = "model.mtp_layers.2.mtp_block"
# GLM-5: every BF16 MTP module of the NextN layer in FP8 (indexer wq_b and head too)
_GLM5_MTP_SILENT = _silent(
    *_GLM_HEAD_PAIR,
    *_pairs(
        "model.layers.2",
        "self_attn.fused_qkv_a_proj=self_attn.kv_a_proj_with_mqa",
        "self_attn.q_b_proj",
        "self_attn.kv_b_proj",
        "self_attn.o_proj",
        "self_attn.indexer.wq_b",
        "mlp.shared_experts.gate_up_proj=mlp.shared_experts.gate_proj",
        "mlp.shared_experts.down_proj",
        "mlp.experts=mlp.experts.0.down_proj",
    ),
)
_GLM47_MTP_SILENT = _silent(*(w for w in _GLM5_MTP_SILENT.wrong if "indexer" not in w[0]))
# dense Qwen3.5: BF16 MTP in FP8 parameters
_QWEN_DENSE_MTP_SILENT = _silent(
    ("mtp.fc", "mtp.fc"),
    *_pairs(
        "mtp.layers.0",
        "self_attn.qkv_proj=self_attn.k_proj",
        "self_attn.o_proj",
        "mlp.gate_up_proj=mlp.gate_proj",
        "mlp.down_proj",
    ),
)
# Step-3.5: its MTP modules are model.layers.2.mtp_block.*
_ST_BLOCK = "model.layers.2.mtp_block"
_ST_KV_PLACEHOLDER = _loud("RuntimeError", f"{_ST_BLOCK}.self_attn.attn.k_zero_point")
_DS_ROUTED_W2 = "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_weight"
_HEAD = "model.layers.2.shared_head.head"

#: (family, producer, scheme) -> outcome per layout, measured (see the module docstring)
_GROUPS: dict[tuple[str, str, str], dict[str, Expected]] = {
    ("glm4_moe", "modelopt", "nvfp4"): _row(acdefg=_GLM_HEAD_SIZE),
    ("glm4_moe", "modelopt", "fp8"): _row(a=_GLM_MTP_SILENT, cdef=_silent(*_GLM_HEAD_PAIR)),
    **{
        (qwen, "modelopt", "nvfp4"): _row(a=_QWEN_EXPERTS, g=_loud("ValueError", "fc.input_scale"))
        for qwen in ("qwen3_5_moe", "qwen3_5_moe_vl")
    },
    **{
        (qwen, "modelopt", "fp8"): _row(a=_QWEN_MTP_SILENT)
        for qwen in ("qwen3_5_moe", "qwen3_5_moe_vl")
    },
    ("mimo", "modelopt", "nvfp4"): _row(
        acbf=_loud("AssertionError", f"{_MIMO_BLOCK}.mlp.gate_up_proj"),
        e=_loud("AssertionError", f"{_MIMO_BLOCK}.self_attn.qkv_proj"),
    ),
    ("mimo", "modelopt", "fp8"): _row(
        abc=_silent(*_MIMO_ATTN, *_MIMO_MLP), e=_silent(*_MIMO_ATTN), f=_silent(*_MIMO_MLP)
    ),
    # GLM-5 (DeepseekV32MTPModel): like DeepSeek-V3, and the NextN head's runtime prefix
    # is model.layers.N.head, so an exact shared_head.head exclusion never matches it
    ("glm5", "modelopt", "nvfp4"): _row(
        a=_loud("RuntimeError", _DS_ROUTED_W2),
        cdef=_loud("RuntimeError", "model.layers.2.shared_head.head.weight"),
    ),
    ("glm5", "modelopt", "fp8"): _row(a=_GLM5_MTP_SILENT, cdef=_silent(*_GLM_HEAD_PAIR)),
    # DeepSeek-V3.2: the same drafter and tensors as GLM-5, the same outcomes
    ("deepseek_v32", "modelopt", "nvfp4"): _row(
        a=_loud("RuntimeError", _DS_ROUTED_W2),
        c=_loud("RuntimeError", "model.layers.2.shared_head.head.weight"),
    ),
    ("deepseek_v32", "modelopt", "fp8"): _row(a=_GLM5_MTP_SILENT, c=_silent(*_GLM_HEAD_PAIR)),
    # GLM-4.7-Flash: DeepSeek-V3's layer (MLA, MoE) and head prefix
    ("glm4_moe_lite", "modelopt", "nvfp4"): _row(
        a=_loud("RuntimeError", _DS_ROUTED_W2),
        cdef=_loud("RuntimeError", "model.layers.2.shared_head.head.weight"),
    ),
    ("glm4_moe_lite", "modelopt", "fp8"): _row(a=_GLM47_MTP_SILENT, cdef=_silent(*_GLM_HEAD_PAIR)),
    ("qwen3_5", "modelopt", "nvfp4"): _row(
        a=_loud("AssertionError", "layers.0.mlp.gate_up_proj"),
        g=_loud("ValueError", "fc.input_scale"),
    ),
    ("qwen3_5", "modelopt", "fp8"): _row(a=_QWEN_DENSE_MTP_SILENT),
    ("step3p5", "compressed-tensors", "nvfp4"): _row(
        acf=_loud("KeyError", f"{_ST_BLOCK}.mlp.down_proj.weight"),
        bd=_ST_KV_PLACEHOLDER,
        e=_loud("KeyError", f"{_ST_BLOCK}.self_attn.qkv_proj.weight"),
        g=_loud("KeyError", f"{_HEAD}.input_global_scale"),
    ),
    ("step3p5", "compressed-tensors", "fp8"): _row(
        abcdef=_ST_KV_PLACEHOLDER, g=_loud("KeyError", f"{_HEAD}.input_scale")
    ),
    ("step3p5", "fp8", "fp8_block"): _row(
        abcf=_loud("RuntimeError", f"{_ST_BLOCK}.mlp.gate_up_proj.weight_scale_inv"),
        e=_loud("RuntimeError", f"{_ST_BLOCK}.self_attn.o_proj.weight_scale_inv"),
    ),
    ("step3p5", "quark", "mxfp4"): _row(
        acf=_loud("AssertionError", f"{_ST_BLOCK}.mlp.gate_up_proj.weight"),
        e=_loud("AssertionError", f"{_ST_BLOCK}.self_attn.qkv_proj.weight"),
    ),
    ("qwen3_next", "compressed-tensors", "nvfp4"): _row(a=_loud("ValueError", "fc.weight")),
    ("qwen3_next", "compressed-tensors", "fp8"): _row(a=_QWEN_MTP_SILENT),
    ("qwen3_next", "fp8", "fp8_block"): _row(ab=_QWEN_MTP_SILENT),
    ("qwen3_next", "quark", "mxfp4"): _row(a=_loud("AssertionError", "fc.weight")),
    ("deepseek_v3", "compressed-tensors", "nvfp4"): _row(
        a=_loud("KeyError", _DS_ROUTED_W2), g=_loud("KeyError", f"{_HEAD}.input_global_scale")
    ),
    ("deepseek_v3", "compressed-tensors", "fp8"): _row(
        a=_DS_MTP_SILENT, g=_loud("KeyError", f"{_HEAD}.input_scale")
    ),
    ("deepseek_v3", "fp8", "fp8_block"): _row(ab=_DS_MTP_SILENT),
    ("deepseek_v3", "quark", "mxfp4"): _row(a=_loud("RuntimeError", _DS_ROUTED_W2)),
}
STOCK_OUTCOMES_MORE: dict[Case, Expected] = {
    (*group, layout): expected for group, row in _GROUPS.items() for layout, expected in row.items()
    if (*group, layout) in CASES
}

assert len(FAMILY_CASES) == 98 and len(DSV32_CASES) == 8 and len(FORMAT_CASES) == 84
assert sorted(STOCK_OUTCOMES_MORE) == sorted(CASES)
