"""The CPU limits README's coverage table states as measured, held to their errors.

``vllm_draft_quant/adapter/coverage.py:MEASURED_LIMITS`` says why some MTP drafter classes
cannot be built on vLLM's CPU platform. Each reason came from building a tiny target whose
config makes vLLM resolve that drafter (``speculative_config`` mtp, or dspark on the V2
model runner for a DSpark drafter: `DSPARK_LIMITS`; the drafter alone,
stock vLLM: ``VLLM_DRAFT_QUANT=off``); this module builds the same folders again (a
``config.json`` and the embedding: each build stops before any weight is read) and checks
that vLLM still stops where the table says. When a vLLM release lifts a limit its case
fails here: build the class (a ``learned_cases.py`` row) and drop its ``MEASURED_LIMITS``
entry.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]

H, V, N = 128, 256, 2  # hidden size, vocabulary, target layers


def _text(**extra: Any) -> dict[str, Any]:
    return {"hidden_size": H, "intermediate_size": 256, "num_hidden_layers": N,
            "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
            "vocab_size": V, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
            "tie_word_embeddings": False, "torch_dtype": "bfloat16", **extra}


#: drafter class -> (the target's config.json, extra EngineArgs, (error type or None,
#: texts in the error or its traceback's last frames))
LIMITS: dict[str, tuple[dict[str, Any], dict[str, Any] | None, tuple[str | None, ...]]] = {
    # Kimi-K3 (vLLM's kimi_k3 config; text keys a KimiLinearConfig): latent attention for
    # the MTP layer, KDA for target layer 1 (a hybrid: Mamba block size = max_model_len)
    "KimiK3MTP": (
        {"architectures": ["KimiK3ForConditionalGeneration"], "model_type": "kimi_k3",
         "text_config": _text(
             model_type="kimi_linear", num_key_value_heads=4, q_lora_rank=64,
             kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=0, v_head_dim=32,
             mla_use_nope=True, num_nextn_predict_layers=1,
             linear_attn_config={"kda_layers": [1], "full_attn_layers": [2, 3],
                                 "head_dim": 32, "num_heads": 4,
                                 "short_conv_kernel_size": 4})},
        {"mamba_block_size": 256},
        (None, "kimi_k3/nvidia/mtp.py", "aux_stream = torch.cuda.Stream()")),
    # MiniMax-M3 (VL wrapper; text keys MiniMaxM3TextConfig): its real swigluoai activation
    "MiniMaxM3MTP": (
        {"architectures": ["MiniMaxM3SparseForConditionalGeneration"],
         "model_type": "minimax_m3_vl",
         "text_config": _text(
             hidden_act="swigluoai", num_local_experts=4, num_experts_per_tok=2,
             dense_intermediate_size=256, shared_intermediate_size=128, rotary_dim=16,
             moe_layer_freq=[0] * N, num_mtp_modules=1,
             sparse_attention_config={
                 "use_sparse_attention": True, "sparse_index_dim": 32,
                 "sparse_num_index_heads": 2, "sparse_topk_blocks": 4,
                 "sparse_block_size": 16, "sparse_disable_index_value": [0] * N,
                 "sparse_score_type": "max", "sparse_init_block": 0,
                 "sparse_local_block": 1, "sparse_attention_freq": [0] * N})},
        None,
        ("NotImplementedError", "No Unquantized MoE backend supports the deployment "
                                "configuration. [while loading model.layers.0.block_sparse_moe",
         "fused_moe/oracle/unquantized.py")),
    "Step5MTP": (
        {"architectures": ["Step5ForCausalLM"], "model_type": "step5",
         **_text(num_attention_groups=2, num_nextn_predict_layers=1, max_seq_len=4096,
                 layer_types=["full_attention"] * (N + 1))},
        None,
        ("ValidationError", "Model Runner V1 does not support: Step5")),
    # Nemotron Parse 3.5 (remote-code config: a RADIO encoder and an mBART decoder whose
    # causal_vision_prefix selects the auxiliary MTP drafter)
    "ParseAuxMTPModel": (
        {"architectures": ["RadioMBartPrefixForCausalLM"], "model_type": "nemotron_parse_tiny",
         "auto_map": {"AutoConfig": "configuration_parse.ParseConfig"},
         "encoder": {"patch_size": 16, "hidden_size": 64}, "image_size": [64, 64],
         "decoder": {"causal_vision_prefix": True, "add_cross_attention": False,
                     "vocab_size": V, "d_model": H, "decoder_layers": 1,
                     "decoder_attention_heads": 4, "decoder_ffn_dim": 256,
                     "max_position_embeddings": 512},
         "torch_dtype": "bfloat16"},
        {"trust_remote_code": True},
        ("ValidationError", "Model Runner V1 does not support: Parse 3.5 MTP")),
}

#: the remote code of the Parse config (its repositories ship their own)
PARSE_CONFIG = """\
from transformers import MBartConfig, PretrainedConfig


class ParseConfig(PretrainedConfig):
    model_type = "nemotron_parse_tiny"

    def __init__(self, encoder=None, decoder=None, **kwargs):
        self.encoder = PretrainedConfig(**(encoder or {}))
        self.decoder = MBartConfig(**(decoder or {}))
        super().__init__(**kwargs)
