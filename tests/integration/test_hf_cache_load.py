"""The plugin inside vLLM as a user runs it (issue 16, points 1-3 and 7): a repo id in a
Hugging Face cache laid out as huggingface_hub lays it out, found by vLLM's own loader
with ``--download-dir`` or ``HUGGINGFACE_HUB_CACHE``; the plugin's variables known to
vLLM (``--fail-on-environ-validation``); its lines in vLLM's log format.

Each case is a fresh vLLM process (the cache variables and the plugin's are per
process), started right after collection beside the build workers (`run_aside`).
The checkpoint is the demo's (Step-3.7-shaped NVFP4, BF16 MTP block): stock vLLM
fails on it, the plugin loads every draft module in BF16.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from support.harness import BuildRequest, DraftResult, build_isolated, early_fixture, run_aside

from vllm_draft_quant.demo import write_demo_checkpoint

pytestmark = pytest.mark.integration

REPO = "acme/Tiny-Step-NVFP4"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def hub_cache(hub: Path, src: Path) -> Path:
    """``src`` as snapshot COMMIT of REPO in the cache ``hub``: blobs, relative
    snapshot symlinks, refs/main (huggingface_hub's layout)."""
    repo = hub / ("models--" + REPO.replace("/", "--"))
    snap = repo / "snapshots" / COMMIT
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    snap.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        blob = repo / "blobs" / f"sha-{f.name}"
        shutil.copy(f, blob)
        os.symlink(os.path.relpath(blob, snap), snap / f.name)
    return snap


def _log(result: DraftResult) -> str:
    return Path(result.raw["worker_log"]).read_text(errors="replace")


Built = dict[str, DraftResult]


def _request(target: Path, **engine_args: Any) -> BuildRequest:
    """The target from its folder, the drafter from REPO (``speculative_config.model``):
    vLLM's loader resolves the repo id (its ``download_dir``, the cache variables)."""
    spec = {"method": "mtp", "num_speculative_tokens": 1, "model": REPO}
    return BuildRequest(target, "draft", dump=False,
                        engine_args={"speculative_config": spec, **engine_args})


def start_built(session: pytest.Session, root: Path) -> Callable[[], Built]:
    src = write_demo_checkpoint(root / "src")
    # vLLM reads a repo id's configs through the default cache and its weights through
    # --download-dir: the default cache holds what vLLM's config loading fetched
    configs_only = root / "configs-only"
    configs_only.mkdir()
    for name in ("config.json", "hf_quant_config.json"):
        shutil.copy(src / name, configs_only / name)
    default_cache, download_dir, legacy = root / "hub", root / "download-dir", root / "legacy"
    hub_cache(default_cache, configs_only)
    hub_cache(download_dir, src)
    hub_cache(legacy, src)
    overrides = root / "overrides.json"
    overrides.write_text(json.dumps({"version": 1, "modules": {"model.layers.2.no_such": "fp8"}}))
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(default_cache)}
    by_download_dir = _request(src, download_dir=str(download_dir),
                               fail_on_environ_validation=True)
    jobs: dict[str, Future[list[DraftResult]]] = {
        # plugin on, --download-dir, the plugin's variables set, vLLM strict about variables
        "download_dir": run_aside(
            build_isolated, [by_download_dir], plugin=True, workdir=root / "w1",
            env={**offline, "VLLM_DRAFT_QUANT": "auto",
                 "VLLM_DRAFT_QUANT_OVERRIDES": str(overrides), "VLLM_LOGGING_LEVEL": "INFO"}),
        # plugin on, the whole repo in the cache the legacy variable names
        "legacy_cache": run_aside(
            build_isolated, [_request(src)], plugin=True, workdir=root / "w2",
            env={"HF_HUB_OFFLINE": "1", "HUGGINGFACE_HUB_CACHE": str(legacy),
                 "VLLM_LOGGING_LEVEL": "WARNING"}),
        # stock vLLM (no plugin loaded): the same folders, and VLLM_DRAFT_QUANT set
        "stock": run_aside(
            build_isolated, [_request(src, download_dir=str(download_dir)), by_download_dir],
            plugin=False, workdir=root / "w3", env=offline),
    }

    def collect() -> Built:
        out: Built = {}
        for name, job in jobs.items():
            results = job.result()
            out[name] = results[0]
            if len(results) > 1:
                out[name + "_environ"] = results[1]
        return out

    return collect


built = early_fixture(start_built)


def test_download_dir_loads_with_the_plugin(built: Built) -> None:
    """Old adapter: looked the repo id up again in ~/.cache, ignoring --download-dir,
    raised "not in the Hugging Face cache" and the drafter load failed."""
    r = built["download_dir"]
    assert r.ok, r.error_text
    assert r.modules and not r.quantized_modules()  # every draft module in its stored BF16


def test_stock_vllm_finds_the_same_folder_and_fails_there(built: Built) -> None:
    """Stock vLLM resolved the same --download-dir snapshot: it got as far as loading the
    weights, and failed as the reported bug does."""
    r = built["stock"]
    assert not r.ok and r.error_type == "AssertionError", r.error_text
    assert "mtp_block" in (r.error_module or "")


def test_legacy_cache_variable(built: Built) -> None:
    r = built["legacy_cache"]
    assert r.ok, r.error_text
    assert r.modules and not r.quantized_modules()


def test_plugin_variables_are_known_to_vllm(built: Built) -> None:
    """--fail-on-environ-validation with VLLM_DRAFT_QUANT(_OVERRIDES) set: vLLM starts with
    the plugin, and refuses without it (stock: an unknown VLLM_* variable)."""
    assert "Unknown vLLM environment variable" not in _log(built["download_dir"])
    stock = built["stock_environ"]
    assert not stock.ok and "Unknown vLLM environment variable detected: VLLM_DRAFT_QUANT" in (
        stock.error_message or "") + _log(stock)


def test_logs_through_vllm_logger(built: Built) -> None:
    """One INFO summary line in vLLM's format; the unmatched override is a WARNING in the
    same format (auto mode); VLLM_LOGGING_LEVEL=WARNING hides the INFO line."""
    log = _log(built["download_dir"]).splitlines()
    info = [line for line in log if " INFO " in line and "vllm-draft-quant Step3p5MTP:" in line]
    assert len(info) == 1 and "[draft_load.py:" in info[0], info
    warn = [line for line in log if "matches no draft module" in line]
    assert warn and " WARNING " in warn[0] and "'model.layers.2.no_such'" in warn[0]
    quiet = _log(built["legacy_cache"]).splitlines()
    assert not any("vllm-draft-quant Step3p5MTP:" in line for line in quiet)
