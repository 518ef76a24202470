"""Run a module with the CPU stand-ins applied: ``python -m vllm_draft_quant.demo.shimmed MODULE ARGS...``.

Test-only, like the ledger it applies (``cpu_shims.py``): it imports vLLM, applies
exactly the shims the build worker applies (`cpu_shims.apply_all`, as
``worker.py:_start`` does), then runs ``MODULE`` as ``__main__`` with ``ARGS``. The test
suite starts the mapping learner's batch door this way
(``tests/support/learning.py``: ``... shimmed vllm_draft_quant.adapter.learn_main --batch
REQUEST.json``), so a drafter the build worker can construct only with a stand-in
(GLM-5 / DeepSeek-V3.2's sparse attention, shim 6) is learned under the same stand-ins
it is built with. The plugin never runs this: the learner P1 runs inside vLLM (and the
CLI's ``plan``) sees vLLM as installed. Set ``VLLM_TARGET_DEVICE=cpu``.
"""

from __future__ import annotations

import runpy
import sys

__all__ = ["main"]


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.stderr.write("usage: python -m vllm_draft_quant.demo.shimmed MODULE [ARGS...]\n")
        raise SystemExit(2)
    from vllm_draft_quant.demo import cpu_shims

    cpu_shims.apply_all()
    sys.argv = argv[1:]
    runpy.run_module(argv[1], run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv)
