"""Run by ``test_scratch.py`` in a child pytest (this file's name keeps it out of the
suite's own collection): makes a folder the way the build service does."""

import os
import tempfile
from pathlib import Path


def test_makes_a_folder() -> None:
    folder = Path(tempfile.mkdtemp(prefix="vdq-probe-"))
    (folder / "data").write_bytes(b"x" * 1024)
    print(f"PROBE {folder}")
    assert os.environ.get("VDQ_PROBE_FAIL") != "1"
