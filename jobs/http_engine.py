"""The http engine: each row's chat request goes to an OpenAI-compatible endpoint from a Ray Data actor.

Ray Data LLM's HTTP stage raises once a request has used up its retries, and that fails the
whole dataset: one restart of the endpoint would kill a batch of any size. Here a request
that still fails becomes that row's error (``errors/``, with the status and message or the
connection error), and the job goes on.

What is retried, with exponential backoff (``retry_backoff_s`` doubling up to
``retry_backoff_max_s``, ``max_retries`` times): connection errors, timeouts, 408, 409, 429
and 5xx. A 429 or 503 with ``Retry-After`` waits what the server asks. Other 4xx answers
are request errors and go to the errors output at once.

When the endpoint has not answered at all for longer than the retry window, the actor stops
retrying new rows (they fail at once with the same connection error) until it answers
again: an endpoint that is down for the whole job fails the job in one retry window, not
one window per batch.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pyarrow as pa

from jobs.parts import RETRIES
from jobs.spec import HttpEngine

logger = logging.getLogger(__name__)

RETRY_STATUS = frozenset({408, 409, 429})
# A Retry-After longer than this is a server that wants the job to stop, not to wait.
MAX_RETRY_AFTER_S = 300.0


class RequestFailed(Exception):
    """A request that failed for good: ``code`` goes to the error record, the message is the reason."""

    def __init__(self, code: str, message: str, retries: int):
        super().__init__(message)
        self.code, self.retries = code, retries


def retry_window_s(cfg: HttpEngine) -> float:
    """How long a request keeps being retried while the endpoint does not answer (sum of the backoffs)."""
    return sum(_backoff(cfg, attempt) for attempt in range(cfg.max_retries))


def _backoff(cfg: HttpEngine, attempt: int) -> float:
    return min(cfg.retry_backoff_s * 2**attempt, cfg.retry_backoff_max_s)


def retry_after_s(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response) -> str:
    """The server's own words for a failed request: OpenAI's ``error.message``, else the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    detail = body.get("error") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        return str(detail.get("message") or detail)
    if detail:
        return str(detail)
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or body)[:500]


class HttpChat:
    """``map_batches`` actor: a block of parsed rows in, the sink's columns out (one output row per input row)."""

    def __init__(self, cfg: HttpEngine, url: str, model: str, headers: dict[str, str], finish: Callable[..., dict]):
        self.cfg, self.url, self.model, self.headers, self.finish = cfg, url, model, headers, finish
        self.window_s = retry_window_s(cfg)
        self._client = None
        self._down_since: float | None = None  # when the endpoint last stopped answering
        self._next_slot = 0.0  # qps pacing

    def _http(self):
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.cfg.timeout_s, connect=min(10.0, self.cfg.timeout_s)),
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=256),
                headers={"Content-Type": "application/json", **self.headers},
            )
        return self._client

    async def _pace(self) -> None:
        if not self.cfg.qps:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.cfg.qps
        if slot > now:
            await asyncio.sleep(slot - now)

    async def request(self, payload: dict[str, Any]) -> tuple[dict[str, Any], int, float]:
        """POST one chat request with the retry policy; returns (response body, retries, seconds of the
        answered attempt), or raises RequestFailed."""
        import httpx

        body = json.dumps(payload, ensure_ascii=False)
        client = self._http()
        started = time.monotonic()
        attempt = 0
        while True:
            await self._pace()
            t0 = time.monotonic()
            wait: float | None = None
            try:
                response = await client.post(self.url, content=body)
            except httpx.RequestError as e:  # transport errors, and decoding or redirect failures
                now = time.monotonic()
                self._down_since = self._down_since or now
                kind = "timeout" if isinstance(e, httpx.TimeoutException) else "connection_error"
                reason = f"POST {self.url}: {type(e).__name__}: {e or 'no answer'}"
                # Down for longer than a whole retry window: fail fast until the endpoint answers again.
                if attempt >= self.cfg.max_retries or now - self._down_since > self.window_s:
                    raise RequestFailed(
                        kind, f"{reason} (after {attempt} retries, {now - started:.0f} s)", attempt
                    ) from None
            else:
                self._down_since = None
                status = response.status_code
                if status < 400:
                    try:
                        answer = response.json()
                    except ValueError:
                        message = f"{self.url} answered {status} with no JSON"
                        raise RequestFailed("bad_response", message, attempt) from None
                    return answer, attempt, time.monotonic() - t0
                message = f"HTTP {status} from {self.url}: {_error_message(response)}"
                if status not in RETRY_STATUS and status < 500:
                    raise RequestFailed(f"http_{status}", message, attempt)
                if attempt >= self.cfg.max_retries:
                    raise RequestFailed(f"http_{status}", f"{message} (after {attempt} retries)", attempt)
                if status in (429, 503):
                    wait = retry_after_s(response.headers.get("retry-after"))
                    wait = None if wait is None else min(wait, MAX_RETRY_AFTER_S)
            await asyncio.sleep(_backoff(self.cfg, attempt) if wait is None else wait)
            attempt += 1

    async def _one(self, row: dict[str, Any]) -> dict[str, Any]:
        sampling = {k: v for k, v in json.loads(row["_sampling"]).items() if v is not None}
        payload = {"model": self.model, "messages": json.loads(row["_messages"]), **sampling}
        try:
            answer, retries, took = await self.request(payload)
        except RequestFailed as e:
            return {**self.finish(row, {}, str(e), code=e.code), RETRIES: e.retries}
        choices = answer.get("choices") if isinstance(answer, dict) else None
        if not choices:
            message = f"{self.url} answered without choices: {json.dumps(answer)[:300]}"
            return {**self.finish(row, {}, message, code="bad_response"), RETRIES: retries}
        usage = answer.get("usage") or {}
        result = {
            "generated_text": (choices[0].get("message") or {}).get("content") or "",
            "num_input_tokens": int(usage.get("prompt_tokens") or 0),
            "num_generated_tokens": int(usage.get("completion_tokens") or 0),
            "finish_reason": choices[0].get("finish_reason") or "",
        }
        return {**self.finish({**row, "time_taken_llm": took}, result, None), RETRIES: retries}

    async def __call__(self, batch: pa.Table) -> AsyncIterator[pa.Table]:
        from jobs.stages import SINK_SCHEMA

        rows = batch.to_pylist()
        out = await asyncio.gather(*(self._one(row) for row in rows))
        yield pa.Table.from_pylist(out, schema=SINK_SCHEMA)
