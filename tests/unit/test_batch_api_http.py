"""The Batch API's HTTP routes with the stock openai client, in process (FastAPI TestClient, fake runner, no Ray)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))
from test_batch_api_helpers import FakeRunner, line, make_service, write_job_output  # noqa: E402

from serve_apps.batches.routes import BATCH_ENDPOINTS, BatchRoutes  # noqa: E402
from serve_apps.batches.runner import RunState  # noqa: E402
from serve_apps.catalog import Auth  # noqa: E402
from serve_apps.ingress import make_fastapi_app  # noqa: E402

KEYS_ENV = "KRLLM_BATCH_UNIT_KEYS"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(KEYS_ENV, "key-a,key-b")
    runner = FakeRunner()
    service = make_service(tmp_path, runner)
    app = make_fastapi_app(Auth(enabled=True, api_keys_env=KEYS_ENV))
    routes = BatchRoutes()
    routes._batch_service = service
    for name, route in BATCH_ENDPOINTS.items():
        route(app)(getattr(routes, name))
    http = TestClient(app, raise_server_exceptions=False)

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url="http://testserver/v1", api_key=key, http_client=http, max_retries=0)

    return client("key-a"), client("key-b"), http, service, runner


def test_round_trip_with_the_stock_client(env) -> None:
    a, _, _, service, runner = env
    f = a.files.create(
        file=("batch.jsonl", io.BytesIO((line("q1") + "\n" + line("q2") + "\n").encode())), purpose="batch"
    )
    assert f.object == "file" and f.purpose == "batch" and f.filename == "batch.jsonl" and f.bytes > 0
    assert a.files.retrieve(f.id).id == f.id
    assert [x.id for x in a.files.list()] == [f.id]
    assert a.files.content(f.id).text.startswith('{"custom_id": "q1"')
    b = a.batches.create(
        input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "1"}
    )
    assert b.status == "validating" and b.metadata == {"run": "1"}
    b = service.reconcile(b.id)
    write_job_output(b.output_path, ["q2", "q1"], [])
    runner.phase[b.id] = RunState("succeeded", 0)
    service.reconcile(b.id)
    b = a.batches.retrieve(b.id)
    assert b.status == "completed" and b.request_counts.completed == 2 and b.error_file_id is None
    out = a.files.content(b.output_file_id).text
    assert sorted(json.loads(x)["custom_id"] for x in out.splitlines()) == ["q1", "q2"]
    assert [x.id for x in a.batches.list(limit=5)] == [b.id]
    assert a.files.delete(f.id).deleted
    with pytest.raises(openai.NotFoundError):
        a.files.retrieve(f.id)


def test_other_key_gets_404_and_sees_nothing(env) -> None:
    a, b_client, _, _, _ = env
    f = a.files.create(file=("x.jsonl", io.BytesIO(line("q").encode())), purpose="batch")
    batch = a.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    for call in (
        lambda: b_client.files.retrieve(f.id),
        lambda: b_client.files.content(f.id),
        lambda: b_client.files.delete(f.id),
        lambda: b_client.batches.retrieve(batch.id),
        lambda: b_client.batches.cancel(batch.id),
    ):
        with pytest.raises(openai.NotFoundError) as e:
            call()
        assert e.value.code == "not_found"
    assert list(b_client.files.list()) == [] and list(b_client.batches.list()) == []


def test_unknown_ids_404_and_bad_bodies_400(env) -> None:
    a, _, http, _, _ = env
    for call in (
        lambda: a.files.retrieve("file-nope"),
        lambda: a.files.content("file-nope"),
        lambda: a.batches.retrieve("batch_nope"),
        lambda: a.batches.cancel("batch_nope"),
        lambda: a.batches.retrieve("../../etc"),
    ):
        with pytest.raises(openai.NotFoundError):
            call()
    with pytest.raises(openai.BadRequestError) as e:
        a.batches.create(input_file_id="file-x", endpoint="/v1/embeddings", completion_window="24h")
    assert e.value.param == "endpoint"
    with pytest.raises(openai.BadRequestError):
        a.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="fine-tune")
    auth = {"Authorization": "Bearer key-a"}
    for method, path, kwargs in [
        ("POST", "/v1/batches", {"content": b"{not json"}),
        ("POST", "/v1/batches", {"json": {"input_file_id": 3}}),
        ("POST", "/v1/batches", {"json": ["a"]}),
        ("POST", "/v1/files", {"json": {"purpose": "batch"}}),
        ("POST", "/v1/files", {"files": {"purpose": (None, "batch")}}),
        ("GET", "/v1/batches?limit=abc", {}),
        ("GET", "/v1/batches?limit=1000", {}),
        ("GET", "/v1/files?order=sideways", {}),
    ]:
        r = http.request(method, path, headers=auth, **kwargs)
        assert r.status_code == 400, (path, kwargs, r.text)
        body = r.json()["error"]
        assert set(body) == {"message", "type", "param", "code"} and body["message"]


def test_auth_applies_to_the_batch_routes(env) -> None:
    *_, http, _, _ = env
    assert http.get("/v1/batches").status_code == 401
    assert http.get("/v1/files", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_oversized_upload_is_refused_up_front(env) -> None:
    _, _, http, service, _ = env
    service.cfg.max_file_bytes = 100
    r = http.post(
        "/v1/files",
        headers={"Authorization": "Bearer key-a"},
        files={"file": ("big.jsonl", b"x" * (2 << 20))},
        data={"purpose": "batch"},
    )
    assert r.status_code == 400 and r.json()["error"]["code"] == "file_too_large"
