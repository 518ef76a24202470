"""``vllm serve`` for the e2e tier: started once, beside the engine process, stopped by pid.

``start(root)`` writes the served checkpoint and the stand-ins' dist-info under ``root``
and starts the server in its own process group (the API server and the engine core it
starts); ``Server.wait_ready`` polls ``/health``; ``Server.stop`` signals that group by
the server's pid (SIGTERM, then SIGKILL after 30 s). The tier's ``generation`` fixture
starts it before the engine process when ``test_serve.py`` is selected, so the two
start up side by side.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cases

STARTUP_TIMEOUT = float(os.environ.get("VDQ_SERVE_TIMEOUT", 600))
SERVED_CASE = "mimo-nvfp4-bf16mtp"
SERVED_K = 2
MODEL_NAME = "tiny"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        body: bytes = r.read()
        return body.decode()


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    base: str
    log: Path

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                get(f"{self.base}/health")
                return
            except OSError as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"vllm serve not up in {timeout:.0f} s:\n{self.tail()}"
                    ) from e
                time.sleep(2)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group it leads: pgid == its pid
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


def start(root: Path) -> Server:
    root.mkdir(parents=True, exist_ok=True)
    case = next(c for c in cases.CASES if c.key == SERVED_CASE)
    cases.write(case, root)
    plugin_dir = cases.write_stand_in_plugin(root / "plugin_path")
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(cases.REPO), str(plugin_dir)]),
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_DRAFT_QUANT": "auto",
    }
    spec = {"method": "mtp", "num_speculative_tokens": SERVED_K}
    cmd = [
        sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", str(root / case.key),
        "--host", "127.0.0.1", "--port", str(port),
        "--speculative-config", json.dumps(spec),
        "--skip-tokenizer-init", "--trust-remote-code", "--dtype", "bfloat16",
        "--max-model-len", "256", "--max-num-seqs", "4", "--block-size", "32",
        "--enforce-eager", "--compilation-config", json.dumps({"custom_ops": ["none"]}),
        "--load-format", "safetensors", "--served-model-name", MODEL_NAME,
    ]  # fmt: skip
    log = root / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    return Server(proc, f"http://127.0.0.1:{port}", log)
