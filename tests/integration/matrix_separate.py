"""Draft weights from their own checkpoint (issue 9): the cases and their stock outcomes.

Every case is a target folder plus the ``speculative_config`` vLLM gets, built through
vLLM's own draft path (``harness.BuildRequest(target, engine_args={"speculative_config":
...})``):

- MTP (Step-3.5, Qwen3-Next, DeepSeek-V3; ModelOpt NVFP4 and FP8), ``{"method": "mtp",
  "model": <draft folder>}``:

  - ``target-dropped+bf16-draft``: a quantized export without MTP weights; the MTP layers
    come from the BF16 original (the same model written unquantized, another seed so its
    values differ from anything in the target folder);
  - ``target-b+bf16-draft``: the target has its own BF16 MTP layers, excluded by a
    wildcard; the user still points at the BF16 original;
  - ``bf16-target+draft-{g,d,a}``: the reverse, a BF16 target and a quantized export as
    the draft checkpoint (layouts of ``factory.LAYOUTS``: g all quantized, d head BF16
    excluded, a BF16 MTP grafted into the export);
  - ``same-folder-a``: ``model`` names the target's own folder (layout a): nothing
    may change compared with leaving ``model`` out.

- EAGLE3 (``Eagle3LlamaForCausalLM`` via the reference ``LlamaForCausalLMEagle3``
  export), ``{"method": "eagle3", "model": <draft folder>}``, next to a tiny Llama target:
  BF16; FP8/NVFP4 with attention, MLP and ``fc`` quantized (``all``), its quant config in
  ``hf_quant_config.json`` + ``config.json``, ``config.json`` only, or nowhere; attention
  only quantized (``attn-only``, the BF16 rest excluded by checkpoint name); everything
  including ``lm_head`` quantized next to a target quantized the same way; and a BF16
  draft next to an NVFP4 target (the target's config must not reach the draft).

Stock outcomes (``STOCK``), measured on vllm 0.33.0, CPU platform, test shims, target
loaded first as the V1 runner does:

- ``ok``: loads, every draft module is built in its stored precision and holds the
  checkpoint's bytes, no scale kept vLLM's -3.4e38;
- ``loud``: raises ``error_type`` whose text contains ``match``;
- ``silent``: loads, but the modules in ``wrong`` are built in another precision than
  their tensors are stored in (BF16 data cast into FP8 parameters, or FP8 data cast into
  BF16 parameters with its scales dropped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.eagle3 import (
    Eagle3Spec,
    LlamaTargetSpec,
    WrittenModel,
    write_eagle3_draft,
    write_llama_target,
)

Outcome = Literal["ok", "loud", "silent"]
MTP_FAMILIES = ("step3p5", "qwen3_next", "deepseek_v3")
SCHEMES = ("nvfp4", "fp8")
Written = WrittenCheckpoint | WrittenModel


@dataclass(frozen=True)
class Stock:
    outcome: Outcome
    error_type: str | None = None
    match: str | None = None
    wrong: tuple[str, ...] = ()  # runtime prefixes built in another precision than stored


@dataclass(frozen=True)
class Case:
    key: str
    method: Literal["mtp", "eagle3"]
    target: CheckpointSpec | LlamaTargetSpec
    draft: CheckpointSpec | Eagle3Spec | None  # None: ``model`` names the target's folder


def _mtp_cases() -> list[Case]:
    out: list[Case] = []
    for fam in MTP_FAMILIES:
        for s in SCHEMES:
            f, sc = cast(Any, fam), cast(Any, s)
            bf16_draft = CheckpointSpec(f, sc, quantized=False, seed=1)
            bf16_target = CheckpointSpec(f, sc, quantized=False)
            p = f"{fam}-{s}"
            out += [
                Case(
                    f"{p}-target-dropped+bf16-draft",
                    "mtp",
                    CheckpointSpec(f, sc, with_mtp=False),
                    bf16_draft,
                ),
                Case(
                    f"{p}-target-b+bf16-draft", "mtp", CheckpointSpec(f, sc, layout="b"), bf16_draft
                ),
                *(
                    Case(
                        f"{p}-bf16-target+draft-{lay}",
                        "mtp",
                        bf16_target,
                        CheckpointSpec(f, sc, layout=lay, seed=1),
                    )
                    for lay in "gda"
                ),
                Case(f"{p}-same-folder-a", "mtp", CheckpointSpec(f, sc, layout="a"), None),
            ]
    return out


def _eagle_cases() -> list[Case]:
    bf16 = LlamaTargetSpec("bf16")
    out = [
        Case("eagle3-bf16", "eagle3", bf16, Eagle3Spec()),
        Case("eagle3-bf16-draft+nvfp4-target", "eagle3", LlamaTargetSpec("nvfp4"), Eagle3Spec()),
    ]
    for s in SCHEMES:
        q = cast(Any, s)
        for qc in ("hf_quant_config", "config_json", "none"):
            out.append(
                Case(
                    f"eagle3-{s}-all-{qc}",
                    "eagle3",
                    bf16,
                    Eagle3Spec(q, q, q, "bf16", cast(Any, qc)),
                )
            )
        for qc in ("hf_quant_config", "none"):
            out.append(
                Case(
                    f"eagle3-{s}-attn-only-{qc}",
                    "eagle3",
                    bf16,
                    Eagle3Spec(attn=q, quant_config=cast(Any, qc)),
                )
            )
        out.append(
            Case(
                f"eagle3-{s}-all+head-{s}-target",
                "eagle3",
                LlamaTargetSpec(q),
                Eagle3Spec(q, q, q, q),
            )
        )
    return out


def _eagle3_qwen3_cases() -> list[Case]:
    """Issue 13: EAGLE3 drafts for Qwen3 (``Eagle3Qwen3ForCausalLM``), the Llama cases'
    main layouts."""
    bf16 = LlamaTargetSpec("bf16", family="qwen3")
    out = [Case("eagle3qwen3-bf16", "eagle3", bf16, Eagle3Spec(family="qwen3"))]
    for s in SCHEMES:
        q = cast(Any, s)
        out += [
            Case(f"eagle3qwen3-{s}-all-hf_quant_config", "eagle3", bf16,
                 Eagle3Spec(q, q, q, "bf16", family="qwen3")),
            Case(f"eagle3qwen3-{s}-all-none", "eagle3", bf16,
                 Eagle3Spec(q, q, q, "bf16", "none", family="qwen3")),
            Case(f"eagle3qwen3-{s}-attn-only-hf_quant_config", "eagle3", bf16,
                 Eagle3Spec(attn=q, family="qwen3")),
        ]
    return out


CASES: dict[str, Case] = {
    c.key: c for c in (*_mtp_cases(), *_eagle_cases(), *_eagle3_qwen3_cases())
}


def write_case(case: Case, root: Path) -> tuple[Written, Written, dict[str, Any]]:
    """(target, draft, speculative_config) of ``case``, written under ``root / case.key``."""
    base = root / case.key
    target: Written
    if isinstance(case.target, LlamaTargetSpec):
        target = write_llama_target(base / "target", case.target)
    else:
        target = write_checkpoint(base / "target", case.target)
    draft: Written
    if case.draft is None:
        draft = target
    elif isinstance(case.draft, Eagle3Spec):
        draft = write_eagle3_draft(base / "draft", case.draft)
    else:
        draft = write_checkpoint(base / "draft", case.draft)
    spec = {"method": case.method, "model": str(draft.path), "num_speculative_tokens": 1}
    return target, draft, spec


def _loud(error_type: str, match: str) -> Stock:
    return Stock("loud", error_type, match)


def _silent(*wrong: str) -> Stock:
    return Stock("silent", wrong=tuple(sorted(wrong)))


OK = Stock("ok")

_DS_EXPERTS_SIZE = _loud(
    "RuntimeError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_weight"
)
_DS_NO_W2_SCALE = _loud(
    "KeyError", "model.layers.2.mtp_block.mlp.experts.routed_experts.w2_input_scale"
)
_DS_SILENT = _silent(
    "model.layers.2.head",
    "model.layers.2.mlp.experts",
    "model.layers.2.mlp.shared_experts.down_proj",
    "model.layers.2.mlp.shared_experts.gate_up_proj",
    "model.layers.2.self_attn.fused_qkv_a_proj",
    "model.layers.2.self_attn.kv_b_proj",
    "model.layers.2.self_attn.o_proj",
    "model.layers.2.self_attn.q_b_proj",
)
_QN_EXPERTS_SIZE = _loud("RuntimeError", "mtp.layers.0.mlp.experts.w2_weight")
_QN_NO_W2_SCALE = _loud("AttributeError", "has no parameter 'w2_input_scale'")
_QN_FC_SCALE = _loud("ValueError", "no module or parameter named 'fc.input_scale'")
_QN_SILENT = _silent(
    "mtp.fc",
    "mtp.layers.0.mlp.experts",
    "mtp.layers.0.mlp.shared_expert.down_proj",
    "mtp.layers.0.mlp.shared_expert.gate_up_proj",
    "mtp.layers.0.self_attn.o_proj",
    "mtp.layers.0.self_attn.qkv_proj",
)
_ST_MISSING = "are not in the checkpoint and will falsely use random initialization"
_EA_FC_SCALE = _loud("ValueError", "no module or parameter named 'fc.input_scale'")
_EA_QKV_DATA = _loud("AttributeError", "'QKVParallelLinear' object has no attribute 'data'")

#: Measured (see the module docstring); one entry per case. Why, in short:
#: - Qwen3-Next and DeepSeek drafters are built with the *target's* quant config
#:   (``vllm_config.quant_config``) whatever folder ``model`` names: a BF16 original next
#:   to an NVFP4 target fails on the experts, next to an FP8 target it loads silently
#:   wrong, unless the target's own exclusions happen to cover the MTP names (layout b);
#:   a quantized draft next to a BF16 target is built unquantized (fails unless its MTP
#:   layers are BF16 after all: layout a).
#: - Step-3.5 and EAGLE3 drafters parse the draft folder's own config
#:   (``get_draft_quant_config``): a BF16 original loads; a quantized draft fails or
#:   loads wrong exactly as far as its own exclusion list misses vLLM's runtime names,
#:   and a draft whose quantization is declared nowhere fails.
STOCK: dict[str, Stock] = {
    "step3p5-nvfp4-target-dropped+bf16-draft": OK,
    "step3p5-nvfp4-target-b+bf16-draft": OK,
    "step3p5-nvfp4-bf16-target+draft-g": OK,
    "step3p5-nvfp4-bf16-target+draft-d": _loud("RuntimeError", "model.layers.2.shared_head.head"),
    "step3p5-nvfp4-bf16-target+draft-a": _loud(
        "AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj"
    ),
    "step3p5-nvfp4-same-folder-a": _loud(
        "AssertionError", "model.layers.2.mtp_block.mlp.gate_up_proj"
    ),
    "step3p5-fp8-target-dropped+bf16-draft": OK,
    "step3p5-fp8-target-b+bf16-draft": OK,
    "step3p5-fp8-bf16-target+draft-g": OK,
    "step3p5-fp8-bf16-target+draft-d": _loud("RuntimeError", _ST_MISSING),
    "step3p5-fp8-bf16-target+draft-a": _loud("RuntimeError", _ST_MISSING),
    "step3p5-fp8-same-folder-a": _loud("RuntimeError", _ST_MISSING),
    "qwen3_next-nvfp4-target-dropped+bf16-draft": _QN_EXPERTS_SIZE,
    "qwen3_next-nvfp4-target-b+bf16-draft": OK,
    "qwen3_next-nvfp4-bf16-target+draft-g": _QN_FC_SCALE,
    "qwen3_next-nvfp4-bf16-target+draft-d": _QN_NO_W2_SCALE,
    "qwen3_next-nvfp4-bf16-target+draft-a": OK,
    "qwen3_next-nvfp4-same-folder-a": _QN_EXPERTS_SIZE,
    "qwen3_next-fp8-target-dropped+bf16-draft": _QN_SILENT,
    "qwen3_next-fp8-target-b+bf16-draft": OK,
    "qwen3_next-fp8-bf16-target+draft-g": _QN_FC_SCALE,
    "qwen3_next-fp8-bf16-target+draft-d": _QN_NO_W2_SCALE,
    "qwen3_next-fp8-bf16-target+draft-a": OK,
    "qwen3_next-fp8-same-folder-a": _QN_SILENT,
    "deepseek_v3-nvfp4-target-dropped+bf16-draft": _DS_EXPERTS_SIZE,
    "deepseek_v3-nvfp4-target-b+bf16-draft": OK,
    "deepseek_v3-nvfp4-bf16-target+draft-g": _DS_NO_W2_SCALE,
    "deepseek_v3-nvfp4-bf16-target+draft-d": _DS_NO_W2_SCALE,
    "deepseek_v3-nvfp4-bf16-target+draft-a": OK,
    "deepseek_v3-nvfp4-same-folder-a": _DS_EXPERTS_SIZE,
    "deepseek_v3-fp8-target-dropped+bf16-draft": _DS_SILENT,
    "deepseek_v3-fp8-target-b+bf16-draft": OK,
    "deepseek_v3-fp8-bf16-target+draft-g": _DS_NO_W2_SCALE,
    "deepseek_v3-fp8-bf16-target+draft-d": _DS_NO_W2_SCALE,
    "deepseek_v3-fp8-bf16-target+draft-a": OK,
    "deepseek_v3-fp8-same-folder-a": _DS_SILENT,
    "eagle3qwen3-bf16": OK,
    "eagle3qwen3-fp8-all-hf_quant_config": OK,
    "eagle3qwen3-fp8-all-none": _EA_FC_SCALE,
    "eagle3qwen3-fp8-attn-only-hf_quant_config": _silent(
        "model.layers.2.mlp.down_proj", "model.layers.2.mlp.gate_up_proj"
    ),
    "eagle3qwen3-nvfp4-all-hf_quant_config": OK,
    "eagle3qwen3-nvfp4-all-none": _EA_FC_SCALE,
    "eagle3qwen3-nvfp4-attn-only-hf_quant_config": _loud(
        "AssertionError", "layers.0.mlp.gate_up_proj"
    ),
    "eagle3-bf16": OK,
    "eagle3-bf16-draft+nvfp4-target": OK,
    "eagle3-fp8-all-hf_quant_config": OK,
    "eagle3-fp8-all-config_json": OK,
    "eagle3-fp8-all-none": _EA_FC_SCALE,
    "eagle3-fp8-attn-only-hf_quant_config": _silent(
        "model.layers.2.mlp.down_proj", "model.layers.2.mlp.gate_up_proj"
    ),
    "eagle3-fp8-attn-only-none": _EA_QKV_DATA,
    "eagle3-fp8-all+head-fp8-target": OK,
    "eagle3-nvfp4-all-hf_quant_config": OK,
    "eagle3-nvfp4-all-config_json": OK,
    "eagle3-nvfp4-all-none": _EA_FC_SCALE,
    "eagle3-nvfp4-attn-only-hf_quant_config": _loud("AssertionError", "layers.0.mlp.gate_up_proj"),
    "eagle3-nvfp4-attn-only-none": _EA_QKV_DATA,
    "eagle3-nvfp4-all+head-nvfp4-target": OK,
}
assert set(STOCK) == set(CASES), sorted(set(STOCK) ^ set(CASES))
