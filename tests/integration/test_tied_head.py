"""A draft head tied to the draft's embedding, which the quant config does not exclude.

The Gemma4 assistant (``gemma4_mtp.py:Gemma4MTP``, a drafter without a hand profile)
ties its ``lm_head`` to its ``embed_tokens`` (``tie_word_embeddings``): the checkpoint
stores only the BF16 embedding. ModelOpt exports exclude ``lm_head``; a config that does
not (written here: layout g, the draft layer stored quantized, the head not excluded) makes vLLM build the head
quantized, then tie the BF16 embedding into it. Stock vLLM, measured: under NVFP4 the
load stops (the head's ``weight_scale`` is never loaded); under FP8 it loads silently
wrong (an FP8 head holding BF16 data, scales at their initial value). The plugin learns
the mapping on the meta device, where the tied head is one parameter listed under the
embedding's name only; before ``learn.py:_tied_feeds`` the head looked unfed, went
unplanned, and both outcomes were stock's (this test failed). Built through vLLM's own
draft path on the CPU platform, beside the tiny Gemma4 target.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.eagle3 import EagleSpec, write_eagle_pair
from support.harness import BuildRequest, DraftResult, early_fixture, submit_many

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

_SCHEMES = ("fp8", "nvfp4")
Built = dict[str, tuple[DraftResult, DraftResult]]


def start_tied(session: pytest.Session, root: Path) -> Callable[[], Built]:
    reqs = []
    for s in _SCHEMES:
        target, _, spec = write_eagle_pair(root / s, EagleSpec(
            "gemma4_mtp", s, "g", exclude_tied_head=False))  # type: ignore[arg-type]
        reqs.append(BuildRequest(target.path, engine_args={"speculative_config": spec}))
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many([BuildRequest(r.model_dir, engine_args=r.engine_args, dump=False)
                       for r in reqs], plugin=True, workdir=root / "off",
                      env={"VLLM_DRAFT_QUANT": "off"})
    return lambda: dict(zip(_SCHEMES, zip(on(), off(), strict=True), strict=True))


tied = early_fixture(start_tied)


def _head(r: DraftResult) -> str:
    (head,) = [p for p in r.modules if p.endswith("lm_head")]
    return head


def test_stock_loads_the_tied_head_wrong(tied: Built) -> None:
    """Stock, measured: NVFP4 stops on the head's scale; FP8 loads an FP8 head that
    holds the BF16 embedding."""
    _, off = tied["nvfp4"]
    assert not off.ok and "never loaded" in off.error_text, off.error_text
    _, off = tied["fp8"]
    assert off.ok, off.error_text
    m = off.modules[_head(off)]
    assert "Unquantized" not in m.quant_method and m.has_sentinel, m  # scales never loaded


@pytest.mark.parametrize("scheme", _SCHEMES)
def test_plugin_builds_the_tied_head_as_its_stored_embedding(tied: Built, scheme: str) -> None:
    """Plugin on: the head is planned from the embedding it is tied to (BF16) and built
    unquantized; it holds the checkpoint's embedding exactly."""
    import torch

    on, _ = tied[scheme]
    assert on.ok, on.error_text
    head = _head(on)
    m = on.modules[head]
    assert "Unquantized" in m.quant_method and not m.has_sentinel, m
    dump = on.load_dump()
    (emb,) = [n for n in dump if n.endswith("embed_tokens.weight")]
    heads = [n for n in dump if n.endswith("lm_head.weight")]
    for n in heads:
        assert torch.equal(dump[n], dump[emb]), n
