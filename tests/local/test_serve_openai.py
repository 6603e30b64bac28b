"""The serving app on real local Ray + vLLM CPU, through the stock openai client and raw HTTP."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from tests.local.serve_fixtures import LocalServe

pytestmark = [pytest.mark.local, pytest.mark.serve]

TIMEOUT = 300.0
CHAT = [{"role": "user", "content": "Hello!"}]


@pytest.fixture(scope="module")
def client(local_serve: LocalServe) -> openai.OpenAI:
    return openai.OpenAI(base_url=local_serve.base_url, api_key=local_serve.api_key, timeout=TIMEOUT, max_retries=0)


@pytest.fixture(scope="module")
def http(local_serve: LocalServe) -> httpx.Client:
    with httpx.Client(
        base_url=local_serve.root_url,
        headers={"Authorization": f"Bearer {local_serve.api_key}"},
        timeout=TIMEOUT,
    ) as c:
        yield c


# --- discovery and health -------------------------------------------------------------


def test_models_lists_the_catalog(client: openai.OpenAI, local_serve: LocalServe) -> None:
    ids = sorted(m.id for m in client.models.list().data)
    assert ids == sorted(local_serve.models)


@pytest.mark.parametrize("path", ["/health", "/-/healthz"])
def test_health_is_open_without_a_key(local_serve: LocalServe, path: str) -> None:
    r = httpx.get(local_serve.root_url + path, timeout=30)
    assert r.status_code == 200, r.text


# --- auth ------------------------------------------------------------------------------


def test_no_key_gets_401(local_serve: LocalServe) -> None:
    r = httpx.get(local_serve.base_url + "/models", timeout=30)
    assert r.status_code == 401
    body = r.json()
    assert body["error"]["code"] == "invalid_api_key"
    assert body["error"]["message"]
    r = httpx.post(local_serve.base_url + "/chat/completions", json={"model": "x", "messages": CHAT}, timeout=30)
    assert r.status_code == 401


def test_wrong_key_gets_401(local_serve: LocalServe) -> None:
    bad = openai.OpenAI(base_url=local_serve.base_url, api_key="wrong-key", timeout=60, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        bad.chat.completions.create(model=local_serve.models[0], messages=CHAT, max_tokens=4)
    assert e.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


@pytest.mark.parametrize("which", ["env", "file"])
def test_right_key_gets_200(local_serve: LocalServe, which: str) -> None:
    key = local_serve.api_key if which == "env" else local_serve.file_key
    r = httpx.get(local_serve.base_url + "/models", headers={"Authorization": f"Bearer {key}"}, timeout=30)
    assert r.status_code == 200, r.text


# --- chat and completions ----------------------------------------------------------------


def test_chat_answers_the_seed_question(client: openai.OpenAI, local_serve: LocalServe) -> None:
    r = client.chat.completions.create(
        model=local_serve.models[0],
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        temperature=0,
        max_tokens=24,
    )
    assert r.choices[0].finish_reason in ("stop", "length")
    assert "Paris" in r.choices[0].message.content
    assert r.usage.completion_tokens > 0


def test_chat_stream_equals_non_stream(client: openai.OpenAI, local_serve: LocalServe) -> None:
    kw = dict(model=local_serve.models[0], messages=CHAT, temperature=0, max_tokens=32)
    full = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert full and text == full
    assert len(finish) == 1
    # include_usage: one last chunk carries usage and no choices.
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])


def test_completions_stream_equals_non_stream(client: openai.OpenAI, local_serve: LocalServe) -> None:
    kw = dict(model=local_serve.models[1], prompt="The capital of France is", temperature=0, max_tokens=16)
    full = client.completions.create(**kw)
    assert full.choices[0].finish_reason in ("stop", "length")
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **kw))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert full.choices[0].text and text == full.choices[0].text
    assert len(finish) == 1
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_both_catalog_models_answer(client: openai.OpenAI, local_serve: LocalServe) -> None:
    for model in local_serve.models:
        r = client.chat.completions.create(model=model, messages=CHAT, max_tokens=8, temperature=0)
        assert r.model == model
        assert r.choices[0].message.content


def test_32_concurrent_requests_succeed(local_serve: LocalServe) -> None:
    async def one(aclient: openai.AsyncOpenAI, i: int) -> str:
        kw = dict(
            model=local_serve.models[i % 2],
            messages=[{"role": "user", "content": f"Count to {i % 5 + 2}."}],
            max_tokens=8,
        )
        if i % 3 == 0:
            stream = await aclient.chat.completions.create(stream=True, **kw)
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        r = await aclient.chat.completions.create(**kw)
        return r.choices[0].message.content

    async def run() -> list:
        aclient = openai.AsyncOpenAI(
            base_url=local_serve.base_url, api_key=local_serve.api_key, timeout=600, max_retries=0
        )
        async with aclient:
            return await asyncio.gather(*(one(aclient, i) for i in range(32)), return_exceptions=True)

    results = asyncio.run(run())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]
    assert len(results) == 32 and all(results)


# --- bad requests: OpenAI-style 4xx, never a 500 --------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_model_is_404(client: openai.OpenAI, stream: bool) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        client.chat.completions.create(model="no-such-model", messages=CHAT, max_tokens=4, stream=stream)
    assert "no-such-model" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model="no-such-model", prompt="hi", max_tokens=4, stream=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_negative_max_tokens_is_400(client: openai.OpenAI, local_serve: LocalServe, stream: bool) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model=local_serve.models[0], messages=CHAT, max_tokens=-1, stream=stream)
    assert "max_tokens" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=local_serve.models[0], prompt="hi", max_tokens=-1, stream=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_context_too_long_is_400(client: openai.OpenAI, local_serve: LocalServe, stream: bool) -> None:
    long = "hello " * 5000  # over the CPU default max_model_len of 2048 tokens
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(
            model=local_serve.models[0], messages=[{"role": "user", "content": long}], max_tokens=8, stream=stream
        )
    assert "context length" in e.value.body["message"]
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=local_serve.models[1], prompt=long, max_tokens=8, stream=stream)


def test_missing_messages_is_400(client: openai.OpenAI, local_serve: LocalServe) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.post("/chat/completions", body={"model": local_serve.models[0]}, cast_to=httpx.Response, options={})
    assert e.value.body["param"] == "messages"


def _assert_openai_4xx(r: httpx.Response, status: int = 400) -> dict:
    assert r.status_code == status, (r.status_code, r.text)
    err = r.json()["error"]
    assert err["message"] and err["type"]
    return err


@pytest.mark.parametrize(
    "path,content,headers",
    [
        (
            "/v1/chat/completions",
            b'{"model": "smollm2-135m-instruct", "messages": [',
            {"content-type": "application/json"},
        ),
        ("/v1/completions", b'{"model": "smollm2-135m-instruct", "prompt": ', {"content-type": "application/json"}),
        ("/v1/chat/completions", b"not json at all", {}),  # no JSON content type: a 500 in stock Ray
        ("/v1/chat/completions", b"[1, 2]", {"content-type": "application/json"}),
        ("/v1/chat/completions", b"", {"content-type": "application/json"}),
    ],
    ids=["chat-truncated-json", "completions-truncated-json", "no-content-type", "json-array", "empty-body"],
)
def test_malformed_body_is_400(http: httpx.Client, path: str, content: bytes, headers: dict) -> None:
    _assert_openai_4xx(http.post(path, content=content, headers=headers))


@pytest.mark.parametrize(
    "body",
    [
        {"model": "smollm2-135m-instruct", "messages": "hi"},
        {"model": "smollm2-135m-instruct", "messages": []},
        {"model": "smollm2-135m-instruct", "messages": CHAT, "max_tokens": "abc"},
        {"model": "smollm2-135m-instruct", "messages": CHAT, "temperature": -1},
        {"model": "smollm2-135m-instruct", "messages": CHAT, "max_tokens": 10**6},
        {"model": "smollm2-135m-instruct", "messages": CHAT, "n": 0},
        {"messages": CHAT},  # no model while two are served
    ],
    ids=[
        "messages-not-list",
        "messages-empty",
        "max-tokens-not-int",
        "negative-temperature",
        "huge-max-tokens",
        "n-0",
        "no-model",
    ],
)
def test_invalid_chat_requests_are_400(http: httpx.Client, body: dict) -> None:
    _assert_openai_4xx(http.post("/v1/chat/completions", json=body))


def test_unknown_route_and_method_are_openai_shaped(http: httpx.Client) -> None:
    _assert_openai_4xx(http.get("/v1/models/no-such-model"), 404)
    _assert_openai_4xx(http.get("/v1/chat/completions"), 405)


def test_error_body_is_the_openai_shape(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json={"model": "nope", "messages": CHAT})
    err = _assert_openai_4xx(r, 404)
    assert set(err) >= {"message", "type", "param", "code"}
    json.dumps(r.json())
