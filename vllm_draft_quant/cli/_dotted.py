"""vLLM's dotted form of a JSON option: ``--speculative-config.method mtp
--speculative-config.num_speculative_tokens 1`` is ``--speculative-config
'{"method": "mtp", "num_speculative_tokens": 1}'``, as vLLM's own parser reads it
(``utils/argparse_utils.py:FlexibleArgumentParser.parse_args``: each value is JSON when
it parses as JSON, else a string; ``KEY=VALUE`` and nested keys work too)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from vllm_draft_quant.errors import ConfigError

__all__ = ["DOTTED_OPTIONS", "merge_dotted"]

#: the JSON options that also take the dotted form
DOTTED_OPTIONS = ("--speculative-config",)


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def merge_dotted(argv: Sequence[str]) -> list[str]:
    """``argv`` with every dotted ``--option.key value`` folded into one ``--option JSON``."""
    out: list[str] = []
    found: dict[str, dict[str, Any]] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        opt = next((o for o in DOTTED_OPTIONS if arg.startswith(o + ".")), None)
        if opt is None:
            out.append(arg)
            i += 1
            continue
        key_text, eq, value = arg[len(opt) + 1:].partition("=")
        if not eq:
            if i + 1 >= len(argv):
                raise ConfigError(f"{arg}: needs a value, e.g. {opt}.method mtp")
            value, i = argv[i + 1], i + 1
        keys = key_text.split(".")
        if not all(keys):
            raise ConfigError(f"{arg}: empty key; write {opt}.KEY VALUE, e.g. {opt}.method mtp")
        node = found.setdefault(opt, {})
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{arg}: {k!r} was given a value already")
        node[keys[-1]] = _value(value)
        i += 1
    for opt, obj in found.items():
        if any(a == opt or a.startswith(opt + "=") for a in out):
            raise ConfigError(f"{opt}: given both as JSON and in the dotted form "
                              f"({opt}.KEY VALUE); use one of them")
        out += [opt, json.dumps(obj)]
    return out
