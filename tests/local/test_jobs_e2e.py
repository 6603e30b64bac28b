"""Batch jobs end to end on local Ray with vLLM (CPU) and the real SmolLM2 model."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import jobs
from jobs import io
from jobs.spec import JobSpec
from jobs.workloads.sentiment import LABELS

try:
    from tests.local.jobs_fixtures import ROOT, model_dir, ray_local, vllm_server  # noqa: F401 (fixtures)
except ImportError:
    from jobs_fixtures import ROOT, model_dir, ray_local, vllm_server  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.local, pytest.mark.usefixtures("ray_local")]


def _spec(out: Path, workload: str, **extra) -> JobSpec:
    base = {
        "name": workload.replace("_", "-"),
        "workload": {"name": workload},
        "output": {"path": str(out)},
        "sampling": {"max_tokens": 48},
    }
    for key, value in extra.items():
        base[key] = {**base[key], **value} if isinstance(base.get(key), dict) else value
    return JobSpec.from_dict(base)


def _results(out: Path) -> tuple[list[dict], list[dict]]:
    return io.read_parts(str(out), io.DATA_DIR), io.read_parts(str(out), io.ERRORS_DIR)


def test_chat_answers_and_bad_rows_go_to_errors(tmp_path):
    src = tmp_path / "questions.jsonl"
    good = [json.loads(line) for line in (ROOT / "jobs/data/chat.jsonl").read_text().splitlines()]
    long_prompt = "Repeat after me: " + "lorem ipsum dolor sit amet " * 200
    src.write_text(
        "".join(json.dumps(r) + "\n" for r in good)
        + "{this is not json\n"
        + json.dumps({"id": "no-prompt", "question_text": "where is my prompt?"})
        + "\n"
        + json.dumps({"id": "too-long", "prompt": long_prompt})
        + "\n"
    )
    out = tmp_path / "out"
    summary = jobs.run(
        _spec(
            out,
            "chat",
            input={"path": str(src), "id_column": "id"},
            engine={"engine_kwargs": {"max_model_len": 512}},
            sampling={"max_tokens": 64},
        )
    )
    rows, errors = _results(out)
    answers = {r["id"]: r for r in rows}
    assert set(answers) == {r["id"] for r in good}
    for r in rows:
        assert r["generated_text"].strip(), r
        assert r["prompt"] and r["num_input_tokens"] > 0 and r["num_generated_tokens"] > 0
        assert r["finish_reason"] in ("stop", "length") and r["model"] == "smollm2-135m-instruct"
    assert "4" in answers["q2"]["generated_text"] or "four" in answers["q2"]["generated_text"].lower()
    assert "Paris" in answers["q1"]["generated_text"]

    by_code = {e["error_code"]: e for e in errors}
    assert set(by_code) == {"invalid_json", "missing_field", "inference_error"}, errors
    assert "invalid JSON" in by_code["invalid_json"]["error"]
    assert by_code["missing_field"]["id"] == "no-prompt"
    too_long = by_code["inference_error"]
    assert too_long["id"] == "too-long" and "maximum context length is 512" in too_long["error"]

    assert (summary.rows_ok, summary.rows_failed, summary.rows_total) == (len(good), 3, len(good) + 3)
    saved = json.loads((out / "summary.json").read_text())
    assert saved["rows_ok"] == len(good) and saved["output_tokens"] == sum(r["num_generated_tokens"] for r in rows)
    assert saved["run"]["wall_time_s"] > 0 and saved["device"] == "cpu"
    assert (out / "_SUCCESS").exists()


@pytest.mark.parametrize("workload", ["creative", "sentiment", "summarize", "context_qa"])
def test_workload_on_sample_data(tmp_path, workload):
    out = tmp_path / "out"
    extra = {}
    data = None
    if workload == "creative":
        extra["output"] = {"format": "jsonl"}
    if workload == "context_qa":
        # In-memory input through the Python API.
        data = pd.read_json(ROOT / "jobs/data/context_qa.jsonl", lines=True)
    summary = jobs.run(_spec(out, workload, **extra), data=data)
    rows, errors = _results(out)
    assert not errors, errors
    assert summary.rows_ok == len(rows) >= 3
    for r in rows:
        assert r["generated_text"].strip(), r
        assert "id" in r  # input columns are kept
    if workload == "creative":
        assert all(p.endswith(".jsonl") for p in io.list_parts(str(out), io.DATA_DIR))
    if workload == "sentiment":
        assert {r["label"] for r in rows} <= set(LABELS)
        assert all(r["label"] == r["generated_text"].strip() for r in rows)
    if workload == "summarize":
        assert all(r["summary"] and r["highlights"] for r in rows)


def test_openai_batch_round_trip(tmp_path):
    src = tmp_path / "batch.jsonl"
    lines = (ROOT / "jobs/data/openai_batch.jsonl").read_text().splitlines()
    requests = [json.loads(line) for line in lines]
    bad_url = {**requests[0], "custom_id": "bad-url", "url": "/v1/embeddings"}
    duplicate = {**requests[1]}
    src.write_text("\n".join(lines + [json.dumps(bad_url), "not json at all", json.dumps(duplicate)]) + "\n")
    out = tmp_path / "out"
    jobs.run(_spec(out, "openai_batch", input={"path": str(src)}))

    output = [json.loads(line) for line in (out / "output.jsonl").read_text().splitlines()]
    assert [o["custom_id"] for o in output] == [r["custom_id"] for r in requests]
    for o in output:
        assert set(o) == {"id", "custom_id", "response", "error"} and o["error"] is None
        assert o["id"].startswith("batch_req_")
        resp = o["response"]
        assert set(resp) == {"status_code", "request_id", "body"} and resp["status_code"] == 200
        body = resp["body"]
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"].strip()
        assert body["choices"][0]["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    capital = next(o for o in output if o["custom_id"] == "request-1")
    assert "Paris" in capital["response"]["body"]["choices"][0]["message"]["content"]

    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {(e["custom_id"], e["error"]["code"]) for e in errors} == {
        ("bad-url", "invalid_url"),
        (None, "invalid_json"),
        (requests[1]["custom_id"], "duplicate_id"),
    }
    for e in errors:
        assert set(e) == {"id", "custom_id", "response", "error"} and e["response"] is None


def test_resume_after_a_real_kill(tmp_path, ray_local):
    prompts = [f"Write one sentence about the number {i}." for i in range(120)]
    src = tmp_path / "prompts.txt"
    src.write_text("\n".join(prompts) + "\n")
    out = tmp_path / "out"
    config = tmp_path / "job.yaml"
    config.write_text(
        f"name: resume\ninput: {{path: {src}}}\noutput: {{path: {out}, rows_per_file: 8, flush_interval_s: 1}}\n"
        "engine: {batch_size: 4, max_concurrent_batches: 2}\nsampling: {max_tokens: 24}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": ray_local, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "jobs", "run", "-c", str(config)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 900
        while not io.list_parts(str(out), io.DATA_DIR):
            assert proc.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "no output part appeared"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    first = {r[io.ROW_ID] for r in io.read_parts(str(out), io.DATA_DIR)}
    assert 0 < len(first) < len(prompts), "the kill must land mid-run"
    assert not (out / "_SUCCESS").exists()

    summary = jobs.run(JobSpec.from_yaml(config))
    ids = [r[io.ROW_ID] for r in io.read_parts(str(out), io.DATA_DIR)]
    assert sorted(ids, key=lambda s: int(s[1:])) == [f"#{i}" for i in range(len(prompts))]  # each row exactly once
    assert summary.run["rows_skipped_resumed"] == len(first)
    assert summary.run["rows_ok"] == len(prompts) - len(first)
    assert summary.rows_ok == len(prompts) and summary.rows_failed == 0


def test_http_engine_against_a_real_vllm_server(tmp_path, vllm_server):
    out = tmp_path / "chat"
    http = {"kind": "http", "http": {"url": vllm_server, "model": "smollm2"}}
    summary = jobs.run(_spec(out, "chat", engine=http, sampling={"max_tokens": 48}))
    rows, errors = _results(out)
    assert not errors and summary.rows_ok == len(rows) == 8
    assert all(r["generated_text"].strip() and r["num_generated_tokens"] > 0 for r in rows)
    assert "Paris" in next(r for r in rows if r["id"] == "q1")["generated_text"]

    out = tmp_path / "sentiment"
    jobs.run(_spec(out, "sentiment", engine=http))
    rows, errors = _results(out)
    assert not errors and {r["label"] for r in rows} <= set(LABELS) and len(rows) == 8

    # A bad request (prompt over the server's context) is an error row, not a dead job.
    out = tmp_path / "bad"
    jobs.run(_spec(out, "chat", engine=http, sampling={"max_tokens": 4000}), data=["Hello!"])
    rows, errors = _results(out)
    assert not rows and len(errors) == 1 and "HTTP endpoint error" in errors[0]["error"]
