"""One real local Serve deployment for the serving tests, shared by the whole session.

Two catalog entries on the same SmolLM2 weights (two small vLLM CPU engines, the most
this session starts), with API-key auth on: every test sends a key, and the auth tests
check what happens without one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmkit.models import DEFAULT_MODEL
from tests.support import free_port, llm_entry

MODEL_A = "smollm2-135m-instruct"
MODEL_B = "smollm2-b"
ENV_KEY = "test-key-from-env"
FILE_KEY = "test-key-from-file"
KEYS_ENV_VAR = "KRLLM_SERVE_TEST_API_KEYS"
# Ray workers (the ingress replica among them) inherit the environment of the process that
# starts Ray, which may be another fixture earlier in the session: set the key at import time,
# during collection, before any Ray starts.
os.environ[KEYS_ENV_VAR] = ENV_KEY


@dataclass(frozen=True)
class LocalServe:
    base_url: str  # .../v1
    root_url: str
    api_key: str
    file_key: str
    models: tuple[str, ...]
    batches_root: Path | None = None  # the Batch API's files and state (/v1/files, /v1/batches)


def batches_args(root: Path) -> dict:
    """The Batch API on the test deployment: local runner, quick polling, small engine batches (so a job
    reports progress, and a cancel finds some requests done, within seconds)."""
    return {
        "enabled": True,
        "runner": "local",
        "storage_root": str(root),
        "poll_interval_s": 1,
        "job": {"engine": {"batch_size": 4, "max_concurrent_batches": 1}, "output": {"rows_per_file": 4}},
    }


def test_catalog(key_file: Path) -> dict:
    return {
        "device": "cpu",
        "auth": {"enabled": True, "api_keys_env": KEYS_ENV_VAR, "api_keys_file": str(key_file)},
        "models": [
            llm_entry(MODEL_A, DEFAULT_MODEL, deployment_config={"num_replicas": 1}),
            llm_entry(MODEL_B, DEFAULT_MODEL, deployment_config={"autoscaling_config": {"min_replicas": 1}}),
        ],
    }


@pytest.fixture(scope="session")
def local_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServe]:
    import ray
    from ray import serve

    from serve_apps import local

    key_file = tmp_path_factory.mktemp("serve-auth") / "keys.txt"
    key_file.write_text(f"# test keys\n{FILE_KEY}\n")
    batches_root = tmp_path_factory.mktemp("serve-batches")
    ray_was_up = ray.is_initialized()
    port = free_port()
    t0 = time.monotonic()
    args = {"catalog": test_catalog(key_file), "batches": batches_args(batches_root)}
    base_url = local.start(args, host="127.0.0.1", port=port)
    print(f"\nlocal serve up at {base_url} after {time.monotonic() - t0:.0f} s")
    try:
        yield LocalServe(
            base_url=base_url,
            root_url=base_url.removesuffix("/v1"),
            api_key=ENV_KEY,
            file_key=FILE_KEY,
            models=(MODEL_A, MODEL_B),
            batches_root=batches_root,
        )
    finally:
        if ray_was_up:
            serve.shutdown()
        else:
            local.stop()
