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

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import agreeing
import cases
import pytest

STARTUP_TIMEOUT = float(os.environ.get("VDQ_SERVE_TIMEOUT", 420))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
        return body.decode()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # the group this test started: pid == pgid
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serve")
    case = next(c for c in cases.CASES if c.key == "mimo-nvfp4-bf16mtp")
    cases.write(case, root)
    model = str(root / case.key)
    plugin_dir = cases.write_stand_in_plugin(root / "plugin_path")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(cases.REPO), str(plugin_dir)]),
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_DRAFT_QUANT": "auto",
    }
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", model,
        "--host", "127.0.0.1", "--port", str(port),
        "--speculative-config", json.dumps({"method": "mtp", "num_speculative_tokens": 2}),
        "--skip-tokenizer-init", "--trust-remote-code", "--dtype", "bfloat16",
        "--max-model-len", "256", "--max-num-seqs", "4", "--block-size", "32",
        "--enforce-eager", "--compilation-config", json.dumps({"custom_ops": ["none"]}),
        "--load-format", "safetensors", "--served-model-name", "tiny",
    ]  # fmt: skip
    log = root / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"vllm serve exited ({proc.returncode}); log ends:\n"
                            f"{log.read_text()[-3000:]}")  # fmt: skip
            try:
                _get(f"{base}/health")
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"vllm serve not up in {STARTUP_TIMEOUT:.0f} s; log ends:\n"
                                f"{log.read_text()[-3000:]}")  # fmt: skip
                time.sleep(2)
        yield {"base": base, "pid": proc.pid, "log": log}
    finally:
        _stop(proc)


def _counter(metrics: str, name: str) -> float:
    values = re.findall(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? ([0-9.e+]+)$", metrics, re.M)
    assert values, f"{name} not in /metrics"
    return sum(float(v) for v in values)


def test_serve_generates_the_reference_and_accepts_every_draft(server: dict[str, Any]) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{server['base']}/v1", api_key="none", timeout=120,
                           max_retries=0)  # fmt: skip
    for prompt in cases.PROMPTS:
        reply = client.completions.create(
            model="tiny", prompt=prompt, max_tokens=cases.MAX_TOKENS, temperature=0.0,
            extra_body={"return_token_ids": True, "ignore_eos": True},
        )  # fmt: skip
        token_ids = (reply.choices[0].model_extra or {}).get("token_ids")
        assert token_ids == agreeing.greedy_continuation(prompt, cases.MAX_TOKENS)
    metrics = _get(f"{server['base']}/metrics")
    drafted = _counter(metrics, "vllm:spec_decode_num_draft_tokens_total")
    accepted = _counter(metrics, "vllm:spec_decode_num_accepted_tokens_total")
    assert drafted > 0 and accepted == drafted, (drafted, accepted)
