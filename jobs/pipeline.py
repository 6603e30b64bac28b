"""``run(spec)``: read -> parse -> process (Ray Data LLM) -> postprocess -> write -> report.

Rows are read and parsed on the driver, in a stable order, so every row gets a stable
id (its ``input.id_column``, its OpenAI ``custom_id``, or its position). Rows that
can't be parsed go straight to the errors output; the rest stream through the Ray
Data LLM processor, and the driver writes results in atomic part files as they come.
A rerun with the same spec skips every id already in a part: the output then holds
each input row exactly once.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import time
from collections.abc import Iterable
from typing import Any

from jobs import io, report
from jobs.engine import (
    RANDOM_SEED,
    batch_size_for,
    build_processor,
    resolve_device,
    sampling_defaults_for_missing_keys,
)
from jobs.spec import JobSpec
from jobs.startup import Warmup
from jobs.workloads import RowError, Workload, get_workload
from llmkit import logs, models
from llmkit.config import ConfigError

logger = logging.getLogger(__name__)

SPEC_FILE = "_job.json"


class JobFailed(RuntimeError):
    """The job ran but its outcome breaks the spec's error policy."""


def _fingerprint(spec: JobSpec) -> str:
    """What decides the results: a resumed run must agree on it, or the output would mix two jobs."""
    decisive = spec.model_dump(
        mode="json", include={"model", "workload", "system_prompt", "prompt_template", "sampling", "input"}
    )
    return hashlib.sha256(json.dumps(decisive, sort_keys=True).encode()).hexdigest()[:16]


def _prepare_output(spec: JobSpec) -> set[str]:
    """Apply the resume policy; return the ids already finished."""
    out = spec.output.path
    previous = io.read_text(out, SPEC_FILE)
    has_parts = bool(io.list_parts(out, io.DATA_DIR) or io.list_parts(out, io.ERRORS_DIR))
    mode = spec.resume.mode
    if mode == "overwrite" and (has_parts or previous):
        logger.info("resume.mode=overwrite: clearing %s", out)
        io.clear(out)
        has_parts, previous = False, None
    if has_parts and mode == "fail":
        raise ConfigError(f"output.path {out!r} already holds results and resume.mode is 'fail'")
    fingerprint = _fingerprint(spec)
    if has_parts and previous and json.loads(previous).get("fingerprint") != fingerprint:
        raise ConfigError(
            f"output.path {out!r} holds results of a different job (model, workload, prompts, sampling or input "
            "changed); use a new output.path, or resume.mode=overwrite"
        )
    io.write_text(
        out, SPEC_FILE, json.dumps({"fingerprint": fingerprint, "spec": spec.model_dump(mode="json")}, indent=2)
    )
    done = io.finished_ids(out) if has_parts else set()
    if done:
        logger.info("resuming: %d rows already finished in %s", len(done), out)
    return done


def _records(data: Any) -> Iterable[dict[str, Any]]:
    """In-memory input: a list of dicts/strings or a pandas DataFrame."""
    if hasattr(data, "to_dict") and hasattr(data, "columns"):
        return data.to_dict(orient="records")
    return ({"prompt": r} if isinstance(r, str) else r for r in data)


class _Prepared:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.order: dict[str, int] = {}
        self.skipped = 0
        self.total = 0


