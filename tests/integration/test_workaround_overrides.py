"""Issue 13, item 4: the plan overrides vLLM's per-model workarounds where they
contradict the stored tensors.

Qwen3-Next and Qwen3.5 (``qwen3_next_mtp.py:Qwen3NextMultiTokenPredictor.__init__``,
``qwen3_5_mtp.py:Qwen3_5MultiTokenPredictor.__init__``) build ``mtp.fc`` with
``quant_config=None`` whenever the target's config is ``modelopt_fp4``, because early
NVFP4 exports stored it BF16 without excluding it. An export that stores ``mtp.fc``
NVFP4 then cannot load on stock vLLM ("no module or parameter named 'fc.input_scale'").
With the plugin, ``mtp.fc`` is built as its tensors are stored: NVFP4 when stored NVFP4,
BF16 when stored BF16 (also under a ModelOpt FP8 config that would quantize it).

Qwen3.5's GPTQ ``dynamic`` opt-out (same ``__init__``): when the checkpoint's GPTQ
``dynamic`` has any ``"-:"`` key containing ``mtp``, vLLM builds every MTP *layer* with
``quant_config=None``, whatever that key names. A GPTQModel export that opts out only
``mtp.fc`` (``-:mtp\\.fc``) and stores the MTP layers INT4 cannot load on stock vLLM (the
INT4 tensors meet unquantized layers); with the plugin the layers load INT4 and
``mtp.fc`` BF16. The MoE drafter (``Qwen3_5MoeMTP``) with INT4 MTP and routers opted out
is the same case (and the same build as ``test_int4_producers.py``'s, so a full run
builds it once). The opposite direction: an export that opts out every MTP module and
stores them BF16, where the workaround agrees with the tensors: both load BF16 (also
``test_int4_producers.py``'s dense Qwen3.5 GPTQ layout c: one build in a full run).

Not covered here yet (no tiny checkpoint of these families in the test factory):
Qwen4Exp's exclusion remap (``qwen4_exp/nvidia/mtp.py:_remap_ignored_layers``: every
``mtp.*`` exclusion's ``.layers.K`` becomes ``.layers.N+K``, so a list already written
in runtime names is shifted past the MTP layers), HY-V4's
(``hy_v4/nvidia/mtp.py:_remap_mtp_quant_exclusions``: ``model.mtp_layers.K.*`` entries
gain a ``model.layers.N+K.*`` copy) and LongCat's ``disable_quant_module``
(``longcat_flash_mtp.py:LongCatFlashMTP.__init__``: ``"mtp"`` there unquantizes only
``eh_proj`` and ``lm_head``; the MTP block is built with ``vllm_config.quant_config``
whatever the list says). In each the plan still builds every planned module from its
stored tensors: the layer patches replace whatever config the drafter passes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from matrix import OK, _loud, assert_loud
from support import CheckpointSpec, write_checkpoint
from support.harness import BuildRequest, early_fixture, submit_many
from values import load_checkpoint, mismatches

from vllm_draft_quant import plan
from vllm_draft_quant.checkpoint.facts import load_facts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3600)]

_QUANTIZABLE = ("linear", "experts", "lm_head")

# (family, scheme, layout, how mtp.fc is stored)
CASES = (
    ("qwen3_5", "nvfp4", "g", "nvfp4"),  # stored NVFP4: vLLM forces it unquantized
    ("qwen3_next", "nvfp4", "g", "nvfp4"),
    ("qwen3_5", "nvfp4", "d", "bf16"),  # stored BF16: the workaround agrees
    ("qwen3_5", "fp8", "a", "bf16"),  # stored BF16, not excluded, FP8 config
)
#: (family, layout, how the MTP layers are stored): GPTQ exports (support/_formats_int4.py)
GPTQ_CASES = (
    ("qwen3_5", "d", "int4"),  # dynamic {"-:mtp\\.fc"}: fc BF16, layers INT4
    ("qwen3_5_moe", "g", "int4"),  # dynamic opts out the two MTP routers only
    ("qwen3_5", "c", "bf16"),  # every MTP module opted out and stored BF16: agrees
)
#: stock vLLM 0.33.0 on GPTQ_CASES (plugin off), measured
GPTQ_STOCK = {
    ("qwen3_5", "d"): _loud("ValueError", "layers.0.mlp.down_proj.qweight"),
    ("qwen3_5_moe", "g"): _loud("AttributeError",
                                "mtp.layers.0.mlp.experts has no parameter 'w2_qweight'"),
    ("qwen3_5", "c"): OK,
}


def _id(case: tuple[str, ...]) -> str:
    return "-".join(case[:3])


def _gptq_id(case: tuple[str, ...]) -> str:
    return f"{case[0]}-gptq-{case[1]}"


def start_built(session: pytest.Session, root: Path) -> Callable[[], dict[Any, Any]]:
    """Write every case's checkpoint and queue its builds, plugin on and off."""
    ckpts: dict[Any, Any] = {
        c: write_checkpoint(root / _id(c), CheckpointSpec(c[0], c[1], layout=c[2]))  # type: ignore[arg-type]
        for c in CASES
    }
    ckpts.update({
        c: write_checkpoint(root / _gptq_id(c), CheckpointSpec(c[0], "int4", "gptq", layout=c[1]))  # type: ignore[arg-type]
        for c in GPTQ_CASES
    })
    reqs = [BuildRequest(ck.path) for ck in ckpts.values()]
    on = submit_many(reqs, plugin=True, workdir=root / "on")
    off = submit_many(reqs, plugin=False, workdir=root / "off")
    return lambda: {c: (ck, a, b)
                    for (c, ck), a, b in zip(ckpts.items(), on(), off(), strict=True)}


