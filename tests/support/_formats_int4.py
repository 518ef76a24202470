"""INT4 checkpoints for the factory: GPTQ, AWQ, AutoRound and compressed-tensors WNA16.

Registered with ``factory.py`` (producers ``gptq``, ``awq``, ``auto-round``,
``compressed-tensors``; scheme ``int4``). Layouts, 4-bit, group size `GROUP`
(``core/formats/_packed.py`` reads bits and group size back from these shapes):

==================  ===========================================================
gptq, auto-round    qweight I32 [in/8, out], qzeros I32 [in/g, out/8], scales
(auto_gptq)         BF16 [in/g, out], g_idx I32 [in] (static groups: i // g)
awq                 qweight I32 [in, out/8], qzeros I32 [in/g, out/8], scales
                    BF16 [in/g, out]
compressed-tensors  weight_packed I32 [out, in/8], weight_scale BF16 [out, in/g],
(pack-quantized)    weight_shape I64 [2] = [out, in]  (symmetric)
==================  ===========================================================

Scales are BF16 (the models' dtype; exports of BF16 models write them so), so every
loaded parameter can be compared with the checkpoint's bytes. Exclusions, in each
producer's own field and grammar:

- ``gptq``: ``dynamic`` ``-:`` regexes (GPTQModel's opt-out): a wildcard ``mtp*`` as
  ``-:mtp\\..*``-style regexes, exact names escaped (``re.match``: a prefix); no
  ``dynamic`` key without exclusions (``"dynamic": null`` makes vLLM 0.33's Qwen3.5 MTP
  raise ``TypeError`` in ``qwen3_5_mtp.py``, plugin on or off);
- ``awq``: ``modules_to_not_convert`` (substring; a wildcard becomes its stem);
- ``auto-round``: ``extra_config`` ``{name: {"bits": 16}}`` (a wildcard becomes a
  regex key), also for the target's BF16 linears (routers, ``in_proj_ba``), as AutoRound
  lists the layers it skipped;
- ``compressed-tensors``: ``ignore`` (exact names, ``re:``), as for its other schemes.

vLLM's GPTQ/AWQ/INC configs never quantize a ``ParallelLMHead`` unless ``lm_head`` is
set, so MTP heads stay BF16 for those producers (`HEADS_NEVER_QUANTIZED`).
numpy only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from support._io import write_safetensors
from vllm_draft_quant.demo import tensors as T

__all__ = [
    "GROUP",
    "HEADS_NEVER_QUANTIZED",
    "INT4_PRODUCERS",
    "act_order_g_idx",
    "compose",
    "int4_tensors",
    "quant_config",
    "with_mtp_of",
]

GROUP = 32
INT4_PRODUCERS = ("gptq", "awq", "auto-round")
HEADS_NEVER_QUANTIZED = INT4_PRODUCERS


def _i32(rng: Any, shape: tuple[int, ...]) -> T.RawTensor:
    n = int(np.prod(shape))
    return T.RawTensor("I32", shape, rng.integers(-(2**31), 2**31 - 1, size=n,
                                                  dtype="<i4").tobytes())


def _scales(rng: Any, shape: tuple[int, ...]) -> T.RawTensor:
    return T.bf16(rng, shape, mean=0.01, std=0.002)


def int4_tensors(name: str, out: int, inp: int, producer: str, seed: int
                 ) -> Iterator[tuple[str, T.RawTensor]]:
    """The tensors of linear ``name`` [out, inp] as ``producer`` stores 4-bit weights."""
    if inp % GROUP or out % 8:
        raise ValueError(f"{name}: [{out}, {inp}] does not pack ({GROUP}-wide groups, 8 per int32)")

    def rng(suffix: str) -> Any:
        return T.rng_for(seed, f"{name}.{suffix}")

    groups = inp // GROUP
    if producer in ("gptq", "auto-round"):
        yield f"{name}.qweight", _i32(rng("qweight"), (inp // 8, out))
        yield f"{name}.qzeros", _i32(rng("qzeros"), (groups, out // 8))
        yield f"{name}.scales", _scales(rng("scales"), (groups, out))
        g_idx = (np.arange(inp) // GROUP).astype("<i4")
        yield f"{name}.g_idx", T.RawTensor("I32", (inp,), g_idx.tobytes())
    elif producer == "awq":
        yield f"{name}.qweight", _i32(rng("qweight"), (inp, out // 8))
        yield f"{name}.qzeros", _i32(rng("qzeros"), (groups, out // 8))
        yield f"{name}.scales", _scales(rng("scales"), (groups, out))
    elif producer == "compressed-tensors":
        yield f"{name}.weight_packed", _i32(rng("weight_packed"), (out, inp // 8))
        yield f"{name}.weight_scale", _scales(rng("weight_scale"), (out, groups))
        shape = np.array([out, inp], dtype="<i8")
        yield f"{name}.weight_shape", T.RawTensor("I64", (2,), shape.tobytes())
    else:
        raise ValueError(f"{name}: producer {producer!r} writes no int4 layout here")


def _regex(pattern: str) -> str:
    return ".*".join(re.escape(part) for part in pattern.split("*"))


def quant_config(producer: str, exclusions: list[str], target_excl: list[str]) -> dict[str, Any]:
    """``quantization_config`` for ``producer`` (MTP exclusions in its own field)."""
    if producer == "gptq":
        return {"quant_method": "gptq", "bits": 4, "group_size": GROUP, "desc_act": False,
                "sym": True, "lm_head": False, "checkpoint_format": "gptq",
                **({"dynamic": {f"-:{_regex(e)}": {} for e in exclusions}} if exclusions else {})}
    if producer == "awq":
        return {"quant_method": "awq", "bits": 4, "group_size": GROUP, "zero_point": True,
                "version": "gemm",
                "modules_to_not_convert": [*target_excl, *(e.rstrip("*") for e in exclusions)]}
    if producer == "auto-round":
        return {"quant_method": "auto-round", "bits": 4, "group_size": GROUP, "sym": True,
                "data_type": "int", "packing_format": "auto_round:auto_gptq",
                "autoround_version": "0.8.0",
                "extra_config": {(_regex(e) if "*" in e else e): {"bits": 16}
                                 for e in [*target_excl, *exclusions]}}
    raise ValueError(f"producer {producer!r} is not one of {INT4_PRODUCERS}")


def _read_raw(path: Any) -> list[tuple[str, T.RawTensor]]:
    """Every tensor of a safetensors file, as written (dtype, shape, bytes)."""
    import json

    blob = path.read_bytes()
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header.pop("__metadata__", None)
    body = blob[8 + n:]
    return [(name, T.RawTensor(h["dtype"], tuple(h["shape"]),
                               body[h["data_offsets"][0]:h["data_offsets"][1]]))
            for name, h in header.items()]


def with_mtp_of(dst: Any, base: Any, mtp_from: Any, is_mtp: Any) -> None:
    """Write ``dst``: ``base``'s config and target tensors, ``mtp_from``'s draft tensors
    (``is_mtp(name)``), e.g. an INT4 MTP inside an NVFP4 or BF16 export. Both are
    single-file checkpoints of the same family."""
    compose(dst, base, [(mtp_from, is_mtp)], drop=is_mtp)


def compose(dst: Any, base: Any, picks: list[tuple[Any, Any]], drop: Any = None) -> None:
    """Write ``dst``: ``base``'s JSON files and tensors, each tensor ``name`` that a pick
    ``(folder, wants)`` wants (``wants(name)``, first pick first) taken from that folder's
    export instead; ``drop(name)``: leave ``base``'s tensor out. Single-file checkpoints of
    one family (e.g. an MTP whose attention comes from an FP8 export, its experts from a
    block-FP8 one, inside an NVFP4 export)."""
    import shutil

    dst.mkdir(parents=True, exist_ok=True)
    for f in base.iterdir():
        if f.suffix == ".json":
            shutil.copy(f, dst / f.name)
    taken: dict[str, T.RawTensor] = {}
    for folder, wants in reversed(picks):
        taken.update((n, t) for n, t in _read_raw(folder / "model.safetensors") if wants(n))
    rows = [(n, taken.pop(n, t)) for n, t in _read_raw(base / "model.safetensors")
            if n in taken or not (drop and drop(n))]
    write_safetensors(dst / "model.safetensors", [*rows, *taken.items()], {"format": "pt"})


def act_order_g_idx(file: Any, tensor: str) -> None:
    """Rewrite ``tensor`` (a ``g_idx`` of `GROUP`-wide groups) in the single-file checkpoint
    ``file`` as an activation-order export stores it: columns quantized in reverse order,
    ``g_idx[i] = (n - 1 - i) // GROUP`` (not the static ``i // GROUP``)."""
    rows = _read_raw(file)
    out = []
    for name, t in rows:
        if name == tensor:
            n = t.shape[0]
            g_idx = ((n - 1 - np.arange(n)) // GROUP).astype("<i4")
            t = T.RawTensor("I32", (n,), g_idx.tobytes())
        out.append((name, t))
    if tensor not in {n for n, _ in rows}:
        raise ValueError(f"{file}: no tensor {tensor}")
    write_safetensors(file, out, {"format": "pt"})