def _prepare_rows(spec: JobSpec, workload: Workload, rows: Iterable[dict[str, Any]], done: set[str]) -> _Prepared:
    prep = _Prepared()
    defaults = {k: v for k, v in spec.sampling.model_dump().items() if v is not None}
    id_column = spec.input.id_column
    own_id = (lambda r: r.get(id_column)) if id_column else getattr(workload, "row_id", lambda r: None)
    seen: set[str] = set()
    for index, row in enumerate(rows):
        if spec.input.limit is not None and index >= spec.input.limit:
            break
        prep.total += 1
        own = None if io.MALFORMED in row else own_id(row)
        duplicate = own is not None and str(own) in seen
        rid = str(own) if own is not None and not duplicate else f"#{index}"
        seen.add(rid)
        prep.order[rid] = index
        if rid in done:
            prep.skipped += 1
            continue
        try:
            if io.MALFORMED in row:
                raise RowError(row[io.MALFORMED], code="invalid_json")
            if id_column and own is None:
                raise RowError(f"missing id column {id_column!r}", code="missing_field")
            if duplicate:
                raise RowError(f"duplicate id {own!r}: ids must be unique", code="duplicate_id")
            messages = workload.parse_row(row)
            sampling = {**defaults, **workload.sampling_overrides(row)}
        except RowError as e:
            prep.errors.append(_error_record(workload, rid, row, e.code, str(e)))
            continue
        prep.items.append(
            {
                io.ROW_ID: rid,
                "_input": json.dumps(row, default=str, ensure_ascii=False),
                "_messages": messages,
                "_sampling": sampling,
                "_max_tokens": int(sampling.get("max_tokens") or 16),
            }
        )
    # Arrow turns a key some rows lack into null; give those rows vLLM's default instead.
    keys = [set(it["_sampling"]) for it in prep.items]
    union = set().union(*keys) if keys else set()
    partial = {k for k in union if any(k not in ks for ks in keys)}
    fill = sampling_defaults_for_missing_keys(partial)
    for it in prep.items:
        sampling = {**fill, **it["_sampling"]}
        if sampling.get("seed") == RANDOM_SEED:
            sampling["seed"] = random.randrange(2**31)
        it["_messages"] = json.dumps(it["_messages"], ensure_ascii=False)
        it["_sampling"] = json.dumps(sampling, default=str)
    return prep


def _error_record(workload: Workload, rid: str, row: dict[str, Any] | None, code: str, message: str) -> dict[str, Any]:
    clean = {k: v for k, v in (row or {}).items() if k != io.MALFORMED}
    if hasattr(workload, "format_error"):
        record = workload.format_error(clean, code, message)
    else:
        record = {**clean, "error_code": code, "error": message}
    return {io.ROW_ID: rid, **record}


