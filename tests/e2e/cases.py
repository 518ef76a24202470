"""The end-to-end cases: checkpoints, engine runs, and how to read their results.

Shared by the e2e tier (``tests/e2e/test_generate.py``) and ``benchmarks/bench_e2e.py``.
A *case* is one checkpoint of a family and layout; each case is generated greedily
with k = 1 and k = 2 draft tokens, with the plugin (``plugin``) and once with stock vLLM
(``stock``: ``VLLM_DRAFT_QUANT=off``; a load failure does not depend on k, so stock
runs k = 1 only). Its reference is the BF16 original of the same weights, generated
by stock vLLM with the same k.

``run(cases, workdir)`` writes every checkpoint, runs all engines in ONE process
(``engine_runner.py``: importing vLLM costs 10-30 s here) and returns the results.

Families: MiMo (MTP in the target's folder or from the BF16 original's), GLM-4.x MoE
(``Glm4MoeForCausalLM``) and DeepSeek-V3 (``DeepseekV3ForCausalLM``, MLA attention), each
with its NextN layer (``agreeing_nextn.py``: NVFP4 target with the NextN layer grafted in
BF16, and GLM's NextN layer itself NVFP4 (attention, routed and shared experts; its
routed experts on the NVFP4 experts stand-in F20) in the tier; in ``BENCH_ONLY`` GLM's FP8
export, DeepSeek's NVFP4 NextN layer, and for both an NVFP4 target without NextN layer
whose draft is the BF16 original's folder; their BF16 MoE layers run the CPU MoE
stand-ins F12/F13 of ``cpu_forward.py``, DeepSeek's MLA decode F14), and EAGLE3-Llama (a
Llama target with a separate EAGLE3 draft, ``agreeing_eagle3.py``; its reference is the
BF16 target with the BF16 draft), and Qwen3-Next / Qwen3.5 MoE (``Qwen3NextForCausalLM``,
``Qwen3_5MoeForCausalLM``: Gated-DeltaNet linear attention on the stand-ins F15-F19, MoE
on F12/F13; ``agreeing_gdn.py``: NVFP4 target with the MTP layer grafted in BF16; run with
prefix caching off, ``GDN_ARGS``); dense Qwen3.5 (``Qwen3_5ForCausalLM``, MTP drafter
``Qwen3_5MTP``, whose drafts go through the MTP layer's dense MLP: ``agreeing_gdn.py``
too; NVFP4 and FP8 targets in ``BENCH_ONLY``: the tier already has a Qwen3.5 case, and the
FP8 one's stock run shows the silently wrong load as acceptance 0); and Step-3.5
(``Step3p5ForCausalLM``, ``Step3p5MTP``: sliding-window attention with a 4-token window on
F6 beside full attention, a MoE layer on F12/F13 routed by F21, the MTP layer's own head;
``agreeing_step3p5.py``: NVFP4 target with the MTP layer grafted in BF16 in the tier, FP8
in ``BENCH_ONLY``). What stops the rest on this CPU (vLLM 0.33.0 CUDA wheel; each is a
``torch.ops._C`` kernel the wheel lacks, Triton, or a refusal in vLLM's own CPU code):

- ModelOpt FP8 per-tensor routed experts, in every MoE family: no CPU backend. At
  construction ``fused_moe/oracle/fp8.py:select_fp8_moe_backend`` returns ``NONE``
  (``experts/cpu_moe.py:CPUExpertsFp8`` takes 128x128-block FP8 only and needs AMX tiles;
  the Triton experts need a GPU), and the post-load step
  ``quantization/modelopt.py:ModelOptFp8MoEMethod.process_weights_after_loading``
  (``_setup_kernel``) raises ``ValueError: Unsupported FP8 MoE backend: NONE``
  (``oracle/fp8.py:convert_to_fp8_moe_kernel_format``) at engine start, before any
  forward pass: measured on GLM's FP8 export with its NextN attention and experts FP8
  (layout d), plugin on and off alike, in the drafter's load. A
  stand-in would have to pick another experts class (a backend-selection shim) and stand
  in for ``fused_experts_cpu``/``convert_weight_packed``; not done. So FP8 exports keep
  every routed expert BF16 and no FP8 case quantizes MTP experts; the FP8 "silently wrong"
  stock case of GLM shows here as that load failure (stock gives the BF16 NextN experts
  the FP8 MoE method). NVFP4 experts run on F20 (the Triton kernel of
  ``experts/nvfp4_emulation_moe.py`` in plain PyTorch; without it ``apply`` stops at
  ``AttributeError: module 'triton.language' has no attribute 'bfloat16'``: vLLM finds no
  Triton driver here).
- GLM-5.x / DeepSeek-V3.2 (DSA: MLA plus the "lightning indexer" that picks each query's
  ``index_topk`` keys; on a CPU vLLM builds them as ``deepseek_v2.py``'s
  ``GlmMoeDsaForCausalLM`` / ``DeepseekV3ForCausalLM`` with ``DeepSeekMTP``, the indexer
  included). With ``index_topk`` >= the sequence length DSA attends to every key, so dense
  MLA (``cpu_shims.py`` shim 6) computes the same attention; but the model still runs its
  indexer, and that has no CPU path here. Measured on the agreeing NextN construction with
  GLM-5's tensors (``index_topk`` 64 > 24 positions) and shim 6, BF16, plugin on: the engine
  stops before the first step in ``v1/worker/utils.py:select_common_block_size``
  (``ValueError: No common block size for 16 (DEEPSEEK_V32_INDEXER: [64]; CPU_MLA: [16])``:
  the indexer's K cache takes 64-token blocks only, CPU MLA 16 only). With the indexer
  backend's block sizes widened (measurement only) the first prefill stops in the
  indexer's metadata builder, ``v1/attention/backends/mla/indexer.py:
  build_prefill_chunk_metadata``, a Triton kernel (``TypeError: Cannot inspect kernel
  parameters for function``, no Triton driver here). Past those, by reading
  ``layers/sparse_attn_indexer.py:SparseAttnIndexer.forward_cpu``: it calls
  ``fp8_paged_mqa_logits_cpu`` and ``topk_transform_512_cpu`` (not in the CUDA wheel),
  asserts ``index_topk == 512``, and its decode path is written for one query token per
  request (it asserts that, and refuses a padded speculative layout: "does not support
  speculative decoding (native MTP) yet"). A stand-in would have to
  replace vLLM's own block-size refusal, its metadata kernels, two ops and that Python
  refusal (or drop the indexer from the model, which is a different model): not a kernel
  stand-in, so no GLM-5 / DeepSeek-V3.2 generation case.
- Qwen3-Next/Qwen3.5's Gated-DeltaNet (``model_executor/layers/mamba/ops/cpu/
  gdn_attention.py``) runs on F15-F19 on CPUs without AVX-512-BF16/AMX (this machine:
  the prefill convolution is vLLM's own PyTorch); on CPUs with them vLLM packs the conv
  weight and calls ``causal_conv1d_weight_pack``/``causal_conv1d_fwd_cpu``/
  ``causal_conv1d_update_cpu`` instead, which have no stand-in. With prefix caching on,
  the hybrid state cache's "align" mode needs Triton block copies (``GDN_ARGS``).
- Step-3.5's MoE routing (sigmoid scores with ``router_bias``, no expert groups) is one
  vLLM's CPU router refuses (``router/cpu_router.py:CPURouter._compute_routing`` asserts
  softmax); on a GPU it is the CUDA kernel ``_moe_C.topk_sigmoid``. F21 computes it in
  PyTorch. Its MTP layers must be ``sliding_attention`` (FINDINGS.md: a
  ``full_attention`` MTP layer raises IndexError under transformers 5.20), as in
  Step-3.5-Flash; layouts with quantized MTP layers are not run (the tier's layout a is
  the graft of the reported bug).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PROMPTS = [[3, 17, 42, 99, 5, 77, 130, 8], [200, 11, 64]]
MAX_TOKENS = 16
KS = (1, 2)
RUN_TIMEOUT = float(os.environ.get("VDQ_E2E_TIMEOUT", 1500))


@dataclass(frozen=True)
class Case:
    """One quantized checkpoint (``key`` names it: family-format-layout)."""

    key: str
    family: str
    description: str
    writer: str  # a function of agreeing.py, or "module.function" of another writer here
    kwargs: dict[str, Any] = field(default_factory=dict)
    reference: str = "mimo-bf16"  # the key of its BF16 original
    engine_args: dict[str, Any] = field(default_factory=dict)
    fp8: bool = False
    tp: int = 1
    draft: str | None = None  # the key of a separate draft checkpoint (REFERENCES, DRAFTS)
    ks: tuple[int, ...] = KS
    stock: bool = True
    method: str = "mtp"  # speculative_config's method
    draft_quantized: bool = False  # the draft stores some modules quantized
    stock_error: str = "AssertionError"  # the error type stock vLLM stops with, if it fails


@dataclass(frozen=True)
class Draft:
    """A separate draft checkpoint (written like a case; never run on its own)."""

    key: str
    writer: str
    kwargs: dict[str, Any] = field(default_factory=dict)


MIMO_ARGS = {"trust_remote_code": True}
# prefix caching on puts a hybrid (Mamba/GDN) model's state cache in "align" mode, whose
# block copies are Triton kernels (``v1/worker/mamba_utils.py``:
# ``precopy_mamba_align_fused_kernel``, ``postprocess_mamba_fused_kernel``) that vLLM's CPU
# platform cannot launch ("'function' object is not subscriptable"); off, the state cache
# keeps one slot per draft position and needs none of them
GDN_ARGS = {"enable_prefix_caching": False}
# the NextN groups a quantized-MTP export of GLM / DeepSeek quantizes (agreeing_nextn.py)
MTP_QUANTIZED = ("attn", "experts", "shared")
REFERENCES = {
    "mimo-bf16": Case(
        "mimo-bf16", "MiMo", "BF16 original", "write_mimo", {"quant": None}, engine_args=MIMO_ARGS
    ),
    "llama-bf16": Case(
        "llama-bf16",
        "EAGLE3-Llama",
        "BF16 Llama target, BF16 EAGLE3 draft",
        "agreeing_eagle3.write_llama",
        {"quant": None},
        reference="llama-bf16",
        draft="eagle3-bf16",
        method="eagle3",
    ),
    "glm-bf16": Case(
        "glm-bf16",
        "GLM-4.x",
        "BF16 original (Glm4MoeForCausalLM, NextN MTP)",
        "agreeing_nextn.write_glm4_moe",
        {"quant": None},
        reference="glm-bf16",
    ),
    "deepseek-bf16": Case(
        "deepseek-bf16",
        "DeepSeek-V3",
        "BF16 original (DeepseekV3ForCausalLM, MLA, NextN MTP)",
        "agreeing_nextn.write_deepseek_v3",
        {"quant": None},
        reference="deepseek-bf16",
    ),
    "qwen3next-bf16": Case(
        "qwen3next-bf16",
        "Qwen3-Next",
        "BF16 original (Qwen3NextForCausalLM, Gated-DeltaNet + gated attention, MoE, MTP)",
        "agreeing_gdn.write_qwen3_next",
        {"quant": None},
        reference="qwen3next-bf16",
        engine_args=GDN_ARGS,
    ),
    "qwen35moe-bf16": Case(
        "qwen35moe-bf16",
        "Qwen3.5",
        "BF16 original (Qwen3_5MoeForCausalLM, Gated-DeltaNet + gated attention, MoE, MTP)",
        "agreeing_gdn.write_qwen3_5_moe",
        {"quant": None},
        reference="qwen35moe-bf16",
        engine_args=GDN_ARGS,
    ),
    "qwen35-bf16": Case(
        "qwen35-bf16",
        "Qwen3.5",
        "BF16 original (Qwen3_5ForCausalLM, Gated-DeltaNet + gated attention, dense MLP, MTP)",
        "agreeing_gdn.write_qwen3_5",
        {"quant": None},
        reference="qwen35-bf16",
        engine_args=GDN_ARGS,
    ),
    "step3p5-bf16": Case(
        "step3p5-bf16",
        "Step-3.5",
        "BF16 original (Step3p5ForCausalLM, sliding-window + full attention, MoE, MTP)",
        "agreeing_step3p5.write_step3p5",
        {"quant": None},
        reference="step3p5-bf16",
    ),
}
DRAFTS = {
    d.key: d
    for d in (
        Draft("eagle3-bf16", "agreeing_eagle3.write_eagle3_draft", {"quant": None}),
        Draft("eagle3-nvfp4-attn", "agreeing_eagle3.write_eagle3_draft", {"quant": "nvfp4"}),
        Draft("eagle3-fp8-attn", "agreeing_eagle3.write_eagle3_draft", {"quant": "fp8"}),
    )
}
CASES = [
    Case(
        "mimo-nvfp4-bf16mtp",
        "MiMo",
        "ModelOpt NVFP4 target, MTP grafted in BF16 (layout a)",
        "write_mimo",
        {"quant": "nvfp4"},
        engine_args=MIMO_ARGS,
    ),
    Case(
        "mimo-nvfp4-mlpq",
        "MiMo",
        "ModelOpt NVFP4, MTP MLP NVFP4, MTP attention BF16 excluded by name (layout e)",
        "write_mimo",
        {"quant": "nvfp4", "mtp_quantized": ("mlp",)},
        engine_args=MIMO_ARGS,
        draft_quantized=True,
    ),
    Case(
        "mimo-fp8-bf16mtp",
        "MiMo",
        "ModelOpt FP8 target, MTP grafted in BF16 (layout a)",
        "write_mimo",
        {"quant": "fp8"},
        engine_args=MIMO_ARGS,
        fp8=True,
    ),
    Case(
        "mimo-nvfp4-sep-bf16",
        "MiMo",
        "ModelOpt NVFP4 target without MTP; MTP from the BF16 original's folder",
        "write_mimo",
        {"quant": "nvfp4", "drop_mtp": True},
        engine_args=MIMO_ARGS,
        draft="mimo-bf16",
    ),
    Case(
        "mimo-nvfp4-bf16mtp-tp2",
        "MiMo",
        "layout a, tensor_parallel_size=2 (two CPU worker processes)",
        "write_mimo",
        {"quant": "nvfp4"},
        engine_args=MIMO_ARGS,
        tp=2,
        ks=(2,),
        stock=False,
    ),
    Case(
        "glm-nvfp4-bf16mtp",
        "GLM-4.x",
        "ModelOpt NVFP4 target (routed experts BF16, excluded by name), NextN layer grafted "
        "in BF16 (layout a)",
        "agreeing_nextn.write_glm4_moe",
        {"quant": "nvfp4"},
        reference="glm-bf16",
        stock_error="RuntimeError",  # the NVFP4 NextN head meets the BF16 tensor
    ),
    Case(
        "glm-nvfp4-mtpq",
        "GLM-4.x",
        "ModelOpt NVFP4 target (routed experts BF16, excluded by name); NextN attention, "
        "routed and shared experts NVFP4, NextN head BF16 excluded by exact name (layout d; "
        "the NextN experts run on F20)",
        "agreeing_nextn.write_glm4_moe",
        {"quant": "nvfp4", "mtp_quantized": MTP_QUANTIZED},
        reference="glm-bf16",
        draft_quantized=True,
        stock_error="RuntimeError",  # the NVFP4 NextN head (model.layers.2.head) meets BF16
    ),
    Case(
        "deepseek-nvfp4-bf16mtp",
        "DeepSeek-V3",
        "ModelOpt NVFP4 target (MLA; routed experts BF16, excluded by name), NextN layer "
        "grafted in BF16 (layout a)",
        "agreeing_nextn.write_deepseek_v3",
        {"quant": "nvfp4"},
        reference="deepseek-bf16",
        stock_error="RuntimeError",  # the NVFP4 NextN experts meet the BF16 tensors (_load_w2)
    ),
    Case(
        "qwen3next-nvfp4-bf16mtp",
        "Qwen3-Next",
        "ModelOpt NVFP4 target (routed experts and in_proj_ba BF16, excluded by name), MTP "
        "layer grafted in BF16 (layout a)",
        "agreeing_gdn.write_qwen3_next",
        {"quant": "nvfp4"},
        reference="qwen3next-bf16",
        engine_args=GDN_ARGS,
        stock_error="RuntimeError",  # the NVFP4 MTP experts meet the BF16 tensors (_load_w2)
    ),
    Case(
        "qwen35moe-nvfp4-bf16mtp",
        "Qwen3.5",
        "ModelOpt NVFP4 Qwen3.5 MoE target (routed experts, in_proj_b/in_proj_a BF16, "
        "excluded by name), MTP layer grafted in BF16 (layout a)",
        "agreeing_gdn.write_qwen3_5_moe",
        {"quant": "nvfp4"},
        reference="qwen35moe-bf16",
        engine_args=GDN_ARGS,
        stock_error="RuntimeError",
    ),
    Case(
        "step3p5-nvfp4-bf16mtp",
        "Step-3.5",
        "ModelOpt NVFP4 Step-3.5 target (MoE and shared expert BF16, excluded by name), MTP "
        "layer grafted in BF16 (layout a)",
        "agreeing_step3p5.write_step3p5",
        {"quant": "nvfp4"},
        reference="step3p5-bf16",
        # the draft's own quant config (get_draft_quant_config) makes the BF16 MTP
        # layer's qkv_proj NVFP4: parameter.py's shape assertion
    ),
    Case(
        "llama-fp8+eagle3-fp8-attn",
        "EAGLE3-Llama",
        "ModelOpt FP8 Llama target; EAGLE3 draft, attention FP8, MLP/fc/lm_head BF16 "
        "excluded by checkpoint name",
        "agreeing_eagle3.write_llama",
        {"quant": "fp8"},
        reference="llama-bf16",
        draft="eagle3-fp8-attn",
        method="eagle3",
        fp8=True,
        draft_quantized=True,
    ),
]
# run by benchmarks/bench_e2e.py only (the tier keeps one case per family and layout kind
# within its time budget): the EAGLE3 layout with NVFP4 (stock fails loudly), beside the
# tier's FP8 one (stock loads it silently wrong)
BENCH_ONLY = [
    Case(
        "qwen35-nvfp4-bf16mtp",
        "Qwen3.5",
        "ModelOpt NVFP4 dense Qwen3.5 target (in_proj_b/in_proj_a BF16, excluded by name), "
        "MTP layer grafted in BF16 (layout a)",
        "agreeing_gdn.write_qwen3_5",
        {"quant": "nvfp4"},
        reference="qwen35-bf16",
        engine_args=GDN_ARGS,
        stock_error="AssertionError",
    ),
    Case(
        "qwen35-fp8-bf16mtp",
        "Qwen3.5",
        "ModelOpt FP8 dense Qwen3.5 target (in_proj_b/in_proj_a BF16, excluded by name), "
        "MTP layer grafted in BF16 (layout a)",
        "agreeing_gdn.write_qwen3_5",
        {"quant": "fp8"},
        reference="qwen35-bf16",
        engine_args=GDN_ARGS,
        fp8=True,
    ),
    Case(
        "step3p5-fp8-bf16mtp",
        "Step-3.5",
        "ModelOpt FP8 Step-3.5 target (MoE and shared expert BF16, excluded by name), MTP "
        "layer grafted in BF16 (layout a)",
        "agreeing_step3p5.write_step3p5",
        {"quant": "fp8"},
        reference="step3p5-bf16",
        fp8=True,
        # the BF16 MTP layer gets FP8 parameters; its own completeness check finds their
        # scales missing ("Some parameters like ...input_scale are not in the checkpoint")
        stock_error="RuntimeError",
    ),
    Case(
        "llama-nvfp4+eagle3-nvfp4-attn",
        "EAGLE3-Llama",
        "ModelOpt NVFP4 Llama target; EAGLE3 draft, attention NVFP4, MLP/fc/lm_head BF16 "
        "excluded by checkpoint name",
        "agreeing_eagle3.write_llama",
        {"quant": "nvfp4"},
        reference="llama-bf16",
        draft="eagle3-nvfp4-attn",
        method="eagle3",
        draft_quantized=True,
    ),
    # stock stops at load: the BF16 NextN experts get ModelOpt's FP8 MoE method, for which
    # vLLM 0.33 has no CPU backend ("Unsupported FP8 MoE backend: NONE"); on a GPU stock
    # would load them as FP8 parameters holding BF16 data (FINDINGS.md)
    Case(
        "glm-fp8-bf16mtp",
        "GLM-4.x",
        "ModelOpt FP8 target (routed experts BF16, excluded by name), NextN layer grafted in "
        "BF16 (layout a)",
        "agreeing_nextn.write_glm4_moe",
        {"quant": "fp8"},
        reference="glm-bf16",
        fp8=True,
        stock_error="ValueError",
    ),
]
# quantized MTP for DeepSeek-V3, and a separate BF16 draft folder for GLM and DeepSeek:
# the tier keeps GLM's quantized-MTP case (one per family and layout kind within its time)
BENCH_ONLY += [
    Case(
        "deepseek-nvfp4-mtpq",
        "DeepSeek-V3",
        "ModelOpt NVFP4 target (MLA; routed experts BF16, excluded by name); NextN MLA, "
        "routed and shared experts NVFP4, NextN head BF16 excluded by exact name (layout d; "
        "the NextN experts run on F20)",
        "agreeing_nextn.write_deepseek_v3",
        {"quant": "nvfp4", "mtp_quantized": MTP_QUANTIZED},
        reference="deepseek-bf16",
        draft_quantized=True,
        stock_error="RuntimeError",
    ),
    Case(
        "glm-nvfp4-sep-bf16",
        "GLM-4.x",
        "ModelOpt NVFP4 target without its NextN layer; the NextN layer from the BF16 "
        "original's folder",
        "agreeing_nextn.write_glm4_moe",
        {"quant": "nvfp4", "drop_mtp": True},
        reference="glm-bf16",
        draft="glm-bf16",
        stock_error="RuntimeError",
    ),
    Case(
        "deepseek-nvfp4-sep-bf16",
        "DeepSeek-V3",
        "ModelOpt NVFP4 target without its NextN layer; the NextN layer from the BF16 "
        "original's folder",
        "agreeing_nextn.write_deepseek_v3",
        {"quant": "nvfp4", "drop_mtp": True},
        reference="deepseek-bf16",
        draft="deepseek-bf16",
        stock_error="RuntimeError",
    ),
]
# a control: the BF16 original with its MTP MLP zeroed. Its acceptance must collapse,
# or the construction would not tell a right draft load from a wrong one.
CONTROLS = [
    Case(
        "mimo-bf16-mtp-mlp-zeroed",
        "MiMo",
        "control: BF16, MTP MLP zeroed",
        "write_mimo",
        {"quant": None, "break_mtp_mlp": True},
        engine_args=MIMO_ARGS,
        ks=(1,),
        stock=False,
    ),
    # GLM's NextN layer carries its drafts through the routed experts (F12/F13 run them):
    # zeroed experts must be rejected
    Case(
        "glm-bf16-experts-zeroed",
        "GLM-4.x",
        "control: BF16, NextN routed experts zeroed",
        "agreeing_nextn.write_glm4_moe",
        {"quant": None, "break_experts": True},
        reference="glm-bf16",
        ks=(1,),
        stock=False,
    ),
    # Qwen3-Next's MTP layer carries its drafts through its routed experts too, after the
    # target's Gated-DeltaNet layer (F15-F19) has run: zeroed experts must be rejected
    Case(
        "qwen3next-bf16-experts-zeroed",
        "Qwen3-Next",
        "control: BF16, MTP routed experts zeroed",
        "agreeing_gdn.write_qwen3_next",
        {"quant": None, "break_experts": True},
        reference="qwen3next-bf16",
        engine_args=GDN_ARGS,
        ks=(1,),
        stock=False,
    ),
    # Step-3.5's MTP layer carries its drafts through its dense MLP, after the target's
    # sliding-window and MoE layers (F6, F12/F13, F21) have run: a zeroed MLP must be rejected
    Case(
        "step3p5-bf16-mtp-mlp-zeroed",
        "Step-3.5",
        "control: BF16 Step-3.5, MTP MLP zeroed",
        "agreeing_step3p5.write_step3p5",
        {"quant": None, "break_mlp": True},
        reference="step3p5-bf16",
        ks=(1,),
        stock=False,
    ),
]


def runs_of(case: Case, root: Path, *, reference: bool = False) -> list[dict[str, Any]]:
    model = str(root / case.key)
    draft = {"draft": str(root / case.draft)} if case.draft else {}
    base = {
        **draft,
        "method": case.method,
        "model": model,
        "prompts": PROMPTS,
        "max_tokens": MAX_TOKENS,
        "engine_args": {
            **case.engine_args,
            **({"tensor_parallel_size": case.tp} if case.tp > 1 else {}),
        },
    }
    out = []
    for k in case.ks:
        # the k=1 runs also save their drafter's module outputs (drafter equivalence)
        first = k == case.ks[0] and case.tp == 1
        probe = {"probe": str(root / f"{case.key}.probe.pt")} if first else {}
        # tensor-parallel runs: every rank reports its plan digests and its weight shards
        if case.tp > 1 and not reference:
            probe = {"rank_report": str(root / f"{case.key}.k{k}")}
        if reference:
            out.append({**base, "name": f"{case.key}/ref/k{k}", "k": k, "plugin": False, **probe})
            continue
        out.append({**base, "name": f"{case.key}/plugin/k{k}", "k": k, "plugin": True, **probe})
    if case.stock and not reference:
        out.append(
            {**base, "name": f"{case.key}/stock/k{case.ks[0]}", "k": case.ks[0], "plugin": False}
        )
    return out


STAND_IN_PLUGIN = "vdq_e2e_cpu_forward"


def write_stand_in_plugin(folder: Path) -> Path:
    """A test-only ``vllm.general_plugins`` entry point for the CPU stand-ins: a
    ``*.dist-info`` directory in ``folder``, which only the e2e processes' ``PYTHONPATH``
    lists (nothing is installed). vLLM loads it in every process it starts (engine
    core, tensor-parallel workers, ``vllm serve``'s API server)."""
    info = folder / f"{STAND_IN_PLUGIN}-0.0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {STAND_IN_PLUGIN}\nVersion: 0.0.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[vllm.general_plugins]\ncpu_forward = vllm_draft_quant.demo.cpu_forward:register\n"
    )
    return folder


