"""The http engine's retry policy against a real HTTP server that answers what each test scripts.

vLLM's OpenAI server is used in tests/local (restarts, a prompt over its context); the answers
it can't be made to give on demand (429 with Retry-After, 502/503, a hang) are scripted here.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from jobs import parts
from jobs.http_engine import HttpChat, RequestFailed, retry_after_s, retry_window_s
from jobs.reader import FILE, LINE
from jobs.spec import HttpEngine, JobSpec
from jobs.stages import INPUT, MAX_TOKENS, MESSAGES, PARSED_SCHEMA, SAMPLING, SINK_SCHEMA, Finish, StageContext

ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
}


class Scripted:
    """A local HTTP server: each POST takes the next scripted answer (the last one repeats)."""

    def __init__(self, script: list[dict]):
        self.script, self.hits = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.hits.append(time.monotonic())
                step = outer.script.pop(0) if len(outer.script) > 1 else outer.script[0]
                time.sleep(step.get("delay", 0))
                body = json.dumps(step.get("body", ANSWER)).encode()
                self.send_response(step.get("status", 200))
                for k, v in step.get("headers", {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client timed out first
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/chat/completions"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve():
    servers = []

    def start(*script: dict) -> Scripted:
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _chat(url: str, **cfg) -> HttpChat:
    return HttpChat(HttpEngine(**{"retry_backoff_s": 0.01, **cfg}), url, "m", {}, finish=None)


def _ask(chat: HttpChat):
    return asyncio.run(chat.request({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))


def _error(status: int, message: str) -> dict:
    return {"status": status, "body": {"error": {"message": message, "type": "x", "code": status}}}


def test_5xx_is_retried_until_answered(serve):
    server = serve(_error(503, "loading"), _error(502, "bad gateway"), {"status": 200})
    answer, retries, _ = _ask(_chat(server.url))
    assert answer["choices"][0]["message"]["content"] == "Paris." and retries == 2 and len(server.hits) == 3


def test_429_waits_what_retry_after_asks(serve):
    server = serve({**_error(429, "slow down"), "headers": {"Retry-After": "1"}}, {"status": 200})
    _, retries, _ = _ask(_chat(server.url))
    assert retries == 1 and server.hits[1] - server.hits[0] >= 0.95  # the backoff alone would be 0.01 s


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_request_errors_go_straight_to_the_errors_output(serve, status):
    server = serve(_error(status, "This model's maximum context length is 2048 tokens"))
    with pytest.raises(RequestFailed) as e:
        _ask(_chat(server.url))
    assert e.value.code == f"http_{status}" and e.value.retries == 0 and len(server.hits) == 1
    assert str(e.value) == f"HTTP {status} from {server.url}: This model's maximum context length is 2048 tokens"


def test_retries_stop_at_max_retries(serve):
    server = serve(_error(500, "boom"))
    with pytest.raises(RequestFailed) as e:
        _ask(_chat(server.url, max_retries=2))
    assert e.value.code == "http_500" and e.value.retries == 2 and len(server.hits) == 3
    assert "boom" in str(e.value) and "after 2 retries" in str(e.value)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_endpoint_that_stays_down_fails_fast_after_one_retry_window():
    url = f"http://127.0.0.1:{_closed_port()}/v1/chat/completions"
    chat = _chat(url, max_retries=3, retry_backoff_s=0.1)
    assert retry_window_s(chat.cfg) == pytest.approx(0.7)
    t0 = time.monotonic()
    with pytest.raises(RequestFailed) as first:
        _ask(chat)
    assert first.value.code == "connection_error" and first.value.retries == 3
    assert url in str(first.value) and "ConnectError" in str(first.value)
    assert time.monotonic() - t0 >= 0.7
    # Down for longer than the window: the next row is not retried at all.
    t1 = time.monotonic()
    with pytest.raises(RequestFailed) as second:
        _ask(chat)
    assert second.value.retries == 0 and time.monotonic() - t1 < 0.5


def test_a_hanging_endpoint_times_out(serve):
    server = serve({"status": 200, "delay": 2})
    with pytest.raises(RequestFailed) as e:
        _ask(_chat(server.url, timeout_s=0.3, max_retries=0))
    assert e.value.code == "timeout"


def test_retry_after_takes_seconds_or_a_date():
    assert retry_after_s("3") == 3.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 28 <= retry_after_s(later) <= 30


def test_the_stage_turns_each_row_into_a_result_or_an_error(serve, tmp_path):
    """The whole actor call: a block of parsed rows in, the sink's columns out, failures as error rows."""
    server = serve({"status": 200}, _error(400, "too long"))
    spec = JobSpec.from_dict({"name": "t", "output": {"path": str(tmp_path)}, "engine": {"kind": "http"}})
    ctx = StageContext(spec.model_dump_json(), str(tmp_path), "r", None, None, None, "m")
    chat = HttpChat(HttpEngine(max_retries=0), server.url, "m", {}, finish=Finish(ctx))
    rows = [
        {
            parts.ROW_ID: f"in.txt:{i}",
            FILE: "in.txt",
            LINE: i,
            INPUT: json.dumps({"prompt": f"q{i}"}),
            MESSAGES: json.dumps([{"role": "user", "content": f"q{i}"}]),
            SAMPLING: json.dumps({"max_tokens": 8, "temperature": None}),
            MAX_TOKENS: 8,
        }
        for i in range(2)
    ]

    async def run() -> list[pa.Table]:
        return [t async for t in chat(pa.Table.from_pylist(rows, schema=PARSED_SCHEMA))]

    (out,) = asyncio.run(run())
    assert out.schema == SINK_SCHEMA and out.num_rows == 2
    got = sorted(out.to_pylist(), key=lambda r: r[parts.ERROR] is not None)
    ok, failed = got
    assert ok[parts.ERROR] is None and json.loads(ok[parts.RECORD])["generated_text"] == "Paris."
    assert (ok[parts.TOKENS_IN], ok[parts.TOKENS_OUT], ok[parts.RETRIES]) == (7, 2, 0)
    assert failed[parts.ERROR_CODE] == "http_400" and "too long" in failed[parts.ERROR]
    record = json.loads(failed[parts.RECORD])
    assert record["error_code"] == "http_400" and record[parts.ERROR_CODE] == "http_400"
