"""Issue 13, item 4: the plan overrides vLLM's per-model workarounds where they
contradict the stored tensors.

Qwen3-Next and Qwen3.5 (``qwen3_next_mtp.py:Qwen3NextMultiTokenPredictor.__init__``,
``qwen3_5_mtp.py:Qwen3_5MultiTokenPredictor.__init__``) build ``mtp.fc`` with
``quant_config=None`` whenever the target's config is ``modelopt_fp4``, because early
NVFP4 exports stored it BF16 without excluding it. An export that stores ``mtp.fc``
NVFP4 then cannot load on stock vLLM ("no module or parameter named 'fc.input_scale'").
With the plugin, ``mtp.fc`` is built as its tensors are stored: NVFP4 when stored NVFP4,
BF16 when stored BF16 (also under a ModelOpt FP8 config that would quantize it).

Not covered here (no CPU-buildable checkpoint in the test factory): Qwen3.5's GPTQ
``dynamic`` MTP opt-out, HY-V4's and Qwen4Exp's exclusion remaps, LongCat's
``disable_quant_module``; in each the plan still builds every planned module from its
stored tensors, because the layer patches replace whatever config the drafter passes.
"""

from __future__ import annotations

from typing import Any

import pytest
from support import CheckpointSpec, write_checkpoint
from support.harness import BuildRequest, submit_many
from values import load_checkpoint

from vllm_draft_quant import plan

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

# (family, scheme, layout, how mtp.fc is stored)
CASES = (
    ("qwen3_5", "nvfp4", "g", "nvfp4"),  # stored NVFP4: vLLM forces it unquantized
    ("qwen3_next", "nvfp4", "g", "nvfp4"),
    ("qwen3_5", "nvfp4", "d", "bf16"),  # stored BF16: the workaround agrees
    ("qwen3_5", "fp8", "a", "bf16"),  # stored BF16, not excluded, FP8 config
)


def _id(case: tuple[str, ...]) -> str:
    return "-".join(case[:3])


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[Any, Any]:
    root = tmp_path_factory.mktemp("workarounds")
    ckpts = {c: write_checkpoint(root / _id(c), CheckpointSpec(c[0], c[1], layout=c[2]))  # type: ignore[arg-type]
             for c in CASES}
    reqs = [BuildRequest(ck.path) for ck in ckpts.values()]
    on, off = submit_many(reqs, plugin=True, workdir=root / "on"), submit_many(
        reqs, plugin=False, workdir=root / "off")
    return {c: (ck, a, b) for (c, ck), a, b in zip(ckpts.items(), on(), off(), strict=True)}


def _fc(result: Any) -> Any:
    m = result.modules.get("mtp.fc")
    assert m is not None, sorted(result.modules)[:10]
    return m


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_mtp_fc_loads_as_stored(built: dict[Any, Any], case: tuple[str, str, str, str]) -> None:
    import torch

    ckpt, on, off = built[case]
    stored = case[3]
    d = plan(ckpt.path).decision("mtp.fc")
    assert d is not None and d.scheme.value == ("unquantized" if stored == "bf16" else stored)
    assert on.ok, on.error_text
    fc = _fc(on)
    assert fc.quantized == (stored != "bf16"), fc
    dump = on.load_dump()
    ck = load_checkpoint(ckpt.path)
    (w,) = [n for n in dump if n.endswith("fc.weight")]
    assert torch.equal(dump[w].view(torch.uint8), ck["mtp.fc.weight"].view(torch.uint8))
    # stock vLLM
    if stored == "nvfp4":  # forced unquantized: the stored scales have nowhere to go
        assert not off.ok and "fc.input_scale" in off.error_text, off.error_text
    elif case[1] == "fp8":  # not forced under FP8: BF16 tensors in an FP8 layer
        assert off.ok and _fc(off).quantized, _fc(off)
    else:  # the workaround and the tensors agree
        assert off.ok and not _fc(off).quantized
