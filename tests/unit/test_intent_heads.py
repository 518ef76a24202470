"""LM heads: which producers quantize them unless told otherwise."""

from __future__ import annotations

import pytest

from vllm_draft_quant.core.intent import intent_from_configs
from vllm_draft_quant.core.schemes import ModuleKind, Scheme


def test_deepseek_native_fp8_keeps_heads_unquantized_without_an_ignore_list() -> None:
    qc = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
          "weight_block_size": [128, 128]}
    intent = intent_from_configs(None, qc)
    assert intent is not None and intent.scheme is Scheme.FP8_BLOCK
    head = intent.decide(["model.layers.61.shared_head.head"], "model.layers.61.head",
                         ModuleKind.LM_HEAD)
    assert head.scheme is Scheme.UNQUANTIZED
    proj = intent.decide(["model.layers.61.self_attn.o_proj"], "model.layers.61.self_attn.o_proj",
                         ModuleKind.LINEAR)
    assert proj.scheme is Scheme.FP8_BLOCK


@pytest.mark.parametrize("algo,scheme", [("NVFP4", Scheme.NVFP4), ("FP8", Scheme.FP8)])
def test_modelopt_quantizes_heads_unless_excluded(algo: str, scheme: Scheme) -> None:
    intent = intent_from_configs({"quantization": {"quant_algo": algo, "exclude_modules": []}}, None)
    assert intent is not None
    got = intent.decide(["model.layers.2.shared_head.output"], "model.layers.2.shared_head.head",
                        ModuleKind.LM_HEAD)
    assert got.scheme is scheme
