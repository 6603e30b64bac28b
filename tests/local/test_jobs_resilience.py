"""Jobs that meet the real world: object storage, a second run on the same output, a dying engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

import jobs
from jobs import io
from jobs.spec import JobSpec
from tests.local.jobs_fixtures import ROOT, Job, read_parts, wait_for_part

pytestmark = [pytest.mark.local, pytest.mark.usefixtures("ray_local")]


def test_a_job_reads_and_writes_s3_and_resumes_there(s3, vllm_server):
    fs, path = io.filesystem(f"{s3}/in/rows.jsonl")
    with fs.open_output_stream(path) as f:
        f.write(b'{"prompt": "What is the capital of France?"}\nnot json\n{"prompt": "Name a colour."}\n')
    out = f"{s3}/out/e2e"
    spec = JobSpec.from_dict(
        {
            "name": "s3",
            "input": {"path": f"{s3}/in/"},
            "output": {"path": out},
            "engine": {"kind": "http", "http": {"url": vllm_server, "model": "smollm2"}},
            "sampling": {"max_tokens": 16},
            "errors": {"max_error_fraction": 0.5},
        }
    )
    summary = jobs.run(spec)
    assert (summary.rows_ok, summary.rows_failed) == (2, 1)
    rows, errors = read_parts(out, io.DATA_DIR), read_parts(out, io.ERRORS_DIR)
    assert {r["_row_id"] for r in rows} == {f"{s3[5:]}/in/rows.jsonl:0", f"{s3[5:]}/in/rows.jsonl:2"}
    assert errors[0]["error_code"] == "invalid_json"
    assert io.read_text(out, "_SUCCESS") == "" and io.read_text(out, "_LEASE") is None
    # The rerun finds the results in the ledger the workers build on S3; the failed row runs again.
    again = jobs.run(spec)
    assert again.run["rows_skipped_resumed"] == 2 and (again.run["rows_ok"], again.run["rows_failed"]) == (0, 1)
    assert len(read_parts(out, io.DATA_DIR)) == 2 and len(read_parts(out, io.ERRORS_DIR)) == 1
    assert again.rows_failed_by_code == {"invalid_json": 1}


def test_a_second_run_on_the_same_output_is_refused_and_a_dead_ones_lease_is_taken_over(
    tmp_path, ray_local, vllm_server
):
    src = tmp_path / "in.txt"
    src.write_text("".join(f"Count to {i}.\n" for i in range(40)))
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: lease\ninput: {{path: {src}}}\noutput: {{path: {out}, rows_per_file: 4, lease_ttl_s: 5}}\n"
        f"engine: {{kind: http, batch_size: 2, http: {{url: '{vllm_server}', model: smollm2}}}}\n"
        "sampling: {max_tokens: 16}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_local, "PYTHONPATH": str(ROOT)}
    first = Job(config, env)
    try:
        deadline = time.monotonic() + 300
        while not (out / "_LEASE").exists():
            assert first.running() and time.monotonic() < deadline
            time.sleep(0.2)
        rc, err = Job(config, env).wait(300)
        assert rc == 2
        assert err.strip().count("\n") == 0 and "Traceback" not in err, err
        assert "output is in use by job 'lease'" in err, err
    finally:
        first.kill()
    # The killed run's heartbeat stops; once its TTL has passed, a new run takes over and finishes.
    time.sleep(5)
    summary = jobs.run(JobSpec.from_yaml(config))
    ids = sorted(r["_row_id"] for r in read_parts(out, io.DATA_DIR))
    assert ids == sorted(f"{src}:{i}" for i in range(40)) and summary.rows_ok == 40


def _engine_cores() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "VLLM::EngineCore"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def test_a_dying_engine_does_not_kill_the_job(tmp_path, ray_local):
    """SIGKILL the vLLM engine process mid-run: the actor is restarted, and each row lands once."""
    prompts = [f"Write one sentence about the number {i}." for i in range(80)]
    src = tmp_path / "in.txt"
    src.write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: dying\ninput: {{path: {src}}}\noutput: {{path: {out}, rows_per_file: 4}}\n"
        "engine: {batch_size: 4, max_concurrent_batches: 2}\nsampling: {max_tokens: 24}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_local, "PYTHONPATH": str(ROOT)}
    before = set(_engine_cores())
    job = Job(config, env)
    killed = []
    try:
        wait_for_part(out, job)
        for pid in set(_engine_cores()) - before:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        assert killed, "no engine process of this job was found"
        rc, err = job.wait()
    finally:
        job.kill()
    assert rc == 0, err[-3000:]
    rows = read_parts(out, io.DATA_DIR)
    assert sorted(r["_row_id"] for r in rows) == sorted(f"{src}:{i}" for i in range(len(prompts)))
    assert not read_parts(out, io.ERRORS_DIR)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_ok"] == len(prompts) and summary["status"] == "succeeded"
