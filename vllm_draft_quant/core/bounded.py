"""Bounded, strict JSON decoding of user input (pure: text in, value or `ConfigError` out).

`loads_bounded` refuses, each with one `ConfigError` naming ``origin``: text over
``max_chars``; nesting deeper than ``max_depth``; integers of more than
``max_digits`` digits (Python's own limit raises a bare ``ValueError`` at 4300 and
converting is quadratic); ``NaN``/``Infinity`` (not JSON); and, unless
``duplicates`` is allowed, an object that names a key twice (``json`` silently keeps
the last). `check_depth` is the same depth check for values parsed otherwise (YAML).
"""

from __future__ import annotations

import json
from typing import Any

from vllm_draft_quant.errors import ConfigError

__all__ = ["MAX_DEPTH", "MAX_DIGITS", "check_depth", "loads_bounded"]

MAX_DEPTH = 64
MAX_DIGITS = 64


def check_depth(value: Any, *, origin: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse lists/objects nested deeper than ``max_depth`` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > max_depth:
            raise ConfigError(f"{origin}: nested more than {max_depth} levels deep; "
                              "no config needs that, fix the file")
        stack.extend((c, depth + 1) for c in children)


def _no_duplicates(origin: str) -> Any:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise ConfigError(f"{origin}: key {k!r} appears twice in one object; JSON "
                                  "readers keep only one of them: remove the duplicate")
            out[k] = v
        return out
    return hook


def loads_bounded(text: str, *, origin: str, max_chars: int, max_depth: int = MAX_DEPTH,
                  max_digits: int = MAX_DIGITS, duplicates: bool = False) -> Any:
    """``json.loads`` with the limits above; every failure is one `ConfigError`."""
    if len(text) > max_chars:
        raise ConfigError(f"{origin}: {len(text)} characters, more than the {max_chars} "
                          "this input may have; shorten it")

    def parse_int(s: str) -> int:
        if len(s.lstrip("-")) > max_digits:
            raise ConfigError(f"{origin}: a number of {len(s.lstrip('-'))} digits (limit "
                              f"{max_digits}); write a realistic value")
        return int(s)

    def parse_constant(s: str) -> Any:
        raise ConfigError(f"{origin}: {s} is not a JSON value; write a number")

    try:
        value = json.loads(text, parse_int=parse_int, parse_constant=parse_constant,
                           object_pairs_hook=None if duplicates else _no_duplicates(origin))
    except json.JSONDecodeError as e:
        raise ConfigError(f"{origin}: not valid JSON ({e.msg} at line {e.lineno}, column "
                          f"{e.colno}); fix the syntax") from e
    except RecursionError as e:
        raise ConfigError(f"{origin}: nested too deeply to parse (limit {max_depth}); "
                          "fix the file") from e
    except ValueError as e:  # a float literal too long, a surrogate...
        raise ConfigError(f"{origin}: not valid JSON ({e}); fix the syntax") from e
    check_depth(value, origin=origin, max_depth=max_depth)
    return value
