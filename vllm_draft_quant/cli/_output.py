"""Small terminal helpers shared by the subcommands: highlighting and a progress bar."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["Progress", "highlight", "use_color"]


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
