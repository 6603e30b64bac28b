"""Jobs with the http engine against an OpenAI-compatible endpoint that goes away: a real vLLM server
(CPU) killed under a running job and started again on the same port."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import jobs
from jobs import io
from jobs.spec import JobSpec
from tests.local.jobs_fixtures import ROOT, Job, VllmServer, read_parts, wait_for_part

pytestmark = [pytest.mark.local, pytest.mark.usefixtures("ray_local")]

# Over the server's 2048-token context: vLLM answers 400.
TOO_LONG = "word " * 3000


@pytest.fixture(scope="module")
def server(model_dir: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    s = VllmServer(model_dir, tmp_path_factory.mktemp("endpoint") / "server.log")
    try:
        yield s
    finally:
        s.stop()


def _job(tmp_path: Path, name: str, prompts: list[str], url: str, **http) -> tuple[Path, Path, Path]:
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    out = tmp_path / f"{name}-out"
    config = tmp_path / f"{name}.yaml"
    spec = {
        "name": name,
        "input": {"path": str(src)},
        "output": {"path": str(out), "rows_per_file": 4, "lease_ttl_s": 5},
        "engine": {
            "kind": "http",
            "batch_size": 4,
            "max_concurrent_batches": 1,
            "http": {"url": url, "model": "smollm2", **http},
        },
        "sampling": {"max_tokens": 24},
    }
    config.write_text(json.dumps(spec))
    return src, out, config


def _env(ray_address: str) -> dict:
    return {**os.environ, "RAY_ADDRESS": ray_address, "PYTHONPATH": str(ROOT)}


def test_an_endpoint_that_never_answers_fails_the_job_in_one_line(tmp_path, ray_local):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    url = f"http://127.0.0.1:{port}/v1"
    _, out, config = _job(tmp_path, "nowhere", ["Hi.", "Name a colour.", "Name a city."], url, max_retries=2)
    rc, err = Job(config, _env(ray_local)).wait(600)
    assert rc == 1, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    (line,) = [x for x in err.splitlines() if "job failed" in x]
    assert f"all 3 rows failed; 3 connection_error: POST {url}/chat/completions: ConnectError" in line, line
    errors = read_parts(out, io.ERRORS_DIR)
    assert len(errors) == 3 and {e["error_code"] for e in errors} == {"connection_error"}


def test_a_restart_within_the_retry_window_loses_nothing(tmp_path, ray_local, server):
    """Kill the server mid-job and start it again: the requests wait it out, every row lands once; a
    request the server rejects (400) goes to the errors output at once."""
    server.start()
    prompts = [TOO_LONG] + [f"Count from {i} to {i + 20}." for i in range(63)]
    # 1+2+4+8+10x16 = 175 s of retries: more than a CPU vLLM server takes to start again.
    src, out, config = _job(tmp_path, "restart", prompts, server.url, max_retries=20, retry_backoff_max_s=10)
    job = Job(config, _env(ray_local))
    try:
        wait_for_part(out, job)
        server.stop()
        time.sleep(3)
        server.start()
        rc, err = job.wait()
    finally:
        job.kill()
    assert rc == 0, err[-3000:]
    rows, errors = read_parts(out, io.DATA_DIR), read_parts(out, io.ERRORS_DIR)
    assert sorted(r["_row_id"] for r in rows) == sorted(f"{src}:{i}" for i in range(1, len(prompts)))
    assert [(e["_row_id"], e["error_code"]) for e in errors] == [(f"{src}:0", "http_400")]
    assert "maximum context length" in errors[0]["error"] and "retries" not in errors[0]["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["rows_retried"] >= 1, "the kill must land while requests were in flight"
    assert summary["status"] == "succeeded" and summary["rows_failed_by_code"] == {"http_400": 1}


def test_an_outage_longer_than_the_retry_window_fails_rows_and_a_rerun_completes_them(
    tmp_path,
    ray_local,
    server,
):
    server.start()  # a no-op when the previous test left it running
    prompts = [f"Count from {i} to {i + 20}." for i in range(48)]
    src, out, config = _job(tmp_path, "outage", prompts, server.url, max_retries=1, retry_backoff_s=0.2)
    job = Job(config, _env(ray_local))
    try:
        wait_for_part(out, job)
        server.stop()
        rc, err = job.wait()
    finally:
        job.kill()
    rows, errors = read_parts(out, io.DATA_DIR), read_parts(out, io.ERRORS_DIR)
    assert errors, "rows were in flight when the server went away"
    assert {e["error_code"] for e in errors} == {"connection_error"}
    assert all(f"POST {server.url}/chat/completions" in e["error"] for e in errors)
    assert sorted(r["_row_id"] for r in rows + errors) == sorted(f"{src}:{i}" for i in range(len(prompts)))
    if rc == 1:  # more than errors.max_error_fraction failed: the job says why, in one line
        assert f"connection_error: POST {server.url}/chat/completions" in err and "Traceback" not in err

    # Back up: the rerun runs only the failed and unfinished rows, and each row ends in the output once.
    server.start()
    summary = jobs.run(JobSpec.from_yaml(config))
    rows_after = read_parts(out, io.DATA_DIR)
    assert sorted(r["_row_id"] for r in rows_after) == sorted(f"{src}:{i}" for i in range(len(prompts)))
    assert not read_parts(out, io.ERRORS_DIR)
    assert summary.status == "succeeded" and summary.run["rows_skipped_resumed"] == len(rows)
    assert summary.run["rows_ok"] == len(prompts) - len(rows)
