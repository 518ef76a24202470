"""Issue 13, item 5 without vLLM: the plan marks a plain layer stored quantized.

MiMo's ``input_proj`` and the NextN ``eh_proj`` are ``torch.nn.Linear`` in vLLM. Stored
FP8 or NVFP4 (ModelOpt, compressed-tensors) they get the decision ``dequantize`` (no
conflict: the tensors are loaded, as BF16); stored in a format the adapter cannot
dequantize (Quark MXFP4) the plan records a conflict naming it, and
``strict`` refuses.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import CheckpointSpec, write_checkpoint

from vllm_draft_quant import ConflictError, Scheme, plan

PLAIN = {"mimo": "model.layers.2.input_proj", "deepseek_v3": "model.layers.2.eh_proj",
         "glm4_moe": "model.layers.2.eh_proj", "glm5": "model.layers.2.eh_proj"}


@pytest.mark.parametrize("family", sorted(PLAIN))
@pytest.mark.parametrize(("producer", "scheme"), [("modelopt", "nvfp4"), ("modelopt", "fp8"),
                                                  ("compressed-tensors", "nvfp4"),
                                                  ("compressed-tensors", "fp8"),
                                                  ("fp8", "fp8_block")])
def test_plain_layer_stored_quantized_is_dequantized(tmp_path: Path, family: str,
                                                     producer: str, scheme: str) -> None:
    write_checkpoint(tmp_path, CheckpointSpec(family, scheme, producer, layout="d",  # type: ignore[arg-type]
                                              quantize_plain=True))
    p = plan(tmp_path, mode="strict")
    d = p.decision(PLAIN[family])
    assert d is not None and d.source == "dequantize" and d.scheme is Scheme.UNQUANTIZED
    assert "dequantized exactly" in d.reason and p.conflicts == ()
    assert "scale" in " ".join(d.checkpoint_tensors)


def test_plain_layer_in_a_format_without_dequantization_is_a_conflict(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, CheckpointSpec("deepseek_v3", "mxfp4", "quark", layout="d",
                                              quantize_plain=True))
    p = plan(tmp_path)
    d = p.decision("model.layers.2.eh_proj")
    assert d is not None and d.source == "default"
    (c,) = [c for c in p.conflicts if c.module == "model.layers.2.eh_proj"]
    assert "cannot dequantize" in c.message
    with pytest.raises(ConflictError, match="eh_proj"):
        plan(tmp_path, mode="strict")


def test_bf16_plain_layer_is_unchanged(tmp_path: Path) -> None:
    write_checkpoint(tmp_path, CheckpointSpec("mimo", "nvfp4", layout="d"))
    d = plan(tmp_path).decision("model.layers.2.input_proj")
    assert d is not None and d.source == "default" and d.scheme is Scheme.UNQUANTIZED
