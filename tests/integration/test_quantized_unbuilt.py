"""A module vLLM builds unquantized, stored quantized: GLM-5-Next's MTP attention (issue 13).

vLLM's ``Glm5NextMTP`` (``glm5next/common/mtp.py``) builds every MLA projection of its
NextN layer with ``quant_config=None`` ("MLA projections are BF16 in checkpoint",
``glm5next/common/model.py:Glm5NextDecoderLayer``); its ``load_weights`` dequantizes
only DeepSeek block-FP8 attention weights itself (``model.py:_try_load_fp8_attn_proj``,
which also takes any ``*.weight_scale`` of ``q_a_proj``/``kv_a_proj_with_mqa``/
``q_b_proj``/``o_proj``). A ModelOpt checkpoint whose MTP attention is stored quantized
(family ``glm5_next_qattn``, layout g) is built through vLLM's own draft path on the CPU
platform, FP8 and NVFP4, plugin on and off: with the plugin it must load right or stop
with ONE plugin error naming the module and the reason, never vLLM's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many
from test_plain_dequant import _expected
from values import load_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

_HYBRID = {"mamba_block_size": 256}
_SCHEMES = ("fp8", "nvfp4")
_A = "model.language_model.layers.2.self_attn"  # the MTP layer's attention, as stored
#: runtime layer (its prefix) -> the checkpoint modules it holds, in shard order: every
#: one vLLM builds with no quant config and whose weight_scale its load_weights takes
_BF16 = {"fused_qkv_a_proj": ("q_a_proj", "kv_a_proj_with_mqa"), "q_b_proj": ("q_b_proj",),
         "o_proj": ("o_proj",)}
Built = dict[str, tuple[WrittenCheckpoint, DraftResult, DraftResult]]


def start_qattn(session: pytest.Session, root: Path) -> Callable[[], Built]:
    ck = {s: write_checkpoint(root / s, CheckpointSpec("glm5_next_qattn", s, layout="g"))  # type: ignore[arg-type]
          for s in _SCHEMES}
    reqs = [BuildRequest(ck[s].path, mode="draft", engine_args=_HYBRID) for s in _SCHEMES]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many([BuildRequest(ck[s].path, mode="draft", dump=False, engine_args=_HYBRID)
                       for s in _SCHEMES], plugin=False, workdir=root / "off")
    return lambda: {s: (ck[s], a, b) for s, a, b in zip(_SCHEMES, on(), off(), strict=True)}


qattn = early_fixture(start_qattn)


@pytest.mark.parametrize("scheme", _SCHEMES)
def test_stock_dies_on_the_quantized_mtp_attention(qattn: Built, scheme: str) -> None:
    """Stock outcome, measured, FP8 and NVFP4 alike: ``KeyError`` on the first
    ``input_scale`` (the BF16 layer has no place for it; the plugin before this fix died
    the same way on FP8 and with a DraftLoadError on NVFP4: the NVFP4 ``weight_scale``s
    were taken by ``_try_load_fp8_attn_proj`` and never loaded)."""
    _, _, off = qattn[scheme]
    assert not off.ok and off.error_type == "KeyError", off.error_text
    assert "mtp_block.self_attn.kv_a_proj_with_mqa.input_scale" in off.error_text, off.error_text


@pytest.mark.parametrize("scheme", _SCHEMES)
def test_plugin_dequantizes_the_mtp_attention_vllm_holds_in_bf16(qattn: Built,
                                                                 scheme: str) -> None:
    """Plugin on: the learned profile makes the MLA projections whose scales vLLM's
    load_weights takes itself ``fixed``; the plan dequantizes them at load (and says so),
    and each holds the exact dequantization of its stored tensors, in BF16; ``kv_b_proj``
    (whose tensors vLLM passes on) is built in its stored precision."""
    import torch

    ck, on, _ = qattn[scheme]
    assert on.ok, on.error_text
    dump = on.load_dump()
    t = load_checkpoint(ck.path)
    for layer, mods in _BF16.items():
        (name,) = [n for n in dump if n.endswith(f"self_attn.{layer}.weight")]
        got = dump[name]
        assert got.dtype == torch.bfloat16, (name, got.dtype)
        want = torch.cat([_expected(ck, f"{_A}.{m}", "modelopt", scheme) for m in mods])
        assert torch.equal(got, want.to(torch.bfloat16)), (name, (got - want).abs().max())
    kv_b = [m for p, m in on.modules.items() if p.endswith("self_attn.kv_b_proj")]
    assert len(kv_b) == 1 and kv_b[0].quantized, kv_b
    assert f"{_A}.kv_b_proj.weight" in t