"""


def _folder(root: Path, config: dict[str, Any]) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config))
    if "auto_map" in config:
        (root / "configuration_parse.py").write_text(PARSE_CONFIG)
    save_file({"model.embed_tokens.weight": np.zeros((V, H), np.float32)},
              str(root / "model.safetensors"))
    return root


#: separate-draft classes: drafter class -> (``support.eagle3`` family, error type, texts);
#: the draft is BF16 and declares nothing (layout g), so nothing but vLLM's own load runs
PAIR_LIMITS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    # stops in vLLM's own load, plugin on or off (EagleMistralLarge3Model never sets the
    # attribute deepseek_v2.py:DeepseekV2Model.load_weights reads)
    "EagleMistralLarge3ForCausalLM": (
        "mistral_large3", "AttributeError", ("is_fused_shared_expert_enabled",)),
}


# ---- issue issue13l: DSparkDeepseekV4ForCausalLM ----
#: DSpark drafters (method ``dspark``; vLLM runs DSpark only on its V2 model runner):
#: drafter class -> (the target's config.json, (error type, texts)). DeepSeek-V4.1 ships
#: its DSpark stages in the target checkpoint: the folder is its own draft
#: (``config/speculative.py``: a ``deepseek_v41`` target's draft becomes
#: ``DSparkV41DraftModel``). With ``compute_fp8_einsum_recipe`` standing in, the same
#: folder's drafter constructs and stops only for want of its tensors (measured by hand:
#: the table says so; no such stand-in is in the shim ledger yet)
DSPARK_LIMITS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "DSparkDeepseekV4ForCausalLM": (
        {"architectures": ["DeepseekV41ForCausalLM"], "model_type": "deepseek_v41",
         "text_config": _text(
             q_lora_rank=64, o_lora_rank=64, o_groups=2, qk_rope_head_dim=16,
             n_routed_experts=4, n_shared_experts=1, num_experts_per_tok=2,
             moe_intermediate_size=64, hc_mult=2, hc_sinkhorn_iters=2, hc_eps=1e-6,
             index_topk=16, index_n_heads=2, index_head_dim=32, compress_ratios=[0] * 3,
             sliding_window=64, num_nextn_predict_layers=1, dspark_target_layer_ids=[0, 1],
             dspark_markov_rank=32, scoring_func="sqrtsoftplus", num_hash_layers=0,
             routed_scaling_factor=1.0, norm_topk_prob=True, topk_method="noaux_tc",
             swiglu_limit=10.0, compress_rope_theta=10000.0, rope_theta=10000.0,
             hidden_act="silu", n_group=1, topk_group=1, first_k_dense_replace=0)},
        ("AssertionError", "DeepseekV4 attention requires a CUDA device",
         "deepseek_v4/nvidia/ops/o_proj.py", "compute_fp8_einsum_recipe")),
}


def start_limited(session: pytest.Session, root: Path) -> Callable[[], dict[str, DraftResult]]:
    from support.eagle3 import EagleSpec, write_eagle_pair

    reqs = [BuildRequest(_folder(root / cls, config), mode="draft", dump=False,
                         engine_args=extra) for cls, (config, extra, _) in LIMITS.items()]
    for cls, (family, _, _) in PAIR_LIMITS.items():
        target, _, spec = write_eagle_pair(root / cls, EagleSpec(family, "nvfp4", "g"))  # type: ignore[arg-type]
        reqs.append(BuildRequest(target.path, dump=False,
                                 engine_args={"speculative_config": spec}))
    results = submit_many(reqs, plugin=True, workdir=root / "off",
                          env={"VLLM_DRAFT_QUANT": "off"})
    dspark = [BuildRequest(folder, mode="draft", dump=False, engine_args={
        "speculative_config": {"method": "dspark", "model": str(folder),
                               "num_speculative_tokens": 2}})
        for folder in (_folder(root / cls, config) for cls, (config, _) in DSPARK_LIMITS.items())]
    v2 = submit_many(dspark, plugin=True, workdir=root / "off-v2",
                     env={"VLLM_DRAFT_QUANT": "off", "VLLM_USE_V2_MODEL_RUNNER": "1"})
    return lambda: dict(zip([*LIMITS, *PAIR_LIMITS, *DSPARK_LIMITS], [*results(), *v2()],
                            strict=True))


limited = early_fixture(start_limited)


@pytest.mark.parametrize("cls", [*LIMITS, *PAIR_LIMITS, *DSPARK_LIMITS])
def test_stock_vllm_stops_where_the_table_says(cls: str,
                                               limited: dict[str, DraftResult]) -> None:
    r = limited[cls]
    if cls in LIMITS:
        error_type, *texts = LIMITS[cls][2]
    elif cls in DSPARK_LIMITS:
        error_type, *texts = DSPARK_LIMITS[cls][1]
    else:
        error_type, texts = PAIR_LIMITS[cls][1], list(PAIR_LIMITS[cls][2])
    assert not r.ok, f"{cls} now builds on CPU: build it and drop its MEASURED_LIMITS entry"
    if error_type is not None:
        assert r.error_type == error_type, r.error_text
    seen = r.error_text + "".join(r.raw.get("traceback_tail") or [])
    for text in texts:
        assert text and text in seen, (text, seen[-1500:])


def test_the_table_states_exactly_these_limits() -> None:
    from vllm_draft_quant.adapter.coverage import MEASURED_LIMITS

    assert set(MEASURED_LIMITS) == set(LIMITS) | set(PAIR_LIMITS) | set(DSPARK_LIMITS)
