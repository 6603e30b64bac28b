"""Logging setup for our entrypoints: plain text for people, JSON lines for log pipelines.

``KRLLM_LOG_FORMAT=json`` (the chart sets it) turns every record into one JSON object with
the job id (batch) or request id (serving) when there is one, so logs can be joined with
Ray's own structured logs.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import time

# The current job or request id; set by the batch pipeline and the serving ingress.
_context: contextvars.ContextVar[tuple[tuple[str, str], ...]] = contextvars.ContextVar("krllm_log_context", default=())


def current() -> dict[str, str]:
    return dict(_context.get())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Ids Ray puts on records (its own job id, Serve's request id), then ours, which win.
        for key in ("job_id", "request_id"):
            if getattr(record, key, None):
                entry[key] = getattr(record, key)
        entry.update(current())
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def setup(level: int = logging.INFO, **context: str) -> None:
    """Configure the root logger once per process; ``context`` (e.g. job_id=...) goes on every record."""
    if context:
        bind(**context)
    handler = logging.StreamHandler()
    handler.addFilter(_ContextFilter())
    if os.environ.get("KRLLM_LOG_FORMAT", "text").lower() == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_krllm", False)]:
        root.removeHandler(old)
    handler._krllm = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)


def bind(**context: str) -> None:
    """Add ids (job_id, request_id...) to every later record of this context."""
    _context.set(tuple({**current(), **context}.items()))
