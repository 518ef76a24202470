"""The vLLM releases this release is built and tested against: one constant.

``pyproject.toml``'s ``vllm`` requirement is this same string (a unit test checks it);
the adapter stands aside outside it (`adapter.compat.check_supported`), and the model
of stock vLLM's matching that ``fix`` checks against (`repair.stock`) was measured on
its lower bound. To support a new vLLM minor, see CONTRIBUTING.md, "Bumping vLLM".
"""

from __future__ import annotations

__all__ = ["SUPPORTED_VLLM", "bounds", "measured_on"]

SUPPORTED_VLLM = ">=0.33.0,<0.34"


def _release(text: str) -> tuple[int, ...]:
    parts = tuple(int(p) for p in text.strip().split("."))
    return parts + (0,) * (3 - len(parts))


def bounds() -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(lowest supported release, first unsupported release) of `SUPPORTED_VLLM`."""
    low, high = (s.strip() for s in SUPPORTED_VLLM.split(","))
    return _release(low.removeprefix(">=")), _release(high.removeprefix("<"))


def measured_on() -> str:
    """The vLLM release the recorded stock behaviour was measured on (the lower bound)."""
    return ".".join(map(str, bounds()[0]))
