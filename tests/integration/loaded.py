"""What a built drafter must look like: the checks the drafter-matrix tests share.

``test_more_families.py`` (hand profiles) and ``test_learned_drafters.py`` (learned
mappings) hold the same three things against a `DraftResult` of the build service:

- `assert_stored_precision`: every planned draft module is built in its stored format
  (the stored scheme's quant method and weight dtype; vLLM's fixed layers unquantized)
  and no quantized parameter kept vLLM's -3.4e38 sentinel scale;
- `assert_values_equal`: every parameter of every quantizable planned module equals the
  checkpoint's bytes (``values.py``);
- `assert_stock`: with ``VLLM_DRAFT_QUANT=off`` the recorded stock outcome shows
  (``matrix.Expected``: ok, loud with its error, or silent with the modules vLLM built
  in the wrong precision);

and `target_seen` is what the target-untouched tests compare with the plugin on and off.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from matrix import SCHEME_METHODS, SCHEME_WEIGHT_DTYPE, Expected, assert_loud
from values import load_checkpoint, mismatches

from vllm_draft_quant import Plan

__all__ = [
    "QUANTIZABLE",
    "assert_stock",
    "assert_stored_precision",
    "assert_values_equal",
    "built_quantized",
    "target_seen",
    "weights",
]

#: plan kinds whose parameters the plugin decides (fixed: routers; plain: nn.Linear)
QUANTIZABLE = ("linear", "experts", "lm_head")


def weights(params: Mapping[str, Any],
            suffixes: tuple[str, ...] = ("weight", "weight_packed")) -> list[Any]:
    """The weight parameters of a module (names ending in ``suffixes``; not its scales)."""
    return [p for n, p in params.items() if n.endswith(suffixes) and "scale" not in n]


def built_quantized(m: Any) -> bool:
    """vLLM built ``m`` (a `ModuleInfo`) with quantized weight parameters."""
    return any(p.dtype in ("uint8", "float8_e4m3fn") for p in weights(m.params))


def assert_stored_precision(plan: Plan, result: Any, *, sentinels: bool = True) -> None:
    """Every planned module of ``plan`` is built in its stored precision in ``result``
    (and, with ``sentinels``, no quantized parameter of the drafter kept -3.4e38)."""
    assert result.ok, result.error_text
    for d in plan.modules:
        if d.kind == "plain":
            continue
        m = result.modules.get(d.module)
        if m is None and d.kind == "fixed":  # built with no prefix (MiMo-V2's eh_proj,
            # mimo_v2_mtp.py:MiMoV2MTPLayer.__init__): found by its module path
            m = next((x for x in result.modules.values()
                      if not x.prefix and x.module_path == d.module), None)
        assert m is not None, f"{d.module} planned but vLLM built no such layer"
        if d.kind == "fixed":
            assert m.quant_method and m.quant_method.startswith("Unquantized"), d.module
            continue
        assert m.quant_method and m.quant_method.startswith(SCHEME_METHODS[d.scheme]), (
            d.module, d.scheme, m.quant_method)
        ws = weights(m.params)
        assert ws and all(p.dtype == SCHEME_WEIGHT_DTYPE[d.scheme] for p in ws), (
            d.module, d.scheme, {n: p.dtype for n, p in m.params.items()})
    if sentinels:
        assert result.sentinel_modules() == [], "scales left at -3.4e38"


def assert_values_equal(plan: Plan, result: Any, ckpt: Path,
                        templates: Mapping[str, list[str]],
                        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                        ) -> None:
    """Every parameter of every quantizable planned module holds the checkpoint's bytes
    (``templates``: runtime prefix -> its checkpoint modules, in shard order;
    ``transform``: what the drafter's own ``load_weights`` does to the tensors before
    they reach the layers, applied to the checkpoint's)."""
    assert result.ok, result.error_text
    quantizable = plan.model_copy(
        update={"modules": tuple(d for d in plan.modules if d.kind in QUANTIZABLE)})
    assert quantizable.modules
    tensors = load_checkpoint(ckpt)
    bad = mismatches(quantizable, result.modules, result.load_dump(),
                     transform(tensors) if transform else tensors, templates)
    assert bad == [], bad


def assert_stock(expected: Expected, result: Any, stored: Mapping[str, str],
                 stored_format: Any) -> None:
    """Stock vLLM's outcome ``result`` is ``expected``. ``stored``: planned runtime prefix
    -> stored format (``"unquantized"``, ``"unknown"``, a scheme); ``stored_format``:
    checkpoint module -> ``"bf16"`` or its format (``WrittenCheckpoint.stored_format``)."""
    if expected.outcome == "loud":
        assert_loud(expected, result)
        return
    assert result.ok, result.error_text
    if expected.outcome == "ok":
        assert result.sentinel_modules() == [], "scales left at -3.4e38"
        for prefix, m in result.modules.items():
            if prefix in stored and stored[prefix] != "unknown":
                assert built_quantized(m) == (stored[prefix] != "unquantized"), prefix
        return
    for prefix, ckpt_module in expected.wrong:  # silently wrong: the other precision
        m = result.modules[prefix]
        assert built_quantized(m) != (stored_format(ckpt_module) != "bf16"), (
            prefix, {n: p.dtype for n, p in m.params.items()})


def target_seen(result: Any) -> dict[str, Any]:
    """The target's layers as built: quant method and parameter dtypes per prefix."""
    return {p: (m.quant_method, {n: x.dtype for n, x in m.params.items()})
            for p, m in result.target_modules.items()}
