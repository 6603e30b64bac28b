"""Progress while a job runs, Prometheus metrics, and the summary/report written beside the output."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

from jobs import io
from jobs.engine import gpus_per_engine, max_replicas
from jobs.spec import JobSpec

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
SUCCESS_FILE = "_SUCCESS"
LOG_EVERY_S = 10.0


class _Metrics:
    """Batch metrics on Ray's Prometheus endpoint (exported as ray_krllm_batch_*)."""

    def __init__(self, job: str):
        self.tags = {"job": job}
        try:
            from ray.util.metrics import Counter, Gauge

            self.rows = Counter("krllm_batch_rows_total", "Rows finished, by status.", tag_keys=("job", "status"))
            self.tokens_in = Counter("krllm_batch_input_tokens_total", "Prompt tokens processed.", tag_keys=("job",))
            self.tokens_out = Counter("krllm_batch_output_tokens_total", "Tokens generated.", tag_keys=("job",))
            self.pending = Gauge("krllm_batch_rows_pending", "Rows not finished yet.", tag_keys=("job",))
        except Exception:  # noqa: BLE001 - metrics are best effort (no Ray, or Ray not initialized)
            self.rows = None

    def record(self, ok: int, failed: int, tokens_in: int, tokens_out: int, pending: int) -> None:
        if self.rows is None:
            return
        try:
            if ok:
                self.rows.inc(ok, {**self.tags, "status": "ok"})
            if failed:
                self.rows.inc(failed, {**self.tags, "status": "failed"})
            if tokens_in:
                self.tokens_in.inc(tokens_in, self.tags)
            if tokens_out:
                self.tokens_out.inc(tokens_out, self.tags)
            self.pending.set(pending, self.tags)
        except Exception:  # noqa: BLE001
            logger.debug("metrics export failed", exc_info=True)
            self.rows = None


class Progress:
    """Counts of this run, logged every few seconds."""

    def __init__(self, job: str, total: int):
        self.job = job
        self.total = total
        self.ok = self.failed = self.tokens_in = self.tokens_out = 0
        self.started = time.time()
        self.first_result: float | None = None
        self.tokens_at_first_result = 0
        self.last_result: float | None = None
        self._last_log = 0.0
        self._metrics: _Metrics | None = None

    def add(self, ok: int = 0, failed: int = 0, tokens_in: int = 0, tokens_out: int = 0) -> None:
        self.ok += ok
        self.failed += failed
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        if self._metrics is None:
            self._metrics = _Metrics(self.job)
        self._metrics.record(ok, failed, tokens_in, tokens_out, self.total - self.ok - self.failed)

    def end_batch(self) -> None:
        """Mark the end of one result batch; steady-state throughput counts what came after the first."""
        if not self.ok:
            return
        now = time.time()
        if self.first_result is None:
            self.first_result = now
            self.tokens_at_first_result = self.tokens_out
        self.last_result = now

    def maybe_log(self) -> None:
        if time.time() - self._last_log >= LOG_EVERY_S:
            self.log()

    def log(self) -> None:
        self._last_log = time.time()
        elapsed = max(self._last_log - self.started, 1e-9)
        done = self.ok + self.failed
        pct = 100.0 * done / self.total if self.total else 100.0
        logger.info(
            "job %s progress: %d/%d rows (%.0f%%), %d ok, %d failed, %.1f rows/s, %.0f output tok/s",
            self.job,
            done,
            self.total,
            pct,
            self.ok,
            self.failed,
            done / elapsed,
            self.tokens_out / elapsed,
        )


