"""Test support (never installed; ``tests/conftest.py`` puts ``tests/`` on ``sys.path``).

- ``factory.py`` (re-exported here), ``_families*.py``, ``_formats_more.py``: tiny
  real-format checkpoints of every drafter family and format (numpy only, no torch);
- ``eagle3.py``: tiny Llama targets and EAGLE3 and EAGLE-1 drafts in folders of their own;
- ``synthetic.py``: DeepSeek-V3-scale checkpoints with real headers and no data;
- ``harness.py``: the session's drafter build service (real vLLM on the CPU).

Nothing here downloads anything.
"""

from support import factory
from support.factory import *  # noqa: F403 - the factory's public names are the package's

__all__ = list(factory.__all__)
