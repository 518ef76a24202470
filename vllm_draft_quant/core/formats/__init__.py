"""The quant formats: one module per format, one registry, consulted by the core, ``fix``
and the adapter alike.

========================  ======================  ==========================================
module                    formats (``name``)      reads
========================  ======================  ==========================================
``modelopt.py``           ``modelopt``            ``hf_quant_config.json``, ``modelopt*``
``compressed_tensors.py`` ``compressed-tensors``  ``config_groups`` + ``ignore``
``quark.py``              ``quark``               ``global_quant_config`` + ``exclude``
``fp8.py``                ``fp8``                 vLLM's ``fp8`` (DeepSeek native)
``transformers_style.py`` ``gptq``, ``awq``,      ``modules_to_not_convert``; ``other`` is
                          ``mxfp4``, ``other``    any ``quant_method`` none of these reads
========================  ======================  ==========================================

Each is a `QuantFormat` (``base.py`` says what one holds). `FORMATS` is the registry;
look formats up by ``quant_method`` (`for_method`), by producer name (`by_name`) or by
the name of a vLLM quant config (`for_vllm_name`). `classify` asks each format in
registry order whether a module's stored parameters are a layout it writes: formats
keyed on a parameter of their own (``weight_packed``, ``qweight``, ``weight_scale_inv``)
come before those keyed on a plain ``weight``, and the first answer wins. `vllm_config_for`
is the one vLLM config (as data) built for a stored scheme; one format builds each scheme.

Adding a format: CONTRIBUTING.md, "Adding a quant format".
"""

from __future__ import annotations

from vllm_draft_quant.core.formats import compressed_tensors, fp8, modelopt, quark
from vllm_draft_quant.core.formats.base import (
    ConfigReading,
    Params,
    Producer,
    QuantFormat,
    TargetGroup,
    VllmConfigSpec,
)
from vllm_draft_quant.core.formats.transformers_style import AWQ, GPTQ, MXFP4, OTHER
from vllm_draft_quant.core.rules import Grammar
from vllm_draft_quant.core.schemes import Scheme, StoredFormat

__all__ = [
    "AWQ",
    "COMPRESSED_TENSORS",
    "FORMATS",
    "FP8",
    "GPTQ",
    "MODELOPT",
    "MXFP4",
    "OTHER",
    "QUARK",
    "ConfigReading",
    "Params",
    "Producer",
    "QuantFormat",
    "TargetGroup",
    "VllmConfigSpec",
    "by_name",
    "classify",
    "fix_grammar",
    "for_method",
    "for_vllm_name",
    "vllm_config_for",
]

MODELOPT = modelopt.FORMAT
COMPRESSED_TENSORS = compressed_tensors.FORMAT
QUARK = quark.FORMAT
FP8 = fp8.FORMAT

#: the registry, in classification order
FORMATS: tuple[QuantFormat, ...] = (COMPRESSED_TENSORS, GPTQ, AWQ, FP8, MODELOPT, QUARK, MXFP4, OTHER)

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


def vllm_config_for(scheme: Scheme) -> VllmConfigSpec | None:
    """The vLLM config that quantizes every layer with ``scheme``, as data (None: none is built)."""
    return next((f.builds[scheme] for f in FORMATS if scheme in f.builds), None)

