"""Imported first by the benchmarks: puts ``tests/`` on ``sys.path`` so they can import the
test suite's ``support`` package (checkpoint factory, synthetic checkpoints), which is
never installed."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
