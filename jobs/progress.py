"""Counts of a running job: the workers report to one small actor; the driver only reads totals.

The actor also exports the batch metrics on Ray's Prometheus endpoint
(``ray_krllm_batch_*``). The driver polls it every few seconds, logs a progress line and
rewrites ``<output>/progress.json`` (read by whatever watches the job, e.g. the Batch API).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from jobs import io

logger = logging.getLogger(__name__)

NAMESPACE = "krllm-jobs"
PROGRESS_FILE = "progress.json"
LOG_EVERY_S = 10.0


class _Counts:
    """The actor's state (kept as a plain class so it can be tested without Ray)."""

    def __init__(self, job: str, total_done_before: int = 0):
        self.job = job
        self.done_before = total_done_before
        self.ok = self.failed = self.tokens_in = self.tokens_out = 0
        self.first_result: float | None = None
        self.last_result: float | None = None
        self.first_request: float | None = None
        self.retried = 0
        self.reasons: dict[str, list] = {}  # error code -> [rows, first message]
        self._metrics: Any = None

    def add(
        self,
        ok: int = 0,
        failed: int = 0,
        tokens_in: int = 0,
        tokens_out: int = 0,
        first_request: float | None = None,
        retried: int = 0,
        reasons: dict[str, list] | None = None,
    ) -> None:
        if first_request is not None:
            self.first_request = min(first_request, self.first_request or first_request)
        self.retried += retried
        for code, (n, message) in (reasons or {}).items():
            self.reasons.setdefault(code, [0, message])[0] += n
        self.ok += ok
        self.failed += failed
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if ok:
            now = time.time()
            self.first_result = self.first_result or now
            self.last_result = now
        self._export(ok, failed, tokens_in, tokens_out)

    def snapshot(self) -> dict[str, Any]:
        return {
            "rows_ok": self.ok,
            "rows_failed": self.failed,
            "input_tokens": self.tokens_in,
            "output_tokens": self.tokens_out,
            "first_result_at": self.first_result,
            "last_result_at": self.last_result,
            "first_request_at": self.first_request,
            "rows_retried": self.retried,
            # The most frequent first: {code: {"rows": n, "example": first message}}.
            "failures": {
                code: {"rows": n, "example": message}
                for code, (n, message) in sorted(self.reasons.items(), key=lambda kv: -kv[1][0])
            },
        }

    def _export(self, ok: int, failed: int, tokens_in: int, tokens_out: int) -> None:
        if self._metrics is None:
            try:
                from ray.util.metrics import Counter

                self._metrics = (
                    Counter("krllm_batch_rows_total", "Rows finished, by status.", tag_keys=("job", "status")),
                    Counter("krllm_batch_input_tokens_total", "Prompt tokens processed.", tag_keys=("job",)),
                    Counter("krllm_batch_output_tokens_total", "Tokens generated.", tag_keys=("job",)),
                )
            except Exception:  # noqa: BLE001 - metrics are best effort
                self._metrics = False
        if not self._metrics:
            return
        rows, t_in, t_out = self._metrics
        tags = {"job": self.job}
        try:
            if ok:
                rows.inc(ok, {**tags, "status": "ok"})
            if failed:
                rows.inc(failed, {**tags, "status": "failed"})
            if tokens_in:
                t_in.inc(tokens_in, tags)
            if tokens_out:
                t_out.inc(tokens_out, tags)
        except Exception:  # noqa: BLE001
            self._metrics = False


def start(job: str, run: str):
    """Start the progress actor of one run; returns its name."""
    import ray

    name = f"progress-{job}-{run}"
    actor_cls = ray.remote(num_cpus=0, max_restarts=-1)(_Counts)
    handle = actor_cls.options(name=name, namespace=NAMESPACE, lifetime=None).remote(job)
    ray.get(handle.snapshot.remote())
    return name, handle


@functools.lru_cache(maxsize=8)
def _handle(name: str):
    import ray

    return ray.get_actor(name, namespace=NAMESPACE)


def add(name: str, **counts: float | None) -> None:
    """Report counts from a worker, waiting until the actor has them: the driver reads this run's counts
    once the write has finished, and a count still in flight then went missing from the report on a
    loaded machine. Best effort all the same (an unreachable actor loses counts; the parts are the truth)."""
    import ray

    try:
        ray.get(_handle(name).add.remote(**counts), timeout=30)
    except Exception:  # noqa: BLE001
        logger.debug("progress actor %s unreachable", name, exc_info=True)


class Monitor:
    """Driver side: polls the actor, logs, and rewrites progress.json, until stopped."""

    def __init__(self, handle, job: str, root: str, base: dict[str, int] | None = None, every_s: float = LOG_EVERY_S):
        self.handle, self.job, self.root, self.every_s = handle, job, root, every_s
        # Rows an earlier run finished in the same output (progress.json counts the whole output).
        self.base = base or {}
        self.started = time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="krllm-progress", daemon=True)
        self.last: dict[str, Any] = {}

    def __enter__(self) -> Monitor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poll()

    def done(self) -> int:
        return int(self.last.get("rows_ok", 0)) + int(self.last.get("rows_failed", 0))

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.poll()

    def poll(self) -> dict[str, Any]:
        import ray

        try:
            self.last = ray.get(self.handle.snapshot.remote(), timeout=10)
        except Exception:  # noqa: BLE001
            return self.last
        snap = self.last
        elapsed = max(time.time() - self.started, 1e-9)
        done = snap["rows_ok"] + snap["rows_failed"]
        logger.info(
            "job %s progress: %d rows done (%d ok, %d failed), %.1f rows/s, %.0f output tok/s",
            self.job,
            done,
            snap["rows_ok"],
            snap["rows_failed"],
            done / elapsed,
            snap["output_tokens"] / elapsed,
        )
        record = {
            "rows_ok": snap["rows_ok"] + int(self.base.get("rows_ok", 0)),
            "rows_failed": snap["rows_failed"] + int(self.base.get("rows_failed", 0)),
            "updated_at": datetime.now(timezone.utc).isoformat(),
        }
        try:
            io.write_text(self.root, PROGRESS_FILE, json.dumps(record))
        except OSError:
            logger.debug("progress.json not written", exc_info=True)
        return snap
