"""``vllm serve`` with MTP speculative decoding on a quantized checkpoint, as a user runs it.

The ModelOpt NVFP4 MiMo checkpoint whose MTP layer was grafted in BF16 (the e2e tier's
``mimo-nvfp4-bf16mtp``) is served on 127.0.0.1 with the plugin on; bounded greedy
requests go through the OpenAI client; the draft acceptance counters are read from
``/metrics``; the server is stopped by its process id (its process group: the API
server and the engine core it started).

The CPU stand-ins reach the server's processes (the API server and the engine core
are separate processes) through a test-only ``vllm.general_plugins`` entry point: a
``*.dist-info`` directory written into a temporary folder that only this server's
``PYTHONPATH`` lists (``cases.write_stand_in_plugin``).
Nothing is installed into the environment.
"""

from __future__ import annotations

import re

import agreeing
import cases
import pytest
import serving


@pytest.fixture(scope="module")
def server(server_launch: serving.Server) -> serving.Server:
    try:
        server_launch.wait_ready()
    except RuntimeError as e:
        pytest.fail(str(e))
    return server_launch


def _counter(metrics: str, name: str) -> float:
    values = re.findall(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", metrics, re.M)
    assert values, f"{name} not in /metrics"
    return sum(float(v) for v in values)


def test_serve_generates_the_reference_and_accepts_every_draft(server: serving.Server) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server.base}/v1", api_key="none", timeout=120,
                           max_retries=0)  # fmt: skip
    for prompt in cases.PROMPTS:
        reply = client.completions.create(
            model=serving.MODEL_NAME, prompt=prompt, max_tokens=cases.MAX_TOKENS, temperature=0.0,
            extra_body={"return_token_ids": True, "ignore_eos": True},
        )  # fmt: skip
        token_ids = (reply.choices[0].model_extra or {}).get("token_ids")
        assert token_ids == agreeing.greedy_continuation(prompt, cases.MAX_TOKENS)
    metrics = serving.get(f"{server.base}/metrics")
    drafted = _counter(metrics, "vllm:spec_decode_num_draft_tokens_total")
    accepted = _counter(metrics, "vllm:spec_decode_num_accepted_tokens_total")
    assert drafted > 0 and accepted == drafted, (drafted, accepted)
