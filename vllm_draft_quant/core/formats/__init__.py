"""The quant formats: one module per format, one registry, consulted by the core, ``fix``
and the adapter alike.

========================  ======================  ==========================================
module                    formats (``name``)      reads
========================  ======================  ==========================================
``modelopt.py``           ``modelopt``            ``hf_quant_config.json``, ``modelopt*``
``compressed_tensors.py`` ``compressed-tensors``  ``config_groups`` + ``ignore``
``quark.py``              ``quark``               ``global_quant_config`` + ``exclude``
``fp8.py``                ``fp8``                 vLLM's ``fp8`` (DeepSeek native)
``gptq.py``              ``gptq``                ``dynamic``, ``modules_in_block_to_quantize``
``awq.py``                ``awq``                 ``modules_to_not_convert``
``auto_round.py``         ``auto-round``          ``block_name_to_quantize``, ``extra_config``
``moe_wna16.py``          ``moe_wna16``           vLLM's MoE WNA16 config (GPTQ/AWQ checkpoints)
``transformers_style.py`` ``mxfp4``, ``other``    ``modules_to_not_convert``; ``other`` is
                                                  any ``quant_method`` none of these reads
========================  ======================  ==========================================

Each is a `QuantFormat` (``base.py`` says what one holds). `FORMATS` is the registry;
look formats up by ``quant_method`` (`for_method`), by producer name (`by_name`) or by
the name of a vLLM quant config (`for_vllm_name`). `classify` asks each format in
registry order whether a module's stored parameters are a layout it writes: formats
keyed on a parameter of their own (``weight_packed``, ``qweight``, ``weight_scale_inv``)
come before those keyed on a plain ``weight``, and the first answer wins. `vllm_config_for`
is the one vLLM config (as data) built for a stored scheme; one format builds each scheme.
With header shapes, `classify_layout` also reads a packed-integer layout's bits and group
size (``_packed.py``), and `vllm_config_for_stored` builds the config that loads it.

Adding a format: CONTRIBUTING.md, "Adding a quant format".
"""

from __future__ import annotations

from vllm_draft_quant.core.formats import (
    auto_round,
    awq,
    compressed_tensors,
    fp8,
    gptq,
    modelopt,
    moe_wna16,
    quark,
)
from vllm_draft_quant.core.formats.base import (
    ConfigReading,
    Params,
    Producer,
    QuantFormat,
    Shapes,
    TargetGroup,
    VllmConfigSpec,
)
from vllm_draft_quant.core.formats.transformers_style import MXFP4, OTHER
from vllm_draft_quant.core.rules import Grammar
from vllm_draft_quant.core.schemes import IntLayout, Scheme, StoredFormat

__all__ = [
    "AUTO_ROUND",
    "AWQ",
    "COMPRESSED_TENSORS",
    "FORMATS",
    "FP8",
    "GPTQ",
    "MODELOPT",
    "MOE_WNA16",
    "MXFP4",
    "OTHER",
    "QUARK",
    "ConfigReading",
    "Params",
    "Producer",
    "QuantFormat",
    "Shapes",
    "TargetGroup",
    "VllmConfigSpec",
    "by_name",
    "classify",
    "classify_layout",
    "fix_grammar",
    "for_method",
    "for_vllm_name",
    "plain_float",
    "vllm_config_for",
    "vllm_config_for_stored",
]

MODELOPT = modelopt.FORMAT
COMPRESSED_TENSORS = compressed_tensors.FORMAT
QUARK = quark.FORMAT
FP8 = fp8.FORMAT
GPTQ = gptq.FORMAT
AWQ = awq.FORMAT
AUTO_ROUND = auto_round.FORMAT
MOE_WNA16 = moe_wna16.FORMAT

#: the registry, in classification order
FORMATS: tuple[QuantFormat, ...] = (COMPRESSED_TENSORS, GPTQ, AWQ, AUTO_ROUND, MOE_WNA16, FP8,
                                    MODELOPT, QUARK, MXFP4, OTHER)

_FLOAT = frozenset({"BF16", "F16", "F32", "F64"})
_QUANT_PARAMS = frozenset({"weight_scale", "weight_scale_2", "weight_scale_inv",
                           "weight_global_scale", "input_scale", "input_global_scale"})


def for_method(quant_method: str) -> QuantFormat:
    """The format that parses a ``quantization_config.quant_method`` (`OTHER` if none does)."""
    m = quant_method.lower()
    return next((f for f in FORMATS if f.reads_method(m)), OTHER)


def by_name(name: str) -> QuantFormat | None:
    """The format called ``name`` (a `Producer`), None for any other string."""
    return next((f for f in FORMATS if f.name == name), None)


def fix_grammar(producer: str) -> Grammar | None:
    """The rule grammar ``fix`` writes exclusions in for ``producer`` (None: it writes none)."""
    fmt = by_name(producer)
    return None if fmt is None else fmt.fix_grammar


def for_vllm_name(name: str) -> QuantFormat | None:
    """The format that reads back a vLLM quant config whose ``get_name()`` is ``name``."""
    return next((f for f in FORMATS if name in f.vllm_names), None)


def classify(params: Params) -> StoredFormat:
    """The stored format of one module from ``{param suffix: safetensors dtype}``.

    A layout no format claims is unquantized if its ``weight`` is a float with no
    quantization parameter beside it, else unknown (never guessed).
    """
    for f in FORMATS:
        got = f.classify(params)
        if got is not None:
            return got
    w = params.get("weight")
    if w in _FLOAT and not _QUANT_PARAMS & params.keys():
        return StoredFormat.UNQUANTIZED
    return StoredFormat.UNKNOWN


def plain_float(params: Params) -> bool:
    """Whether a module holds float tensors only and no ``weight`` (a plain parameter, such
    as HY-V4's attention sink ``self_attn.learnable_sink_param``): stored unquantized,
    though `classify` claims no layout for it (it says unknown)."""
    return bool(params) and all(d in _FLOAT for d in params.values()) and not any(
        p.startswith("weight") for p in params)


def classify_layout(params: Params, shapes: Shapes | None) -> tuple[StoredFormat, IntLayout | None]:
    """`classify`, plus bits and group size where the shapes give them: with ``shapes``,
    each format may first claim the module from its shapes (``classify_shapes``)."""
    if shapes:
        for f in FORMATS:
            got = f.classify_shapes(params, shapes)
            if got is not None:
                return got
    return classify(params), None


def vllm_config_for_stored(stored: StoredFormat, layout: IntLayout | None) -> VllmConfigSpec | None:
    """The vLLM config that loads a module stored as ``stored`` with ``layout``, as data."""
    return next((spec for f in FORMATS if (spec := f.builds_stored(stored, layout)) is not None),
                None)


def vllm_config_for(scheme: Scheme) -> VllmConfigSpec | None:
    """The vLLM config that quantizes every layer with ``scheme``, as data (None: none is built)."""
    return next((f.builds[scheme] for f in FORMATS if scheme in f.builds), None)