def _result_record(workload: Workload, spec: JobSpec, item: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    row = json.loads(item["_input"])
    text = result["generated_text"]
    base = {
        "generated_text": text,
        "num_input_tokens": result["num_input_tokens"],
        "num_generated_tokens": result["num_generated_tokens"],
        "finish_reason": result["finish_reason"],
        "model": spec.model_name(),
    }
    if hasattr(workload, "format_result"):
        record = workload.format_result(row, base)
        record["_tokens"] = [base["num_input_tokens"], base["num_generated_tokens"]]
    else:
        record = {**row, **base, **workload.postprocess(row, text)}
    return {io.ROW_ID: item[io.ROW_ID], **record}


def run(spec: JobSpec, data: Any = None) -> report.Summary:
    """Run a batch job. ``data`` (a list of rows or prompts, or a DataFrame) replaces ``spec.input``."""
    import ray

    started = time.time()
    # RAY_JOB_SUBMISSION_ID is set when KubeRay's submitter (or `ray job submit`) started us.
    logs.bind(job_id=os.environ.get("RAY_JOB_SUBMISSION_ID") or spec.name)
    workload = get_workload(spec.workload.name)(spec)
    if spec.workload.name == "openai_batch" and spec.output.format != "jsonl":
        spec = spec.model_copy(update={"output": spec.output.model_copy(update={"format": "jsonl"})})
    warmup = Warmup()
    warmup.start_imports(spec.engine.kind)
    done = _prepare_output(spec)
    rows = _records(data) if data is not None else workload.load_dataset()
    prep = _prepare_rows(spec, workload, rows, done)
    logger.info(
        "job %s: %d input rows, %d already finished, %d to run, %d invalid",
        spec.name,
        prep.total,
        prep.skipped,
        len(prep.items),
        len(prep.errors),
    )
    out = spec.output.path
    data_writer = io.PartWriter(out, io.DATA_DIR, spec.output.format)
    error_writer = io.PartWriter(out, io.ERRORS_DIR, "jsonl")
    progress = report.Progress(spec.name, total=len(prep.items) + len(prep.errors))
    if prep.errors:
        if spec.errors.on_row_error == "fail":
            raise JobFailed(f"row {prep.errors[0][io.ROW_ID]} is invalid: {prep.errors[0]}")
        error_writer.write(prep.errors)
        progress.add(failed=len(prep.errors))

    device = None
    if prep.items:
        model_source = spec.model.source
        if spec.engine.kind == "vllm":
            model_source = models.resolve(spec.model.source)
            # Ray is not up yet: this is what the spec and this machine say, which is enough here.
            if resolve_device(spec) == "gpu":
                warmup.start_model_inspection(model_source)
        try:
            if not ray.is_initialized():
                ray.init(address=os.environ.get("RAY_ADDRESS") or None, log_to_driver=True)
            device = resolve_device(spec)
            logger.info("engine %s on %s, model %s", spec.engine.kind, device, model_source)
            warmup.wait()
            processor = build_processor(spec, model_source, device)
            blocks = _num_blocks(len(prep.items), batch_size_for(spec, device))
            _execute(spec, workload, prep, processor, blocks, data_writer, error_writer, progress)
        finally:
            warmup.close()

    summary = report.finalize(spec, workload, prep.order, prep.skipped, started, progress, device)
    failed_fraction = summary.rows_failed / summary.rows_total if summary.rows_total else 0.0
    if failed_fraction > spec.errors.max_error_fraction:
        raise JobFailed(
            f"{summary.rows_failed}/{summary.rows_total} rows failed, over errors.max_error_fraction="
            f"{spec.errors.max_error_fraction}; see {io.join(out, io.ERRORS_DIR)}"
        )
    return summary


def _num_blocks(rows: int, batch_size: int, most: int = 10_000) -> int:
    """One block per engine batch, so each Ray Data task is one whole batch (80-row blocks made
    128 + 32 batches) and tasks are small enough to spread evenly over the engines."""
    return max(1, min(-(-rows // batch_size), most))


def _execute(spec, workload, prep: _Prepared, processor, blocks: int, data_writer, error_writer, progress) -> None:
    import ray

    items = {it[io.ROW_ID]: it for it in prep.items}
    ds = ray.data.from_items(prep.items, override_num_blocks=blocks)
    ok_buf: list[dict[str, Any]] = []
    err_buf: list[dict[str, Any]] = []
    last_flush = time.monotonic()

    def flush() -> None:
        nonlocal last_flush
        data_writer.write(ok_buf)
        error_writer.write(err_buf)
        ok_buf.clear()
        err_buf.clear()
        last_flush = time.monotonic()

    for batch in processor(ds).iter_batches(batch_size=None, batch_format="pyarrow"):
        for result in batch.to_pylist():
            rid = result[io.ROW_ID]
            item = items[rid]
            error = result.get("__inference_error__") or result.get("_error")
            if error:
                if spec.errors.on_row_error == "fail":
                    flush()
                    raise JobFailed(f"row {rid} failed: {error}")
                row = json.loads(item["_input"])
                err_buf.append(_error_record(workload, rid, row, "inference_error", str(error)))
                progress.add(failed=1)
            else:
                ok_buf.append(_result_record(workload, spec, item, result))
                progress.add(ok=1, tokens_in=result["num_input_tokens"], tokens_out=result["num_generated_tokens"])
        progress.end_batch()
        if len(ok_buf) + len(err_buf) >= spec.output.rows_per_file or (
            time.monotonic() - last_flush >= spec.output.flush_interval_s
        ):
            flush()
        progress.maybe_log()
    flush()
    progress.log()
