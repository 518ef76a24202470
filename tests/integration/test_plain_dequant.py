"""Issue 13, item 5: plain layers a checkpoint stores quantized load dequantized.

MiMo's ``input_proj`` and the NextN ``eh_proj`` of DeepSeek-V3 and GLM-4.5 are
``torch.nn.Linear`` layers in vLLM; exports that quantize every linear layer store them
FP8 or NVFP4. Stock vLLM then dies on the first scale ("There is no module or parameter
named '...input_scale'"), and so did the plugin. With the plugin the plan marks them
``dequantize`` and the layer's BF16 weight is the exact dequantization of the stored
tensors (FP8: weight x scale; NVFP4: E2M1 value x block scale x global scale, the
format's definition, computed here independently of vLLM's helper the adapter uses);
every other draft module still loads in its stored precision. A format the adapter
cannot dequantize (Quark MXFP4) fails with one error naming the module.

Each case is built through vLLM's own draft path (the session's build service), plugin
on and off.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import CheckpointSpec, WrittenCheckpoint, write_checkpoint
from support.harness import BuildRequest, DraftResult, submit_many
from values import load_checkpoint

from vllm_draft_quant import plan

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

# (family, producer, scheme, layout): MTP quantized ("d": head BF16 and excluded; "g":
# everything quantized), the plain input projection quantized too
CASES: tuple[tuple[str, str, str, str], ...] = (
    ("mimo", "modelopt", "nvfp4", "g"),
    ("mimo", "modelopt", "fp8", "g"),
    ("deepseek_v3", "modelopt", "nvfp4", "d"),
    ("deepseek_v3", "modelopt", "fp8", "d"),
    ("glm4_moe", "modelopt", "fp8", "d"),
    ("deepseek_v3", "compressed-tensors", "nvfp4", "d"),
    ("deepseek_v3", "compressed-tensors", "fp8", "d"),
    ("glm5", "modelopt", "nvfp4", "d"),
    ("deepseek_v3", "fp8", "fp8_block", "d"),  # DeepSeek-native FP8 blocks
)
IMPOSSIBLE = ("deepseek_v3", "quark", "mxfp4", "d")
PLAIN = {"mimo": "model.mtp_layers.0.input_proj", "deepseek_v3": "model.layers.2.eh_proj",
         "glm4_moe": "model.layers.2.eh_proj", "glm5": "model.layers.2.eh_proj"}
ENGINE = {"mimo": {"trust_remote_code": True}}
_E2M1 = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _id(case: tuple[str, ...]) -> str:
    return "-".join(case)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("plain-dequant")
    ckpts: dict[tuple[str, ...], WrittenCheckpoint] = {}
    for case in (*CASES, IMPOSSIBLE):
        family, producer, scheme, layout = case
        spec = CheckpointSpec(family, scheme, producer, layout=layout,  # type: ignore[arg-type]
                              quantize_plain=True)
        ckpts[case] = write_checkpoint(root / _id(case), spec)
    reqs = [BuildRequest(ck.path, engine_args=ENGINE.get(c[0])) for c, ck in ckpts.items()]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=False, workdir=root / "off")
    on_r, off_r = on(), off()
    return {c: (ck, a, b) for (c, ck), a, b in zip(ckpts.items(), on_r, off_r, strict=True)}


def _nvfp4(packed: Any, scale: Any, global_scale: float) -> Any:
    import torch

    lut = torch.tensor(_E2M1, dtype=torch.float32)
    low, high = (packed & 0x0F).long(), ((packed >> 4) & 0x0F).long()
    nibbles = torch.stack((low, high), dim=-1).reshape(packed.shape[0], -1)
    values = lut[nibbles & 0x07] * torch.where((nibbles & 0x08) > 0, -1.0, 1.0)
    per_block = scale.to(torch.float32) * global_scale
    out = values.reshape(values.shape[0], -1, 16) * per_block.unsqueeze(-1)
    return out.reshape(values.shape[0], -1)


def _expected(ckpt: WrittenCheckpoint, module: str, producer: str, scheme: str) -> Any:
    import torch

    t = load_checkpoint(ckpt.path)
    if scheme == "fp8_block":
        from support._formats_more import BLOCK

        s = t[f"{module}.weight_scale_inv"].float()
        s = s.repeat_interleave(BLOCK[0], 0).repeat_interleave(BLOCK[1], 1)
        w = t[f"{module}.weight"].to(torch.float32)
        return w * s[: w.shape[0], : w.shape[1]]
    if scheme == "fp8":
        return t[f"{module}.weight"].to(torch.float32) * t[f"{module}.weight_scale"].float()
    if producer == "modelopt":
        return _nvfp4(t[f"{module}.weight"], t[f"{module}.weight_scale"],
                      float(t[f"{module}.weight_scale_2"]))
    return _nvfp4(t[f"{module}.weight_packed"], t[f"{module}.weight_scale"],
                  1.0 / float(t[f"{module}.weight_global_scale"]))


def _plain_param(result: DraftResult, leaf: str) -> Any:
    dump = result.load_dump()
    hits = [n for n in dump if n.endswith(f"{leaf}.weight")]
    assert len(hits) == 1, sorted(dump)[:20]
    return dump[hits[0]]


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_plain_layer_stored_quantized_loads_dequantized(built: dict[Any, Any],
                                                        case: tuple[str, str, str, str]) -> None:
    import torch

    family, producer, scheme, _ = case
    ckpt, on, off = built[case]
    module = PLAIN[family]
    p = plan(ckpt.path)
    (d,) = [m for m in p.modules if module in m.checkpoint_tensors[0]]
    assert d.source == "dequantize" and d.scheme.value == "unquantized", d
    assert not p.conflicts, p.conflicts
    # stock vLLM (plugin off) fails on the stored scales of the plain layer
    assert not off.ok, "stock vLLM loaded a quantized plain layer"
    assert module.rsplit(".", 1)[-1] in off.error_text, off.error_text
    # plugin on: loads; the plain layer holds the exact dequantization, in BF16
    assert on.ok, on.error_text
    got = _plain_param(on, module.rsplit(".", 1)[-1])
    assert got.dtype == torch.bfloat16
    want = _expected(ckpt, module, producer, scheme).to(torch.bfloat16)
    assert torch.equal(got, want), (got - want).abs().max()
    # every quantizable planned module is built in its stored precision
    for m in p.modules:
        if not m.kind.quantizable:
            continue
        info = on.modules.get(m.module)
        assert info is not None, m.module
        assert info.quantized == (m.scheme.value != "unquantized"), (m.module, info)


def test_a_plain_layer_in_a_format_that_cannot_be_dequantized_fails_by_name(
        built: dict[Any, Any]) -> None:
    _ckpt, on, off = built[IMPOSSIBLE]
    assert not on.ok and on.error_type == "UnsupportedSchemeError", on.error_text
    assert "model.layers.2.eh_proj" in on.error_text and "mxfp4" in on.error_text, on.error_text
    assert not off.ok, off.error_text  # stock vLLM fails too, in its own words