@dataclasses.dataclass
class Summary:
    job: str
    model: str
    engine: str
    device: str | None
    accelerator_type: str | None
    rows_total: int
    rows_ok: int
    rows_failed: int
    input_tokens: int
    output_tokens: int
    run: dict[str, Any]
    output: dict[str, str]
    versions: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("ray", "vllm"):
        try:
            out[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            continue
    return out


def _tokens(record: dict[str, Any]) -> tuple[int, int]:
    if "_tokens" in record:
        return int(record["_tokens"][0]), int(record["_tokens"][1])
    return int(record.get("num_input_tokens") or 0), int(record.get("num_generated_tokens") or 0)


def _merge_openai(spec: JobSpec, order: dict[str, int], results: list[dict], errors: list[dict]) -> dict[str, str]:
    """OpenAI's two files, in input order, without our bookkeeping keys."""

    def lines(records: list[dict]) -> str:
        records = sorted(records, key=lambda r: order.get(str(r[io.ROW_ID]), 1 << 62))
        strip = (io.ROW_ID, "_tokens")
        return "".join(json.dumps({k: v for k, v in r.items() if k not in strip}) + "\n" for r in records)

    return {
        "results": io.write_text(spec.output.path, "output.jsonl", lines(results)),
        "errors": io.write_text(spec.output.path, "errors.jsonl", lines(errors)),
    }


def finalize(
    spec: JobSpec, workload, order: dict[str, int], skipped: int, started: float, progress: Progress, device: str | None
) -> Summary:
    """Count the whole output (all runs), write summary.json and _SUCCESS, and print the summary."""
    out = spec.output.path
    openai = hasattr(workload, "format_result")
    if openai:
        results = io.read_parts(out, io.DATA_DIR)
    else:
        cols = [io.ROW_ID, "num_input_tokens", "num_generated_tokens"]
        results = io.read_parts(out, io.DATA_DIR, cols if spec.output.format == "parquet" else None)
    errors = io.read_parts(out, io.ERRORS_DIR)
    tokens_in = tokens_out = 0
    for record in results:
        a, b = _tokens(record)
        tokens_in += a
        tokens_out += b
    paths = {"results": io.join(out, io.DATA_DIR), "errors": io.join(out, io.ERRORS_DIR)}
    if openai:
        paths = _merge_openai(spec, order, results, errors)

    finished = time.time()
    wall = finished - started
    gpus = gpus_per_engine(spec, device or "cpu") * max_replicas(spec) if spec.engine.kind == "vllm" else 0
    gen_window = (progress.last_result - progress.first_result) if progress.first_result and progress.last_result else 0
    steady_tokens = progress.tokens_out - progress.tokens_at_first_result
    run: dict[str, Any] = {
        "started_at": datetime.fromtimestamp(started, timezone.utc).isoformat(),
        "finished_at": datetime.fromtimestamp(finished, timezone.utc).isoformat(),
        "wall_time_s": round(wall, 3),
        "rows_ok": progress.ok,
        "rows_failed": progress.failed,
        "rows_skipped_resumed": skipped,
        "input_tokens": progress.tokens_in,
        "output_tokens": progress.tokens_out,
        "output_tokens_per_s": round(progress.tokens_out / wall, 2) if wall else 0.0,
        "total_tokens_per_s": round((progress.tokens_in + progress.tokens_out) / wall, 2) if wall else 0.0,
        "time_to_first_result_s": round(progress.first_result - started, 3) if progress.first_result else None,
        "steady_output_tokens_per_s": round(steady_tokens / gen_window, 2) if gen_window >= 0.5 else None,
        "gpus": gpus,
        "gpu_seconds": round(gpus * wall, 1),
    }
    accelerator = spec.engine.accelerator_type
    if accelerator and gpus:
        from llmkit.accelerators import load_catalog

        price = load_catalog().get(accelerator).hourlyPriceUSD
        run["hourly_price_usd_per_gpu"] = price
        run["cost_usd_estimate"] = round(gpus * wall / 3600.0 * price, 4)
        if progress.tokens_out:
            run["cost_usd_per_million_output_tokens"] = round(run["cost_usd_estimate"] / progress.tokens_out * 1e6, 4)
    summary = Summary(
        job=spec.name,
        model=spec.model_name(),
        engine=spec.engine.kind,
        device=device,
        accelerator_type=accelerator,
        rows_total=len(results) + len(errors),
        rows_ok=len(results),
        rows_failed=len(errors),
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        run=run,
        output={**paths, "summary": io.join(out, SUMMARY_FILE)},
        versions=_versions(),
    )
    io.write_text(out, SUMMARY_FILE, summary.to_json())
    io.write_text(out, SUCCESS_FILE, "")
    logger.info(
        "job %s done: %d rows ok, %d failed, %d input / %d output tokens, %.1f s, %.1f output tok/s",
        spec.name,
        summary.rows_ok,
        summary.rows_failed,
        tokens_in,
        tokens_out,
        wall,
        run["output_tokens_per_s"],
    )
    return summary
