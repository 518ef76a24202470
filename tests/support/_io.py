"""The suite's checkpoint writes: the demo's writers without the fsync.

A test checkpoint is thrown away with its temporary folder; the rename keeps each
write atomic for a killed process, which is all a test can observe. Skipping the fsync
(up to tens of ms each on a busy disk) keeps thousands of writes cheap.
"""

from __future__ import annotations

import functools

from vllm_draft_quant.demo import tensors as T

write_json = functools.partial(T.write_json, durable=False)
write_safetensors = functools.partial(T.write_safetensors, durable=False)