built = early_fixture(start_built)


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


def _int4(m: Any) -> bool:
    return any(n.endswith("qweight") and p.dtype == "int32" for n, p in m.params.items())


@pytest.mark.parametrize("case", GPTQ_CASES, ids=_gptq_id)
def test_gptq_dynamic_mtp_opt_out_overridden(built: dict[Any, Any],
                                            case: tuple[str, str, str]) -> None:
    """Each MTP module loads as stored (INT4 or BF16) with the checkpoint's exact values,
    whatever the ``dynamic`` heuristic decided; stock vLLM's outcome beside it."""
    ckpt, on, off = built[case]
    family, layout, layers = case
    dynamic = ckpt.config["quantization_config"].get("dynamic") or {}
    # the heuristic vLLM applies (qwen3_5_mtp.py:Qwen3_5MultiTokenPredictor.__init__)
    assert any(k.startswith("-:") and "mtp" in k for k in dynamic), dynamic
    p = plan(ckpt.path)
    assert on.ok, on.error_text
    for d in p.modules:
        if not d.module.startswith("mtp.") or d.kind in ("plain", "fixed"):
            continue
        m = on.modules[d.module]
        stored_int4 = d.module != "mtp.fc" and layers == "int4"
        if family == "qwen3_5_moe":  # layout g: fc INT4 too
            stored_int4 = layers == "int4"
        assert d.scheme.value == ("int4" if stored_int4 else "unquantized"), (d.module, d.scheme)
        assert _int4(m) == stored_int4, (d.module, m.quant_method)
    names = load_facts(ckpt.path).names
    templates = {m.prefix: list(m.checkpoint_modules) for m in names.modules}
    mtp = p.model_copy(update={"modules": tuple(
        d for d in p.modules if d.module.startswith("mtp.") and d.kind in _QUANTIZABLE)})
    assert mismatches(mtp, on.modules, on.load_dump(), load_checkpoint(ckpt.path),
                      templates) == []
    expected = GPTQ_STOCK[(family, layout)]
    if expected.outcome == "loud":
        assert_loud(expected, off)
    else:  # the heuristic and the tensors agree: stock loads every MTP layer BF16
        assert off.ok, off.error_text
        assert not any(_int4(m) for pre, m in off.modules.items() if pre.startswith("mtp."))
