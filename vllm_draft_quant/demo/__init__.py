"""What ``vllm-draft-quant demo`` runs (installed; imported only by the demo command).

- `write_demo_checkpoint` (``checkpoint.py``): the tiny Step-3.7-Flash-shaped NVFP4
  checkpoint with a grafted BF16 MTP block, numpy only;
- `build_drafter` (``launcher.py``): builds its drafter through real vLLM on the CPU
  in a fresh Python process running ``worker.py``, plugin off or on;
- ``cpu_shims.py``: the documented CPU stand-ins that worker applies (never the
  plugin's runtime path: only ``worker.py`` imports them).
"""

from vllm_draft_quant.demo.checkpoint import write_demo_checkpoint
from vllm_draft_quant.demo.launcher import BuildRequest, DraftResult, build_drafter

__all__ = ["BuildRequest", "DraftResult", "build_drafter", "write_demo_checkpoint"]
