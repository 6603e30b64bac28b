"""Jobs that meet the real world: object storage, a killed job resumed while a second run is refused,
a dying engine."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

import jobs
from jobs import io
from jobs.spec import JobSpec
from jobs.workloads.sentiment import LABELS
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


def test_a_killed_job_resumes_over_files_and_folders_and_a_second_run_meanwhile_is_refused(
    tmp_path, ray_local, vllm_server
):
    """A second run on a running job's output is refused; the running one is killed for real (SIGKILL,
    mid-run); once its lease has expired, a rerun takes it over and gives each row exactly once, over
    two folders and three files. The engine is the session's vLLM server: resuming happens before
    the engine stage, so the engine kind does not matter here (a dying in-job engine is below)."""
    prompts = [f"Write one sentence about the number {i}." for i in range(120)]
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "nested").mkdir(parents=True)
    files = [tmp_path / "a" / "one.txt", tmp_path / "a" / "two.jsonl", tmp_path / "b" / "nested" / "three.txt"]
    files[0].write_text("\n".join(prompts[:40]) + "\n")
    files[1].write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts[40:80]))
    files[2].write_text("\n".join(prompts[80:]) + "\n")
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: resume\ninput: {{path: [{tmp_path / 'a'}, {tmp_path / 'b'}]}}\n"
        f"output: {{path: {out}, rows_per_file: 8, lease_ttl_s: 5}}\n"
        f"engine: {{kind: http, batch_size: 4, max_concurrent_batches: 2, http: {{url: '{vllm_server}', model: smollm2}}}}\n"
        "sampling: {max_tokens: 24}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_local, "PYTHONPATH": str(ROOT)}
    first = Job(config, env)
    try:
        deadline = time.monotonic() + 300
        while not (out / "_LEASE").exists():
            assert first.running() and time.monotonic() < deadline
            time.sleep(0.2)
        rc, err = Job(config, env).wait(300)
        assert rc == 75  # EX_TEMPFAIL: not a bad spec (2), try again later
        assert err.strip().count("\n") == 0 and "Traceback" not in err, err
        assert "output is in use by job 'resume'" in err, err
        wait_for_part(out, first)
    finally:
        first.kill()
    killed = {r["_row_id"] for r in read_parts(out, io.DATA_DIR)}
    assert 0 < len(killed) < len(prompts), "the kill must land mid-run"
    assert not (out / "_SUCCESS").exists()

    # The killed run's heartbeat stops; once its TTL has passed, a new run takes over and finishes.
    time.sleep(5)
    summary = jobs.run(JobSpec.from_yaml(config))
    rows = read_parts(out, io.DATA_DIR)
    ids = sorted(r["_row_id"] for r in rows)
    expected = sorted(f"{f}:{i}" for f in files for i in range(40))
    assert ids == expected  # each row exactly once
    assert sorted(r["prompt"] for r in rows) == sorted(prompts)
    assert summary.run["rows_skipped_resumed"] == len(killed)
    assert summary.run["rows_ok"] == len(prompts) - len(killed)
    assert summary.rows_ok == len(prompts) and summary.rows_failed == 0


def _engine_cores() -> set[int]:
    """The vLLM engine processes under this test session (the local Ray cluster is its child), none of
    another user's on the same machine."""
    import psutil

    cores = set()
    for proc in psutil.Process().children(recursive=True):
        try:
            if "VLLM::EngineCore" in " ".join(proc.cmdline()):
                cores.add(proc.pid)
        except psutil.Error:  # exited, or a zombie not yet reaped (an earlier test's server): not a live engine
            pass
    return cores


def test_a_dying_engine_does_not_kill_the_job(tmp_path, ray_local):
    """SIGKILL the vLLM engine process mid-run: the actor is restarted, and each row lands once.

    The job is the sentiment workload, whose guided decoding (a choice of labels) the in-job engine
    must honour before and after the restart."""
    posts = [f"Post {i}: {('I love this', 'This is awful', 'It opens at nine')[i % 3]}." for i in range(120)]
    # Six files, so six blocks: an engine task returns its block's rows only when the whole block is
    # done, and the first part must appear while later blocks still wait for the engine.
    src = tmp_path / "in"
    src.mkdir()
    files = [src / f"posts-{k}.jsonl" for k in range(6)]
    for k, f in enumerate(files):
        f.write_text("".join(json.dumps({"text": p}) + "\n" for p in posts[k * 20 : (k + 1) * 20]))
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: dying\nworkload: {{name: sentiment}}\ninput: {{path: {src}}}\n"
        f"output: {{path: {out}, rows_per_file: 4}}\nengine: {{batch_size: 4, max_concurrent_batches: 2}}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_local, "PYTHONPATH": str(ROOT)}
    before = _engine_cores()
    job = Job(config, env)
    killed = []
    try:
        wait_for_part(out, job)
        for pid in _engine_cores() - before:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        assert killed, "no engine process of this job was found"
        written = len(read_parts(out, io.DATA_DIR))
        assert written < len(posts), "every row was written before the engine was killed: nothing ran mid-run"
        rc, err = job.wait()
    finally:
        job.kill()
    assert rc == 0, err[-3000:]
    # The sink runs in the task that shapes results, on the light stages' CPUs. With Ray's default
    # (one CPU) it is a task of its own that doesn't fit beside a CPU engine on a small machine:
    # no part was written before the engine's last row (seen on 2 CPUs).
    assert "MapBatches(FinishErrors)->Write]" in err, [line for line in err.splitlines() if "Execution plan" in line]
    rows = read_parts(out, io.DATA_DIR)
    assert sorted(r["_row_id"] for r in rows) == sorted(f"{f}:{i}" for f in files for i in range(20))
    assert not read_parts(out, io.ERRORS_DIR)
    assert {r["label"] for r in rows} <= set(LABELS)
    assert all(r["label"] == r["generated_text"].strip() for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["rows_ok"] == len(posts) and summary["status"] == "succeeded"
