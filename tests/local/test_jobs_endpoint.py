"""Jobs with the http engine against an OpenAI-compatible endpoint that goes away: the session's real
vLLM server (CPU) killed under running jobs and started again on the same port.

One outage serves two jobs (one vLLM restart instead of two): a job whose retries outlast the
restart, and one whose retry window is over long before it.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

import jobs
from jobs import io
from jobs.spec import JobSpec
from tests.local.jobs_fixtures import ROOT, Job, VllmServer, read_parts, wait_for_part

pytestmark = [pytest.mark.local, pytest.mark.usefixtures("ray_local")]

# Over the server's 2048-token context: vLLM answers 400.
TOO_LONG = "word " * 3000


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


class Outage:
    """Two jobs started against the server; once both have published a part, the server is killed.
    ``outage`` (one retry after 0.2 s) ends while it is down; then the server starts again, on
    the same port, and ``restart`` (retries for 1+2+4+8+10x16 = 175 s, more than a CPU vLLM server
    takes to start again) finishes."""

    def __init__(self, tmp_path: Path, ray_address: str, server: VllmServer):
        server.start()
        # The first prompt is over the server's context: a request the server rejects (400).
        restart_prompts = [TOO_LONG] + [f"Count from {i} to {i + 20}." for i in range(63)]
        outage_prompts = [f"Count from {i} to {i + 20}." for i in range(48)]
        url = server.url
        self.restart = _job(tmp_path, "restart", restart_prompts, url, max_retries=20, retry_backoff_max_s=10)
        self.outage = _job(tmp_path, "outage", outage_prompts, url, max_retries=1, retry_backoff_s=0.2)
        self.restart_rows, self.outage_rows = len(restart_prompts), len(outage_prompts)
        running = [Job(self.restart[2], _env(ray_address)), Job(self.outage[2], _env(ray_address))]
        try:
            wait_for_part(self.restart[1], running[0])
            wait_for_part(self.outage[1], running[1])
            server.stop()
            self.outage_rc, self.outage_err = running[1].wait()
            server.start()
            self.restart_rc, self.restart_err = running[0].wait()
        finally:
            for job in running:
                job.kill()
            server.start()


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory, ray_local: str, vllm_server_proc: VllmServer) -> Outage:
    return Outage(tmp_path_factory.mktemp("outage"), ray_local, vllm_server_proc)


def test_a_restart_within_the_retry_window_loses_nothing(outage: Outage):
    """The server killed mid-job and started again: the requests wait it out, every row lands once; a
    request the server rejects (400) goes to the errors output at once."""
    src, out, _ = outage.restart
    assert outage.restart_rc == 0, outage.restart_err[-3000:]
    rows, errors = read_parts(out, io.DATA_DIR), read_parts(out, io.ERRORS_DIR)
    assert sorted(r["_row_id"] for r in rows) == sorted(f"{src}:{i}" for i in range(1, outage.restart_rows))
    assert [(e["_row_id"], e["error_code"]) for e in errors] == [(f"{src}:0", "http_400")]
    assert "maximum context length" in errors[0]["error"] and "retries" not in errors[0]["error"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["rows_retried"] >= 1, "the kill must land while requests were in flight"
    assert summary["status"] == "succeeded" and summary["rows_failed_by_code"] == {"http_400": 1}


def test_an_outage_longer_than_the_retry_window_fails_rows_and_a_rerun_completes_them(outage: Outage, vllm_server):
    src, out, config = outage.outage
    n = outage.outage_rows
    rows, errors = read_parts(out, io.DATA_DIR), read_parts(out, io.ERRORS_DIR)
    assert errors, "rows were in flight when the server went away"
    assert {e["error_code"] for e in errors} == {"connection_error"}
    assert all(f"POST {vllm_server}/chat/completions" in e["error"] for e in errors)
    assert sorted(r["_row_id"] for r in rows + errors) == sorted(f"{src}:{i}" for i in range(n))
    if outage.outage_rc == 1:  # more than errors.max_error_fraction failed: the job says why, in one line
        err = outage.outage_err
        assert f"connection_error: POST {vllm_server}/chat/completions" in err and "Traceback" not in err
    else:
        assert outage.outage_rc == 0, outage.outage_err[-3000:]

    # Back up: the rerun runs only the failed and unfinished rows, and each row ends in the output once.
    summary = jobs.run(JobSpec.from_yaml(config))
    rows_after = read_parts(out, io.DATA_DIR)
    assert sorted(r["_row_id"] for r in rows_after) == sorted(f"{src}:{i}" for i in range(n))
    assert not read_parts(out, io.ERRORS_DIR)
    assert summary.status == "succeeded" and summary.run["rows_skipped_resumed"] == len(rows)
    assert summary.run["rows_ok"] == n - len(rows)
