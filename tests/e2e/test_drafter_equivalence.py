"""The drafter the plugin loads from a quantized checkpoint computes what the BF16 original's does.

Cheaper and more sensitive than acceptance: in the e2e engine process, right after
generation, every linear module of the drafter (and its logits) is run on the same
seeded inputs (``engine_runner.probe_drafter``), once for the drafter loaded from the
quantized checkpoint with the plugin and once for the one loaded from the BF16
original. Modules the checkpoint stores in BF16 must agree bit for bit (and so must
their parameters); quantized modules within the format's error (weights exactly
representable here, activations quantized to 4 bits by NVFP4, 8 by FP8: cosine >= 0.97).
MTP drafters (MiMo) and the EAGLE3 drafter (Llama) alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cases
import pytest
import torch

PROBED = [c for c in cases.CASES if c.tp == 1]


def _probe(generation: dict[str, Any], name: str) -> None:
    run = generation[name]
    assert run["ok"] and run.get("probe"), run


@pytest.mark.parametrize("case", PROBED, ids=lambda c: c.key)
def test_drafter_modules_equal_the_bf16_original(
    generation: dict[str, Any], e2e_root: Path, case: cases.Case
) -> None:
    _probe(generation, f"{case.reference}/ref/k1")
    _probe(generation, f"{case.key}/plugin/k1")
    ref = torch.load(e2e_root / f"{case.reference}.probe.pt")
    got = torch.load(e2e_root / f"{case.key}.probe.pt")
    assert sorted(ref) == sorted(got)
    stored_quantized = (torch.uint8, torch.float8_e4m3fn)  # NVFP4 packed, FP8
    quantized = {n.rsplit(".", 1)[0] for n, p in got["<weights>"].items()
                 if p.dtype in stored_quantized}  # fmt: skip
    assert (len(quantized) > 0) == case.draft_quantized
    exact, close = 0, 0
    for name in sorted(set(ref) - {"<weights>", "<plans>"}):
        if name in quantized:
            cos = torch.nn.functional.cosine_similarity(
                got[name].flatten(), ref[name].flatten(), dim=0)  # fmt: skip
            assert cos >= 0.97, (name, float(cos))
            close += 1
        else:
            assert torch.equal(got[name], ref[name]), name
            exact += 1
    # BF16 drafters: MTP input_proj, qkv_proj, o_proj; EAGLE3 fc, gate_up, down (+ logits).
    # A NextN layer quantized but for its head (layout d): eh_proj and the logits
    assert exact >= (2 if case.draft_quantized else 3)
    assert (close > 0) == case.draft_quantized
    for name, p in ref["<weights>"].items():
        if name.rsplit(".", 1)[0] not in quantized:
            assert torch.equal(got["<weights>"][name], p), name
