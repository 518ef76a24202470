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
from support import CheckpointSpec, write_checkpoint
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many

_HYBRID = {"mamba_block_size": 256}
_SCHEMES = ("fp8", "nvfp4")


def start_qattn(session: pytest.Session, root: Path) -> Callable[[], dict[tuple[str, str], DraftResult]]:
    reqs = [BuildRequest(write_checkpoint(root / s, CheckpointSpec(
        "glm5_next_qattn", s, layout="g")).path, mode="draft", dump=False,  # type: ignore[arg-type]
        engine_args=_HYBRID) for s in _SCHEMES]
    runs = {p: submit_many(reqs, plugin=p == "on", workdir=root / p) for p in ("on", "off")}
    return lambda: {(s, p): r for p, run in runs.items() for s, r in zip(_SCHEMES, run(),
                                                                          strict=True)}


qattn = early_fixture(start_qattn)


@pytest.mark.parametrize("scheme", _SCHEMES)
def test_stock_dies_on_the_quantized_mtp_attention(
        qattn: dict[tuple[str, str], DraftResult], scheme: str) -> None:
    r = qattn[(scheme, "off")]
    print(scheme, r.ok, r.error_type, r.error_text[:400])
    assert not r.ok


@pytest.mark.parametrize("scheme", _SCHEMES)
def test_plugin_loads_right_or_one_plugin_error(
        qattn: dict[tuple[str, str], DraftResult], scheme: str) -> None:
    r = qattn[(scheme, "on")]
    print(scheme, r.ok, r.error_type, r.error_text[:600])
    assert not r.ok and r.error_type == "DraftLoadError", r.error_text
    assert "self_attn" in r.error_text and "KeyError" not in (r.error_type or "")
