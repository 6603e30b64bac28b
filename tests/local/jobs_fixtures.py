"""Fixtures for running real batch jobs on local Ray + vLLM (CPU) with the default model."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.common import free_port, vllm_server_cmd

ROOT = Path(__file__).resolve().parents[2]


def read_parts(out: Path | str, subdir: str) -> list[dict]:
    """Every row of an output folder's parts (tests only: jobs never read their output back like this)."""
    import json

    import pyarrow.parquet as pq

    from jobs import io

    fs, _ = io.filesystem(str(out))
    rows: list[dict] = []
    for path in io.list_parts(str(out), subdir):
        if path.endswith(".parquet"):
            with fs.open_input_file(path) as f:
                rows += pq.read_table(f).to_pylist()
        else:
            with fs.open_input_stream(path) as f:
                rows += [json.loads(line) for line in f.read().decode().splitlines() if line.strip()]
    return rows


@pytest.fixture(scope="session")
def ray_local() -> Iterator[str]:
    """One local Ray cluster for the session; returns its address for subprocess drivers."""
    import ray

    started = not ray.is_initialized()
    if started:
        # Logical CPUs above the 2 physical ones: vLLM's engine, Serve replicas and the light
        # stages can then coexist in one cluster; the real limit is CPU time, not Ray's count.
        ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    if started:
        ray.shutdown()


@pytest.fixture(scope="session")
def model_dir() -> str:
    from llmkit.models import DEFAULT_MODEL, resolve

    return resolve(DEFAULT_MODEL)


# Module scope: the server goes away before the next module starts its own engines (Serve's, a
# job's); four CPU vLLMs at once come close to the test machine's memory.
@pytest.fixture(scope="module")
def vllm_server(model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible vLLM server (CPU) on 127.0.0.1; yields its /v1 base URL."""
    import httpx

    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    cmd = vllm_server_cmd(
        model_dir, "smollm2", port, "--enforce-eager", "--dtype", "float32", "--max-model-len", "2048"
    )
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(2)
        else:
            pytest.fail(f"vLLM server not healthy after 600 s:\n{log.read_text()[-3000:]}")
        yield f"{base}/v1"
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
