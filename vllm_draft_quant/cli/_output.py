"""Small helpers shared by the subcommands: highlighting, byte progress, the JSON
envelope (`json_document`) and the installed versions (read from package metadata,
never by importing vllm or torch)."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import time
from collections.abc import Mapping
from typing import Any, TextIO

from vllm_draft_quant._version import __version__

__all__ = ["Progress", "dist_version", "highlight", "json_document", "use_color", "wrap"]

WIDTH = 100  # every line the CLI prints fits 100 columns (paths and names excepted)


def dist_version(name: str) -> str | None:
    """An installed distribution's version from its metadata (None if not installed)."""
    from importlib import metadata  # not at start-up: it imports the email package

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def json_document(kind: str, body: Mapping[str, Any]) -> str:
    """``body`` as the JSON a ``--json`` command prints: its own keys first, then
    ``kind`` (plan/fix/graft), ``schema_version`` and the tool and vLLM versions."""
    from vllm_draft_quant.core.decisions import PLAN_SCHEMA_VERSION

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
    """Byte progress of a long copy or comparison, on stderr.

    On a terminal: a bar rewritten in place (at most every 0.1 s) that ends in a summary
    line. Otherwise (a log, a pipe): one line at every 10%, then the same summary. The
    summary gives the bytes, the seconds and the throughput, and is written only when
    the work completed (after an error the error line says what happened).
    """

    WIDTH = 24

    def __init__(self, total: int, desc: str, stream: TextIO | None = None, *,
                 done_verb: str = "done") -> None:
        self.stream = stream or sys.stderr
        self.desc, self.total, self.done, self.verb = desc, max(total, 0), 0, done_verb
        self.tty = self.stream.isatty()
        self._start = time.perf_counter()
        self._shown_at = 0.0
        self._decile = 0
        self._drawn = False

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.total:
            return
        if self.tty:
            now = time.perf_counter()
            if now - self._shown_at >= 0.1 or self.done >= self.total:
                self._shown_at = now
                self._draw()
            return
        decile = min(10, self.done * 10 // self.total)
        if decile > self._decile:
            self._decile = decile
            self.stream.write(f"{self.desc}: {decile * 10:3d}% ({_mib(self.done)} of "
                              f"{_mib(self.total)})\n")
            self.stream.flush()

    def _draw(self) -> None:
        frac = min(1.0, self.done / self.total)
        fill = int(frac * self.WIDTH)
        bar = "#" * fill + "." * (self.WIDTH - fill)
        self.stream.write(f"\r{self.desc}: [{bar}] {frac * 100:3.0f}% {_mib(self.done)} of "
                          f"{_mib(self.total)}")
        self.stream.flush()
        self._drawn = True

    def summary(self) -> str:
        """``<desc>: done 1.9 GiB (2,018,508,800 bytes) in 2.31 s, 833.1 MB/s``."""
        secs = max(time.perf_counter() - self._start, 1e-9)
        return (f"{self.desc}: {self.verb} {_mib(self.done)} ({self.done:,} bytes) in "
                f"{secs:.2f} s, {self.done / secs / 1e6:.1f} MB/s")

    def close(self, ok: bool = True) -> None:
        if self.tty and self._drawn:
            self.stream.write("\r\x1b[K" if ok else "\n")
        if ok and self.total:
            self.stream.write(self.summary() + "\n")
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(ok=exc_type is None)


def _mib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
