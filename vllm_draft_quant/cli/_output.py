"""Small helpers shared by the subcommands: highlighting, a progress bar, the JSON
envelope (`json_document`) and the installed versions (read from package metadata,
never by importing vllm or torch)."""

from __future__ import annotations

import importlib
import json
import os
import sys
import textwrap
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import Any, TextIO

from vllm_draft_quant._version import __version__
from vllm_draft_quant.core.plan import PLAN_SCHEMA_VERSION

__all__ = ["Progress", "dist_version", "highlight", "json_document", "use_color", "wrap"]

WIDTH = 100  # every line the CLI prints fits 100 columns (paths and names excepted)


def dist_version(name: str) -> str | None:
    """An installed distribution's version from its metadata (None if not installed)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def json_document(kind: str, body: Mapping[str, Any]) -> str:
    """``body`` as the JSON a ``--json`` command prints: its own keys first, then
    ``kind`` (plan/fix/graft), ``schema_version`` and the tool and vLLM versions."""
    doc = {**body, "kind": kind, "schema_version": PLAN_SCHEMA_VERSION,
           "tool": "vllm-draft-quant", "tool_version": __version__,
           "vllm_version": dist_version("vllm")}
    return json.dumps(doc, indent=2)


def wrap(text: str, indent: str = "", subsequent: str | None = None) -> str:
    """``text`` wrapped to `WIDTH` columns (long paths stay whole)."""
    return textwrap.fill(text, WIDTH, initial_indent=indent,
                         subsequent_indent=indent if subsequent is None else subsequent,
                         break_long_words=False, break_on_hyphens=False)


def use_color(stream: TextIO) -> bool:
    """ANSI colour only on a terminal, and never with ``NO_COLOR`` set."""
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def highlight(text: str, stream: TextIO, *, code: str = "1;31") -> str:
    return f"\x1b[{code}m{text}\x1b[0m" if use_color(stream) else text


class Progress:
    """A byte progress bar on stderr when it is a terminal: tqdm if installed, else a
    plain percentage line rewritten in place."""

    def __init__(self, total: int, desc: str, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.done, self._shown = desc, max(total, 1), 0, -1
        self.enabled = self.stream.isatty()
        self._bar: Any = None
        if not self.enabled:
            return
        try:
            tqdm = importlib.import_module("tqdm").tqdm
        except ImportError:
            return
        self._bar = tqdm(total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024,
                         file=self.stream, leave=False)

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(n)
            return
        pct = min(100, self.done * 100 // self.total)
        if pct != self._shown:
            self._shown = pct
            self.stream.write(f"\r{self.desc}: {pct:3d}% of {self.total / 2**20:.1f} MiB")
            self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self._shown >= 0:
            self.stream.write("\n")

    def __enter__(self) -> Callable[[int], None]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
