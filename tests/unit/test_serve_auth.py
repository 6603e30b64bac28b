"""API-key auth and OpenAI-shaped errors on the ingress FastAPI app (no Ray cluster)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from fastapi import HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from serve_apps.auth import ApiKeyAuthMiddleware, read_api_keys
from serve_apps.catalog import Auth
from serve_apps.ingress import make_fastapi_app


class Body(BaseModel):
    model: str
    max_tokens: int = 1


def client_for(auth: Auth) -> TestClient:
    app = make_fastapi_app(auth)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/v1/models")
    def models() -> dict:
        return {"data": []}

    @app.post("/v1/chat/completions")
    def chat(body: Body) -> dict:
        if body.model != "known":
            raise HTTPException(404, f"model {body.model} not found")
        return {"ok": True}

    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture
def keys(monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("TEST_KEYS", "env-1, env-2,")
    path = tmp_path / "keys"
    path.write_text("# comment\nfile-1\n\n")
    return path


def test_read_api_keys(keys: Path) -> None:
    assert read_api_keys("TEST_KEYS", str(keys)) == {"env-1", "env-2", "file-1"}
    assert read_api_keys("TEST_KEYS", None) == {"env-1", "env-2"}
    assert read_api_keys(None, str(keys)) == {"file-1"}
    assert read_api_keys("UNSET_VAR_XYZ", "/no/such/file") == set()


def test_auth_off_lets_everything_through() -> None:
    c = client_for(Auth(enabled=False))
    assert c.get("/v1/models").status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong", "Bearer", "Basic env-1", "env-1", "Bearer env-1x", "Bearer file-1 extra"],
)
def test_missing_or_wrong_key_is_401(keys: Path, header: str | None) -> None:
    c = client_for(Auth(enabled=True, api_keys_env="TEST_KEYS", api_keys_file=str(keys)))
    headers = {"Authorization": header} if header else {}
    for r in (c.get("/v1/models", headers=headers), c.post("/v1/chat/completions", json={}, headers=headers)):
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("key", ["env-1", "env-2", "file-1"])
def test_right_key_passes(keys: Path, key: str) -> None:
    c = client_for(Auth(enabled=True, api_keys_env="TEST_KEYS", api_keys_file=str(keys)))
    assert c.get("/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert c.get("/v1/models", headers={"authorization": f"bearer {key}"}).status_code == 200


def test_health_stays_open(keys: Path) -> None:
    c = client_for(Auth(enabled=True, api_keys_env="TEST_KEYS"))
    assert c.get("/health").status_code == 200


def test_no_keys_configured_locks_everything(monkeypatch) -> None:
    monkeypatch.delenv("KRLLM_API_KEYS", raising=False)
    c = client_for(Auth(enabled=True))
    assert c.get("/v1/models", headers={"Authorization": "Bearer "}).status_code == 401
    assert c.get("/health").status_code == 200


def test_key_file_is_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("old\n")
    calls = []

    async def app(scope, receive, send):
        calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    mw = ApiKeyAuthMiddleware(app, api_keys_env=None, api_keys_file=str(path), reload_interval_s=0)
    assert mw._authorized([(b"authorization", b"Bearer old")])
    path.write_text("new\n")
    os.utime(path, (time.time() + 5, time.time() + 5))
    assert mw._authorized([(b"authorization", b"Bearer new")])
    assert not mw._authorized([(b"authorization", b"Bearer old")])


def test_http_errors_use_the_openai_shape() -> None:
    c = client_for(Auth())
    r = c.post("/v1/chat/completions", json={"model": "nope"})
    assert r.status_code == 404
    err = r.json()["error"]
    assert "nope" in err["message"] and err["type"] == "invalid_request_error" and err["code"] == 404
    assert c.get("/no/such/route").status_code == 404
    assert "error" in c.get("/no/such/route").json()
    assert c.get("/v1/chat/completions").status_code == 405


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"content": b"not json", "headers": {}}, "valid dictionary"),
        ({"content": b"\xff\xfe{", "headers": {"content-type": "application/json"}}, "error parsing the body"),
        ({"content": b'{"model": ', "headers": {"content-type": "application/json"}}, "JSON decode error"),
        ({"content": b"", "headers": {"content-type": "application/json"}}, "Field required"),
        ({"json": {"max_tokens": 3}}, "Field required (at model)"),
        ({"json": {"model": "known", "max_tokens": "many"}}, "valid integer"),
        ({"json": [1, 2]}, "valid dictionary"),
    ],
    ids=["no-content-type", "not-utf8", "truncated", "empty", "missing-field", "wrong-type", "array"],
)
def test_bad_bodies_are_400_not_500(kwargs: dict, says: str) -> None:
    c = client_for(Auth())
    r = c.post("/v1/chat/completions", **kwargs)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert says in err["message"], err  # what is wrong with the body, not a generic failure
    assert err["type"] == "invalid_request_error"


def test_missing_field_names_the_param() -> None:
    r = client_for(Auth()).post("/v1/chat/completions", json={"max_tokens": 3})
    assert r.json()["error"]["param"] == "model"
