"""Reading an overrides file (``.json``, ``.yaml`` or ``.yml``); the model is `core.overrides`.

The file is user input, read with limits: a regular file only (not ``/dev/zero``, a
FIFO or a folder), at most `MAX_OVERRIDES_BYTES`, nesting at most 16 levels, no
duplicate keys (JSON or YAML), and no YAML aliases or tags (an alias bomb expands a
few lines into gigabytes; an overrides file never needs one). Every failure is one
`ConfigError` naming the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vllm_draft_quant.checkpoint.configs import read_bounded
from vllm_draft_quant.core.bounded import check_depth, loads_bounded
from vllm_draft_quant.core.overrides import parse_overrides
from vllm_draft_quant.errors import ConfigError

if TYPE_CHECKING:
    from vllm_draft_quant.core.overrides_model import Overrides

__all__ = ["MAX_OVERRIDES_BYTES", "load_overrides"]

MAX_OVERRIDES_BYTES = 1 << 20
_DEPTH = 16
_WHERE = "check the path given with --overrides or VLLM_DRAFT_QUANT_OVERRIDES"


def load_overrides(path: str | os.PathLike[str]) -> Overrides:
    """Read and validate an overrides file (``.json``, ``.yaml`` or ``.yml``)."""
    p = Path(path)
    try:
        raw = read_bounded(p, what="overrides", max_bytes=MAX_OVERRIDES_BYTES)
    except ConfigError as e:
        raise ConfigError(f"{e} ({_WHERE})") from e.__cause__
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: the overrides file is not UTF-8 (bad byte at offset "
                          f"{e.start}); save it as UTF-8.") from e
    yaml_file = p.suffix in (".yaml", ".yml")
    data = _load_yaml(text, p) if yaml_file else loads_bounded(
        text, origin=str(p), max_chars=MAX_OVERRIDES_BYTES, max_depth=_DEPTH)
    return parse_overrides(data, str(p))


def _load_yaml(text: str, p: Path) -> Any:
    import yaml

    class _Loader(yaml.SafeLoader):
        """SafeLoader without aliases and without duplicate keys."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise ConfigError(f"{p}: line {event.start_mark.line + 1}: YAML alias "
                                  f"'*{event.anchor}'; overrides files may not use anchors "
                                  "or aliases: write the values out")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen: set[Any] = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if not _hashable(key):
                    continue  # SafeLoader reports the unhashable key itself
                if key in seen:
                    raise ConfigError(f"{p}: line {key_node.start_mark.line + 1}: key "
                                      f"{key!r} appears twice; remove the duplicate")
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    try:
        data = yaml.load(text, Loader=_Loader)
    except ConfigError:
        raise
    except RecursionError as e:
        raise ConfigError(f"{p}: nested too deeply to parse (limit {_DEPTH}); fix the "
                          "file") from e
    except Exception as e:  # yaml.YAMLError and its relatives
        raise ConfigError(f"{p}: not valid YAML ({' '.join(str(e).split())}); fix the "
                          "syntax.") from e
    check_depth(data, origin=str(p), max_depth=_DEPTH)
    return data


def _hashable(key: Any) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True
