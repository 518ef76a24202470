"""The tier selection CONTRIBUTING documents: ``-m "not e2e"`` leaves the e2e tier out.

The e2e marker is added at collection (``tests/conftest.py``); added after ``-m``
deselects, it would keep the whole tier in ``-m "not e2e"`` runs and select nothing for
``-m e2e``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_not_e2e_deselects_the_e2e_tier() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", "not e2e", "tests/e2e/test_serve.py", "tests/unit/test_layers.py"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    ids = [line for line in out.stdout.splitlines() if "::" in line]
    assert ids, out.stdout + out.stderr
    assert all(i.startswith("tests/unit/") for i in ids), ids
    assert "deselected" in out.stdout, out.stdout
