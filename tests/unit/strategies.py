"""Hypothesis strategies for the unit tests, gathered in one module.

Layer and expert counts, drafter profiles and their name maps, checkpoint and
runtime module names, rule lists in each producer's grammar, stored formats of
factory MTP layers, and arbitrary JSON for the parsers.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hypothesis import strategies as st
from support import MtpFormats

from vllm_draft_quant.core.names import NameMap, RuntimeModule
from vllm_draft_quant.core.rules import GRAMMARS
from vllm_draft_quant.core.schemes import ModuleKind
from vllm_draft_quant.profiles import PROFILES, DrafterProfile

__all__ = [
    "FUZZ_EXAMPLES",
    "GRAMMARS",
    "checkpoint_name_in",
    "draft_layer_counts",
    "expert_counts",
    "hidden_layer_counts",
    "json_values",
    "module_kinds",
    "module_names",
    "mtp_formats",
    "name_maps",
    "profiles",
    "rule_lists",
    "rule_text",
    "target_names",
]

#: examples per ``fuzz``-marked test: ``VDQ_FUZZ_EXAMPLES``, which ``tests/conftest.py``
#: sets from the hypothesis profile unless the caller did (``.ci/run`` sets it; a deep
#: run: ``VDQ_FUZZ_EXAMPLES=10000 pytest -m fuzz``).
FUZZ_EXAMPLES = int(os.environ["VDQ_FUZZ_EXAMPLES"])

# --------------------------------------------------------------------- counts
#: ``num_hidden_layers`` of a target model (DeepSeek-V3 has 61, Step-3.5 45).
hidden_layer_counts = st.integers(min_value=1, max_value=100)
#: ``num_nextn_predict_layers``: every shipped drafter has 1..3.
draft_layer_counts = st.integers(min_value=1, max_value=3)
#: routed experts per MoE layer (DeepSeek-V3: 256, Qwen3-Next: 512).
expert_counts = st.integers(min_value=1, max_value=512)

profiles = st.sampled_from(PROFILES)
module_kinds = st.sampled_from(list(ModuleKind))


@st.composite
def name_maps(draw: st.DrawFn, profile: DrafterProfile | None = None) -> NameMap:
    """A `NameMap` for a profile placed over generated layer counts."""
    p = profile if profile is not None else draw(profiles)
    return NameMap(p, num_hidden_layers=draw(hidden_layer_counts),
                   num_draft_layers=draw(draft_layer_counts))


# ---------------------------------------------------------------------- names
_SEGMENTS = (
    "model", "layers", "mtp", "self_attn", "mlp", "moe", "experts", "shared_expert",
    "shared_experts", "share_expert", "q_proj", "k_proj", "v_proj", "o_proj", "g_proj",
    "qkv_proj", "q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "gate_proj",
    "up_proj", "down_proj", "gate_up_proj", "gate", "shared_head", "head", "output",
    "eh_proj", "fc", "lm_head", "mtp_block", "linear_attn", "in_proj_qkvz", "weight",
)
segments = st.one_of(
    st.sampled_from(_SEGMENTS),
    st.integers(min_value=0, max_value=130).map(str),
)
#: dotted module names built from the vocabulary real checkpoints use.
module_names = st.lists(segments, min_size=1, max_size=7).map(".".join)


def checkpoint_name_in(nm: NameMap, n_experts: int) -> st.SearchStrategy[tuple[RuntimeModule, int, str]]:
    """(runtime module, shard index, checkpoint module name) of one drafter module.

    Only modules vLLM builds for a full checkpoint (no `unless_present` variants).
    """
    mods = [m for m in nm.modules if nm.is_active(m)]

    @st.composite
    def _one(draw: st.DrawFn) -> tuple[RuntimeModule, int, str]:
        m = draw(st.sampled_from(mods))
        i = draw(st.integers(0, len(m.checkpoint_modules) - 1))
        c = m.checkpoint_modules[i]
        if "{e}" in c:
            c = c.replace("{e}", str(draw(st.integers(0, n_experts - 1))))
        return m, i, c

    return _one()


def target_names(nm: NameMap) -> st.SearchStrategy[str]:
    """Checkpoint module names of the *target* model's layers (never draft names).

    The draft layers' own suffixes placed under ``model.layers.{i}`` for every
    target layer ``i < num_hidden_layers``, plus target-only modules.
    """
    suffixes = sorted({c for s in nm.profile.modules for c in s.checkpoint}
                      | {"linear_attn.in_proj_qkvz", "linear_attn.out_proj", "moe.gate_proj",
                         "input_layernorm"})

    @st.composite
    def _one(draw: st.DrawFn) -> str:
        i = draw(st.integers(0, nm.num_hidden_layers - 1))
        suffix = draw(st.sampled_from(suffixes)).replace("{e}", str(draw(st.integers(0, 300))))
        return f"model.layers.{i}.{suffix}"

    return st.one_of(_one(), st.sampled_from(["model.embed_tokens", "model.norm"]))


# ---------------------------------------------------------------------- rules
_CLASS_NAMES = ("Linear", "LinearBase", "FusedMoE", "LMHead", "ParallelLMHead", "Embedding")


@st.composite
def _prefix_of(draw: st.DrawFn, name: str) -> str:
    """A prefix of ``name`` that ends on a segment boundary."""
    parts = name.split(".")
    return ".".join(parts[: draw(st.integers(1, len(parts)))])


@st.composite
def _glob_of(draw: st.DrawFn, name: str) -> str:
    """``name`` with some segments (or digits) replaced by ``*``/``?``/``[0-9]``."""
    parts = name.split(".")
    out = []
    for p in parts:
        choice = draw(st.sampled_from(["keep", "keep", "keep", "star", "qmark", "digit"]))
        if choice == "star":
            out.append("*")
        elif choice == "qmark" and p:
            out.append(p[:-1] + "?")
        elif choice == "digit" and p.isdigit():
            out.append("[0-9]" * len(p))
        else:
            out.append(p)
    text = ".".join(out)
    return text + ("*" if draw(st.booleans()) else "")


@st.composite
def _regex_of(draw: st.DrawFn, name: str) -> str:
    """A ``re:`` rule built from a name: an escaped prefix, then ``.*`` and a tail."""
    prefix = draw(_prefix_of(name))
    body = re.escape(prefix)
    tail = draw(st.sampled_from(["", r".*", r"\..*", r"(\.|$)", r"\.(q|k|v)_proj", r"\d+"]))
    lead = draw(st.sampled_from(["", ".*", r".*\."]))
    return "re:" + lead + body + tail


@st.composite
def rule_text(draw: st.DrawFn, grammar: str, names: st.SearchStrategy[str] = module_names) -> str:
    """One rule as a producer would write it, derived from a generated name."""
    name = draw(names)
    if grammar == "modelopt":
        return draw(st.one_of(st.just(name), _prefix_of(name).map(lambda p: p + "*"),
                              _glob_of(name)))
    if grammar == "compressed-tensors":
        return draw(st.one_of(st.just(name), _regex_of(name), st.sampled_from(_CLASS_NAMES)))
    if grammar == "quark":
        return draw(st.one_of(st.just(name), _glob_of(name), _regex_of(name)))
    if grammar == "substring":
        return draw(st.one_of(st.just(name), _prefix_of(name),
                              st.integers(0, len(name) - 1).map(lambda i: name[i:])))
    return name  # exact


def rule_lists(grammar: str, names: st.SearchStrategy[str] = module_names,
               max_size: int = 8) -> st.SearchStrategy[list[str]]:
    return st.lists(rule_text(grammar, names), max_size=max_size)


#: (grammar, rule texts) in every grammar the rule compiler knows.
grammar_rule_lists = st.sampled_from(GRAMMARS).flatmap(
    lambda g: st.tuples(st.just(g), rule_lists(g))
)

# -------------------------------------------------------------------- formats
_FORMAT = st.sampled_from(["bf16", "q"])


@st.composite
def mtp_formats(draw: st.DrawFn, scheme: str) -> MtpFormats:
    """Stored formats of one factory MTP layer: each group BF16 or ``scheme``."""
    def f() -> str:
        return "bf16" if draw(_FORMAT) == "bf16" else scheme

    return MtpFormats(attn=f(), mlp=f(), head=f())  # type: ignore[arg-type]


# ----------------------------------------------------------------------- JSON
_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12),
)
#: any JSON value (what a hand-edited config file may hold in any field).
json_values: st.SearchStrategy[Any] = st.recursive(
    _scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12,
)
