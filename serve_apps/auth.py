"""Optional API-key auth for the OpenAI routes, as a pure ASGI middleware.

A pure ASGI middleware (not Starlette's ``BaseHTTPMiddleware``) so that streamed
responses pass through untouched. Keys are read on the ingress replica, from an
environment variable (comma-separated) and/or a file (one key per line, ``#`` comments
allowed), never from the catalog. The file is re-read when it changes, so a rotated
Kubernetes Secret takes effect without a restart.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# Paths that stay open with auth on: probes. (Ray Serve's proxy answers /-/healthz
# and /-/routes itself, before any application code runs.)
OPEN_PATHS = frozenset({"/health", "/-/healthz", "/-/routes"})


class NoApiKeysError(RuntimeError):
    """Auth is on but no key could be found."""


def read_api_keys(api_keys_env: str | None, api_keys_file: str | None) -> set[str]:
    """The accepted keys: from the environment variable and the file, when set."""
    keys: set[str] = set()
    if api_keys_env:
        keys.update(k.strip() for k in os.environ.get(api_keys_env, "").split(","))
    if api_keys_file:
        path = Path(api_keys_file)
        if path.is_file():
            for line in path.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    keys.add(line)
        else:
            logger.warning("API key file %s does not exist", path)
    keys.discard("")
    return keys


def openai_error(message: str, *, type_: str, code: str | int | None, param: str | None = None) -> dict[str, Any]:
    """An error body in the shape the OpenAI API (and its clients) use."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class ApiKeyAuthMiddleware:
    """Reject requests without a valid ``Authorization: Bearer <key>`` with a 401."""

    def __init__(
        self,
        app: Any,
        *,
        api_keys_env: str | None,
        api_keys_file: str | None,
        open_paths: Iterable[str] = OPEN_PATHS,
        reload_interval_s: float = 5.0,
    ) -> None:
        self.app = app
        self._env = api_keys_env
        self._file = api_keys_file
        self._open_paths = frozenset(open_paths)
        self._reload_interval_s = reload_interval_s
        self._file_mtime = self._mtime()
        self._checked_at = time.monotonic()
        self._keys = read_api_keys(api_keys_env, api_keys_file)
        if not self._keys:
            logger.error("API-key auth is on but no keys were found; every request will get 401")

    def _mtime(self) -> float | None:
        try:
            return os.stat(self._file).st_mtime if self._file else None
        except OSError:
            return None

    def _current_keys(self) -> set[str]:
        now = time.monotonic()
        if self._file and now - self._checked_at >= self._reload_interval_s:
            self._checked_at = now
            mtime = self._mtime()
            if mtime != self._file_mtime:
                self._file_mtime = mtime
                self._keys = read_api_keys(self._env, self._file)
                logger.info("reloaded API keys from %s (%d keys)", self._file, len(self._keys))
        return self._keys

    def _authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        value = b""
        for name, raw in headers:
            if name.lower() == b"authorization":
                value = raw
                break
        scheme, _, token = value.decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        token_b = token.encode()
        # Compare against every key, without short-circuiting, in constant time per key.
        ok = False
        for key in self._current_keys():
            ok |= hmac.compare_digest(token_b, key.encode())
        return ok

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") == "OPTIONS":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if path in self._open_paths or self._authorized(scope.get("headers", [])):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            openai_error(
                "Missing or invalid API key. Send 'Authorization: Bearer <key>'.",
                type_="invalid_request_error",
                code="invalid_api_key",
            )
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