def _writer(name: str) -> Any:
    sys.path.insert(0, str(HERE))
    module, _, function = name.rpartition(".")
    return getattr(importlib.import_module(module or "agreeing"), function)


def write(case: Case | Draft, root: Path) -> None:
    _writer(case.writer)(root / case.key, **case.kwargs)


def expected_tokens(reference: Case) -> list[list[int]]:
    """What greedy decoding of ``reference``'s target produces for ``PROMPTS``."""
    module = _writer(reference.writer).__module__
    walk = importlib.import_module(module).greedy_continuation
    return [walk(p, MAX_TOKENS) for p in PROMPTS]


def run(cases: list[Case], root: Path, *, log: Path | None = None) -> dict[str, dict[str, Any]]:
    """Write the checkpoints of ``cases`` and their references, run every engine in one
    process, return ``{run name: result}``."""
    refs = {c.reference for c in cases} - {c.key for c in cases}
    runs: list[dict[str, Any]] = []
    for key in sorted(refs):
        write(REFERENCES[key], root)
        runs += runs_of(REFERENCES[key], root, reference=True)
    drafts = {c.draft for c in [*cases, *(REFERENCES[k] for k in refs)] if c.draft}
    for key in sorted(drafts - refs):
        write(DRAFTS[key] if key in DRAFTS else REFERENCES[key], root)
    for c in cases:
        write(c, root)
        runs += runs_of(c, root)
    spec, results = root / "cases.json", root / "results.jsonl"
    spec.write_text(json.dumps(runs, indent=1))
    results.unlink(missing_ok=True)
    # tensor-parallel workers are processes of their own: the stand-ins reach them through
    # the test-only entry point (the engine process installs them itself as well)
    plugin = write_stand_in_plugin(root / "plugin_path")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            [str(REPO), str(REPO / "tests"), str(plugin), os.environ.get("PYTHONPATH", "")]
        ),
    }
    with open(log or root / "engine_runner.log", "w") as out:
        subprocess.run(
            [sys.executable, str(HERE / "engine_runner.py"), str(spec), str(results)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
            check=False,
        )
    got = {}
    if results.exists():
        for line in results.read_text().splitlines():
            r = json.loads(line)
            got[r["name"]] = r
    return got


def acceptance(r: dict[str, Any]) -> float:
    return r["accepted"] / r["draft_tokens"] if r.get("draft_tokens") else 0.0


@dataclass(frozen=True)
class Row:
    """One line of the closing table: case x {reference, stock, plugin}."""

    case: str
    k: int
    ref_accept: float
    stock: str  # "fails (<type>)" or the acceptance
    stock_accept: float | None
    stock_tokens_equal: bool | None
    plugin_accept: float
    plugin_tokens_equal: bool
    plugin_tok_s: float
    stock_tok_s: float | None


def rows(cases: list[Case], got: dict[str, dict[str, Any]]) -> list[Row]:
    out = []
    for c in cases:
        for k in c.ks:
            ref = got[f"{c.reference}/ref/k{k}"]
            plug = got.get(f"{c.key}/plugin/k{k}", {"ok": False})
            stock = got.get(f"{c.key}/stock/k{k}")
            stock_text, stock_acc, stock_eq, stock_tps = "-", None, None, None
            if stock is not None:
                if stock["ok"]:
                    stock_acc = acceptance(stock)
                    stock_eq = stock["tokens"] == ref["tokens"]
                    stock_text = f"{stock_acc:.2f}"
                    stock_tps = stock["output_tokens"] / stock["seconds"]
                else:
                    stock_text = f"fails ({stock['error_type']})"
            out.append(
                Row(
                    c.key,
                    k,
                    acceptance(ref),
                    stock_text,
                    stock_acc,
                    stock_eq,
                    acceptance(plug) if plug["ok"] else 0.0,
                    bool(plug["ok"]) and plug["tokens"] == ref["tokens"],
                    plug["output_tokens"] / plug["seconds"] if plug["ok"] else 0.0,
                    stock_tps,
                )
            )
    return out
