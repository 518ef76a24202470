"""EAGLE3 drafters (vLLM's Eagle3LlamaForCausalLM family): the profile and the plan.

Pure: factory checkpoints and the resolver, no vLLM. What vLLM really builds for the
same checkpoints is checked by ``tests/integration/test_separate_draft.py``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest
from support.eagle3 import Eagle3Spec, write_eagle3_draft

from vllm_draft_quant import ConfigError, Scheme, plan
from vllm_draft_quant.checkpoint.facts import load_facts
from vllm_draft_quant.core.names import NameMap
from vllm_draft_quant.profiles import draft_architectures, profile_for_draft, profile_for_target

ARCH = "Eagle3LlamaForCausalLM"
LAYER = ("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj")
GROUP_OF = {
    "self_attn.qkv_proj": "attn",
    "self_attn.o_proj": "attn",
    "mlp.gate_up_proj": "mlp",
    "mlp.down_proj": "mlp",
    "model.fc": "fc",
    "lm_head": "lm_head",
}
SCHEME = {"bf16": Scheme.UNQUANTIZED, "fp8": Scheme.FP8, "nvfp4": Scheme.NVFP4}


def _group(module: str) -> str:
    return GROUP_OF.get(module) or GROUP_OF[module.split(".", 3)[-1]]


@pytest.mark.parametrize(
    "alias",
    ["Eagle3LlamaForCausalLM", "LlamaForCausalLMEagle3", "Eagle3Qwen3vlForCausalLM"],
)
def test_every_registry_alias_finds_the_profile(alias: str) -> None:
    assert profile_for_draft(alias).architecture == ARCH
    assert profile_for_target([alias], origin="config.json").architecture == ARCH
    assert alias in draft_architectures()


def test_a_llama_target_is_not_an_eagle3_drafter() -> None:
    assert "LlamaForCausalLM" not in draft_architectures()
    assert not profile_for_draft(ARCH).target_architectures


def test_midlayer_and_speculators_names_map_to_the_same_runtime_module() -> None:
    nm = NameMap(profile_for_draft(ARCH), num_hidden_layers=32, num_draft_layers=1)
    assert nm.canonical("midlayer.self_attn.q_proj") == "layers.0.self_attn.q_proj"
    a = nm.runtime_of("midlayer.self_attn.k_proj")
    b = nm.runtime_of("layers.0.self_attn.k_proj")
    assert a is not None and a == b
    assert a[0].prefix == "model.layers.32.self_attn.qkv_proj" and a[1] == 1
    assert nm.is_draft_name("midlayer.mlp.up_proj.weight")
    assert nm.is_draft_name("fc.weight") and nm.is_draft_name("lm_head.weight")
    assert not nm.is_draft_name("d2t") and not nm.is_draft_name("norm.weight")


FORMATS = [
    Eagle3Spec(),
    Eagle3Spec("fp8", "fp8", "fp8"),
    Eagle3Spec("nvfp4", "nvfp4", "nvfp4", "nvfp4"),
    Eagle3Spec(attn="nvfp4"),
    Eagle3Spec(mlp="fp8", lm_head="fp8"),
]


@pytest.mark.parametrize("place", ["hf_quant_config", "config_json", "none"])
@pytest.mark.parametrize("spec", FORMATS, ids=lambda s: f"{s.attn}-{s.mlp}-{s.fc}-{s.lm_head}")
def test_plan_follows_the_stored_tensors(spec: Eagle3Spec, place: str, tmp_path: Path) -> None:
    spec = Eagle3Spec(spec.attn, spec.mlp, spec.fc, spec.lm_head, place)  # type: ignore[arg-type]
    draft = write_eagle3_draft(tmp_path / "d", spec)
    p = plan(draft.path, drafter=ARCH, target_layers=2)
    assert p.drafter == ARCH
    assert [m.module for m in p.modules] == [
        *(f"model.layers.2.{s}" for s in LAYER),
        "model.fc",
        "lm_head",
    ]
    for m in p.modules:
        assert m.scheme is SCHEME[spec.of(_group(m.module))], m
        assert all(t.startswith(("midlayer.", "fc.", "lm_head.")) for t in m.checkpoint_tensors)
    quantized = bool(spec.schemes())
    declared = quantized and place != "none"
    # a declared config agrees with the tensors; an undeclared quantization is a conflict
    assert bool(p.conflicts) == (quantized and not declared)
    if declared:
        excluded = [m for m in p.modules if m.source == "exclude-rule"]
        assert {m.module for m in excluded} == {
            m.module for m in p.modules if m.scheme is Scheme.UNQUANTIZED
        }


def test_layers_are_numbered_after_the_target(tmp_path: Path) -> None:
    draft = write_eagle3_draft(tmp_path / "d", Eagle3Spec("fp8", "fp8", "fp8"))
    for n in (0, 5, 61):
        p = plan(draft.path, drafter=ARCH, target_layers=n)
        assert p.modules[0].module == f"model.layers.{n}.self_attn.qkv_proj"


@pytest.mark.parametrize("target_layers", [None, -1])
def test_without_the_targets_layer_count_it_says_how_to_plan(
    target_layers: Any, tmp_path: Path
) -> None:
    draft = write_eagle3_draft(tmp_path / "d", Eagle3Spec())
    with pytest.raises(ConfigError, match="--speculative-config") as e:
        load_facts(draft.path, target_layers=target_layers)  # architecture from config.json
    assert "num_hidden_layers" in str(e.value)


def test_an_own_embedding_is_planned_unquantized(tmp_path: Path) -> None:
    draft = write_eagle3_draft(tmp_path / "d", Eagle3Spec("fp8", "fp8", "fp8", embed_tokens=True))
    emb = plan(draft.path, drafter=ARCH, target_layers=2).decision("model.embed_tokens")
    assert emb is not None and emb.scheme is Scheme.UNQUANTIZED and emb.kind == "fixed"


def _rename_tensors(path: Path, old: str, new: str) -> None:
    """Rename tensors in a safetensors file's header (data untouched)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    header = {k.replace(old, new, 1) if k.startswith(old) else k: v for k, v in header.items()}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])


def test_speculators_layer_names_plan_the_same(tmp_path: Path) -> None:
    spec = Eagle3Spec("nvfp4", "nvfp4", "nvfp4")
    ref = plan(write_eagle3_draft(tmp_path / "ref", spec).path, drafter=ARCH, target_layers=2)
    other = write_eagle3_draft(tmp_path / "spec", spec)
    _rename_tensors(other.path / "model.safetensors", "midlayer.", "layers.0.")
    got = plan(other.path, drafter=ARCH, target_layers=2)
    assert [(m.module, m.scheme) for m in got.modules] == [
        (m.module, m.scheme) for m in ref.modules
    ]
    assert any(t.startswith("layers.0.") for m in got.modules for t in m.checkpoint_tensors)
