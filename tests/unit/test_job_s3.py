"""Inputs and outputs on s3:// through pyarrow's S3 filesystem, against a real S3 API server (moto) on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from bench.common import free_port
from jobs import io
from jobs.pipeline import run
from jobs.spec import JobSpec

moto_server = pytest.importorskip("moto.server", reason="moto[server] is a dev dependency (pip install -e .[dev])")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    import boto3

    boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"]).create_bucket(Bucket="llm")
    yield "s3://llm"
    mp.undo()
    server.stop()


def test_read_write_and_ledger_on_s3(s3):
    fs, path = io.filesystem(f"{s3}/in/rows.jsonl")
    with fs.open_output_stream(path) as f:
        f.write(b'{"prompt": "a"}\n{"prompt": "b"}\n')
    assert list(io.read_rows([f"{s3}/in/rows.jsonl"])) == [{"prompt": "a"}, {"prompt": "b"}]
    assert list(io.read_rows([f"{s3}/in/"])) == [{"prompt": "a"}, {"prompt": "b"}]

    out = f"{s3}/out/run-1"
    io.PartWriter(out, io.DATA_DIR, "parquet").write([{io.ROW_ID: "#0", "x": 1}])
    io.PartWriter(out, io.ERRORS_DIR, "jsonl").write([{io.ROW_ID: "#1", "error": "bad"}])
    assert io.finished_ids(out) == {"#0", "#1"}
    io.write_text(out, "summary.json", "{}")
    assert io.read_text(out, "summary.json") == "{}"


def test_a_job_whose_rows_are_all_invalid_runs_end_to_end_on_s3(s3):
    # Every row fails validation, so no engine starts: the whole output path still runs against S3.
    fs, path = io.filesystem(f"{s3}/in/bad.jsonl")
    with fs.open_output_stream(path) as f:
        f.write(b'{"question_text": "no prompt"}\nnot json\n')
    spec = JobSpec.from_dict({"input": {"path": f"{s3}/in/bad.jsonl"}, "output": {"path": f"{s3}/out/bad"}})
    summary = run(spec)
    assert (summary.rows_ok, summary.rows_failed) == (0, 2)
    saved = json.loads(io.read_text(f"{s3}/out/bad", "summary.json"))
    assert saved["rows_failed"] == 2 and io.read_text(f"{s3}/out/bad", "_SUCCESS") == ""
    # Rerun: both rows are already finished, nothing is redone or duplicated.
    again = run(spec)
    assert again.run["rows_skipped_resumed"] == 2 and again.rows_failed == 2
