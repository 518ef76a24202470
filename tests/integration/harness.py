"""The harness lives in the package (the demo uses it too); tests import it from here."""

from vllm_draft_quant.testing.harness import *  # noqa: F403
from vllm_draft_quant.testing.harness import (  # noqa: F401
    BuildRequest,
    DraftResult,
    ModuleInfo,
    build_drafter,
    build_many,
    build_many_parallel,
    build_target,
    worker_env,
)
