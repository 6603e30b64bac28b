"""The OpenAI Batch API on a real local deployment (SmolLM2 on vLLM CPU), with the stock openai client.

Each batch runs the real batch job (engine http against the same endpoint) on the local Ray cluster.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import openai
import pytest

from tests.local.serve_fixtures import LocalServe
from tests.support import assert_openai_batch_output

pytestmark = [pytest.mark.local, pytest.mark.serve]

ROOT = Path(__file__).resolve().parents[2]
TERMINAL = {"completed", "failed", "expired", "cancelled"}
BATCH_TIMEOUT_S = 900


def requests_for(model: str) -> list[dict]:
    rows = [json.loads(line) for line in (ROOT / "jobs/data/openai_batch.jsonl").read_text().splitlines()]
    for r in rows:
        r["body"]["model"] = model
    return rows


def jsonl(rows: list[dict]) -> io.BytesIO:
    return io.BytesIO(("\n".join(json.dumps(r) for r in rows) + "\n").encode())


LOG_ROOT: list[Path] = []  # the deployment's batches root, for the job's log in failure messages


def job_log_tail(batch_id: str, lines: int = 40) -> str:
    logs = sorted(LOG_ROOT[0].glob(f"runs/{batch_id}/job.log")) if LOG_ROOT else []
    return "\n".join(logs[0].read_text(errors="replace").splitlines()[-lines:]) if logs else "(no job log)"


def wait_for(client: openai.OpenAI, batch_id: str, until, timeout: float = BATCH_TIMEOUT_S, seen: list | None = None):
    deadline = time.monotonic() + timeout
    while True:
        try:
            b = client.batches.retrieve(batch_id)
        except (openai.APIConnectionError, openai.InternalServerError, openai.APITimeoutError):
            b = None  # the ingress is restarting
        if b is not None:
            if seen is not None and (not seen or seen[-1] != b.status):
                seen.append(b.status)
            if until(b):
                return b
            if b.status in TERMINAL:
                pytest.fail(f"batch ended {b.status} while waiting: {b.errors}\n{job_log_tail(batch_id)}")
        if time.monotonic() > deadline:
            pytest.fail(f"batch {batch_id} still {b and b.status} after {timeout} s")
        time.sleep(1)


@pytest.fixture(scope="module")
def client(local_serve: LocalServe) -> openai.OpenAI:
    LOG_ROOT[:] = [local_serve.batches_root]
    return openai.OpenAI(base_url=local_serve.base_url, api_key=local_serve.api_key, timeout=120, max_retries=2)


@pytest.fixture(scope="module")
def other(local_serve: LocalServe) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_serve.base_url, api_key=local_serve.file_key, timeout=120, max_retries=2)


@pytest.fixture(scope="module")
def round_trip(client: openai.OpenAI, local_serve: LocalServe):
    """One batch: the sample requests plus two that the job rejects (they go to the error file)."""
    rows = requests_for(local_serve.models[0])
    bad_body = {**rows[1], "custom_id": "bad-messages", "body": {**rows[1]["body"], "messages": "not a list"}}
    bad_n = {**rows[1], "custom_id": "bad-n", "body": {**rows[1]["body"], "n": 3}}
    f = client.files.create(file=("batch.jsonl", jsonl([*rows, bad_body, bad_n])), purpose="batch")
    b = client.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"test": "round-trip"}
    )
    assert b.status == "validating" and b.input_file_id == f.id
    seen: list[str] = []
    t0 = time.monotonic()
    b = wait_for(client, b.id, lambda b: b.status == "completed", seen=seen)
    print(f"\nround trip: {' -> '.join(seen)} in {time.monotonic() - t0:.0f} s")
    return rows, f, b, seen


def test_round_trip(client: openai.OpenAI, round_trip) -> None:
    rows, f, b, seen = round_trip
    assert seen[-1] == "completed" and "in_progress" in seen
    assert b.metadata == {"test": "round-trip"} and b.endpoint == "/v1/chat/completions"
    assert b.request_counts.total == len(rows) + 2
    assert b.request_counts.completed == len(rows) and b.request_counts.failed == 2
    assert b.created_at <= b.in_progress_at <= b.finalizing_at <= b.completed_at
    out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
    assert_openai_batch_output(out, rows)  # the same checks as the job's own OpenAI batch output
    output_file = client.files.retrieve(b.output_file_id)
    assert output_file.purpose == "batch_output" and output_file.bytes > 0
    assert b.id in [x.id for x in client.batches.list(limit=100)]


def test_invalid_lines_go_to_the_error_file(client: openai.OpenAI, round_trip) -> None:
    _, _, b, _ = round_trip
    errors = [json.loads(x) for x in client.files.content(b.error_file_id).text.splitlines()]
    assert sorted(e["custom_id"] for e in errors) == ["bad-messages", "bad-n"]
    for e in errors:
        assert set(e) == {"id", "custom_id", "response", "error"} and e["response"] is None
        assert e["error"]["code"] and e["error"]["message"]


def test_an_invalid_file_fails_with_errors(client: openai.OpenAI, local_serve: LocalServe) -> None:
    rows = requests_for(local_serve.models[0])
    other_model = {**rows[0], "custom_id": "x", "body": {**rows[0]["body"], "model": "not-served"}}
    content = b"\n".join([json.dumps(rows[0]).encode(), b"this is not json", json.dumps(rows[0]).encode()])
    content += b"\n" + json.dumps(other_model).encode()
    f = client.files.create(file=("bad.jsonl", io.BytesIO(content)), purpose="batch")
    b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    b = wait_for(client, b.id, lambda b: b.status in TERMINAL, timeout=120)
    assert b.status == "failed" and b.failed_at and b.in_progress_at is None
    codes = {(e.code, e.line) for e in b.errors.data}
    assert {("invalid_json_line", 2), ("duplicate_custom_id", 3), ("model_not_found", 4)} <= codes
    assert b.output_file_id is None


def test_another_key_sees_nothing(client: openai.OpenAI, other: openai.OpenAI, round_trip) -> None:
    _, f, b, _ = round_trip
    for call in (
        lambda: other.files.retrieve(f.id),
        lambda: other.files.content(f.id),
        lambda: other.files.content(b.output_file_id),
        lambda: other.batches.retrieve(b.id),
        lambda: other.batches.cancel(b.id),
        lambda: other.files.delete(f.id),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    assert b.id not in [x.id for x in other.batches.list()]
    assert f.id not in [x.id for x in other.files.list()]
    assert client.files.retrieve(f.id).id == f.id  # still there for its owner


def test_unknown_ids_404_and_bad_bodies_400(client: openai.OpenAI, round_trip) -> None:
    _, f, _, _ = round_trip
    for call in (
        lambda: client.batches.retrieve("batch_doesnotexist"),
        lambda: client.batches.cancel("batch_doesnotexist"),
        lambda: client.files.retrieve("file-doesnotexist"),
        lambda: client.files.content("file-doesnotexist"),
    ):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert e.value.status_code == 404
    for kwargs in (
        {"input_file_id": f.id, "endpoint": "/v1/embeddings", "completion_window": "24h"},
        {"input_file_id": f.id, "endpoint": "/v1/chat/completions", "completion_window": "1h"},
        {"input_file_id": f.id, "endpoint": "/v1/chat/completions", "completion_window": "24h", "metadata": "x"},
    ):
        with pytest.raises(openai.BadRequestError) as e:
            client.batches.create(**kwargs)
        assert e.value.status_code == 400
    for body in (b"{", b'{"input_file_id": 1}', b"[]"):
        r = client._client.post(
            str(client.base_url) + "batches",
            content=body,
            headers={"Authorization": f"Bearer {client.api_key}", "Content-Type": "application/json"},
        )
        assert r.status_code == 400 and set(r.json()["error"]) == {"message", "type", "param", "code"}


def _slow_batch(client: openai.OpenAI, model: str, n: int, tokens: int) -> str:
    rows = [
        {
            "custom_id": f"slow-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": model,
                "messages": [{"role": "user", "content": f"Count from {i} to {i + 100}, one number per line."}],
                "max_tokens": tokens,
                "temperature": 0,
            },
        }
        for i in range(n)
    ]
    f = client.files.create(file=("slow.jsonl", jsonl(rows)), purpose="batch")
    return client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h").id


def test_cancel_during_the_run_keeps_partial_output(client: openai.OpenAI, local_serve: LocalServe) -> None:
    n = 48
    batch_id = _slow_batch(client, local_serve.models[0], n, 96)
    b = wait_for(client, batch_id, lambda b: b.status == "in_progress" and b.request_counts.completed >= 1)
    cancelling = client.batches.cancel(batch_id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    b = wait_for(client, batch_id, lambda b: b.status == "cancelled", timeout=300)
    assert b.cancelled_at >= b.cancelling_at
    assert 1 <= b.request_counts.completed < n, b.request_counts
    out = [json.loads(x) for x in client.files.content(b.output_file_id).text.splitlines()]
    assert len(out) == b.request_counts.completed
    assert all(o["response"]["status_code"] == 200 for o in out)


def test_the_batch_survives_a_restart_of_the_service(client: openai.OpenAI, local_serve: LocalServe) -> None:
    import ray

    batch_id = _slow_batch(client, local_serve.models[0], 6, 48)
    wait_for(client, batch_id, lambda b: b.status == "in_progress")
    # Kill the ingress replica (where the API and its reconciler live); Serve starts a new one.
    names = [a for a in ray.util.list_named_actors(all_namespaces=True) if "KrllmIngress" in a["name"]]
    assert names, ray.util.list_named_actors(all_namespaces=True)
    for a in names:
        ray.kill(ray.get_actor(a["name"], namespace=a["namespace"]), no_restart=True)
    b = wait_for(client, batch_id, lambda b: b.status == "completed")
    assert b.request_counts.total == 6
    assert b.request_counts.completed + b.request_counts.failed == 6 and b.request_counts.completed >= 1
    assert batch_id in [x.id for x in client.batches.list(limit=100)]
    assert len(client.files.content(b.output_file_id).text.splitlines()) == b.request_counts.completed
