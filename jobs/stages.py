"""The job's own Ray Data stages, run by the workers: parse rows into requests, shape results.

``Parse`` (a ``map_batches`` task over the reader's rows) drops rows an earlier run
finished, turns each remaining row into chat messages and sampling parameters with the
workload, and writes the rows it can't turn into a request to ``errors/`` itself: they
never reach an engine. ``Finish`` is the Ray Data LLM processor's postprocess: it turns
one engine result (or engine error) into the output record that the sink writes.
"""

from __future__ import annotations

import functools
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from jobs import io, ledger, parts
from jobs.reader import BAD, FILE, LINE, RAW
from jobs.workloads.base import RowError, Workload

logger = logging.getLogger(__name__)

# Columns between Parse and the processor.
INPUT, MESSAGES, SAMPLING, MAX_TOKENS = "_input", "_messages", "_sampling", "_max_tokens"
PARSED_SCHEMA = pa.schema(
    [
        (parts.ROW_ID, pa.string()),
        (FILE, pa.string()),
        (LINE, pa.int64()),
        (INPUT, pa.string()),
        (MESSAGES, pa.string()),
        (SAMPLING, pa.string()),
        (MAX_TOKENS, pa.int64()),
    ]
)
# Placeholder for "a fresh random seed for this row" (see fill_sampling).
RANDOM_SEED = "__random__"


class RowFailed(RuntimeError):
    """A row failed and ``errors.on_row_error`` is ``fail``: the job stops."""


@dataclass(frozen=True)
class StageContext:
    """What the stages need, small and picklable: they rebuild the workload from the spec."""

    spec_json: str
    root: str
    run: str
    ledger: str | None
    duplicates: str | None
    progress: str | None
    model: str

    def workload(self) -> Workload:
        return _workload(self.spec_json)

    def report(self, **counts: Any) -> None:
        if self.progress:
            from jobs.progress import add

            add(self.progress, **counts)


@functools.lru_cache(maxsize=4)
def _workload(spec_json: str) -> Workload:
    from jobs.spec import JobSpec
    from jobs.workloads import get_workload

    spec = JobSpec.model_validate_json(spec_json)
    return get_workload(spec.workload.name)(spec)


def _bookkeeping(rid: str, file: str, line: int) -> dict[str, Any]:
    return {parts.ROW_ID: rid, FILE: file, LINE: line}


def error_record(workload: Workload, row: dict[str, Any] | None, code: str, message: str, where: dict) -> str:
    record = {**workload.format_error(row, code, message), **where, parts.ERROR_CODE: code}
    return json.dumps(record, ensure_ascii=False, default=str)


class Parse:
    """``map_batches`` UDF: reader rows in, requests out; unparseable rows to ``errors/``."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def __call__(self, batch: pa.Table) -> pa.Table:
        ctx = self.ctx
        workload = ctx.workload()
        spec = workload.spec
        files = batch.column(FILE).to_pylist()
        lines = batch.column(LINE).to_numpy()
        # Rows an earlier run finished are dropped; later duplicates of a unique key are errors.
        keep = ~_listed(ctx.ledger, files, lines)
        later = _listed(ctx.duplicates, files, lines)
        raws = batch.column(RAW).to_pylist()
        bads = batch.column(BAD).to_pylist()
        defaults = {k: v for k, v in spec.sampling.model_dump().items() if v is not None}
        id_column = spec.input.id_column
        good: list[dict[str, Any]] = []
        errors: list[str] = []
        reasons: dict[str, list] = {}  # code -> [rows, first message]
        for i in np.flatnonzero(keep):
            file, line, raw = files[i], int(lines[i]), raws[i]
            where = _bookkeeping(parts.row_id(file, line), file, line)
            row = None
            try:
                if bads[i]:
                    raise RowError(bads[i], code="invalid_row")
                try:
                    row = json.loads(raw)
                except json.JSONDecodeError as e:
                    raise RowError(f"{file}:{line + 1}: invalid JSON: {e.msg}", code="invalid_json") from None
                if not isinstance(row, dict):
                    bad_type = type(row).__name__
                    row = None
                    raise RowError(f"{file}:{line + 1}: expected a JSON object, got {bad_type}", code="invalid_json")
                if id_column and row.get(id_column) is None:
                    raise RowError(f"missing id column {id_column!r}", code="missing_field")
                if later[i]:
                    key = workload.unique_key(row)
                    raise RowError(f"duplicate id {key!r}: an earlier row has it; ids must be unique", "duplicate_id")
                messages = workload.parse_row(row)
                sampling = {**defaults, **workload.sampling_overrides(row)}
            except RowError as e:
                errors.append(error_record(workload, row, e.code, str(e), where))
                reasons.setdefault(e.code, [0, str(e)])[0] += 1
                continue
            good.append({**where, INPUT: raw, "messages": messages, "sampling": sampling})
        if errors:
            first = json.loads(errors[0])
            name = f"part-{ctx.run}-p{ledger.file_key(first[FILE])[:10]}-{first[LINE]}"
            parts.write_part(ctx.root, io.ERRORS_DIR, name, "jsonl", errors)
            ctx.report(failed=len(errors), reasons=reasons)
            if spec.errors.on_row_error == "fail":
                raise RowFailed(f"row {first[parts.ROW_ID]} failed: {first.get('error') or first}")
        fill_sampling([g["sampling"] for g in good])
        return pa.table(
            [
                [g[parts.ROW_ID] for g in good],
                [g[FILE] for g in good],
                pa.array([g[LINE] for g in good], pa.int64()),
                [g[INPUT] for g in good],
                [json.dumps(g["messages"], ensure_ascii=False) for g in good],
                [json.dumps(g["sampling"], default=str) for g in good],
                pa.array([int(g["sampling"].get("max_tokens") or 16) for g in good], pa.int64()),
            ],
            schema=PARSED_SCHEMA,
        )


def _listed(folder: str | None, files: list[str], lines: np.ndarray) -> np.ndarray:
    """Which rows of a batch a per-file position list (a ledger) in ``folder`` names."""
    hit = np.zeros(len(files), dtype=bool)
    if folder:
        for file in set(files):
            listed = ledger.finished_lines(folder, file)
            if len(listed):
                hit |= np.array([f == file for f in files]) & np.isin(lines, listed)
    return hit


def fill_sampling(samplings: list[dict[str, Any]]) -> None:
    """Give every request of a batch the same sampling keys.

    Rows travel as Arrow blocks, where a key missing from one row becomes null, and an
    integer column with nulls comes back as floats, which vLLM's engine rejects (and then
    hangs). So a key some rows set and others don't gets vLLM's own default in the others,
    and a missing ``seed`` (vLLM's default: none, i.e. random) gets a random seed.
    """
    if not samplings:
        return
    keys = [set(s) for s in samplings]
    union = set().union(*keys)
    partial = {k for k in union if any(k not in ks for ks in keys)}
    fill = _defaults_for(frozenset(partial)) if partial else {}
    for s in samplings:
        for key, value in fill.items():
            if key not in s:
                s[key] = random.randrange(2**31) if value == RANDOM_SEED else value


@functools.lru_cache(maxsize=64)
def _defaults_for(keys: frozenset[str]) -> dict[str, Any]:
    try:
        from vllm import SamplingParams
    except ImportError:
        return {}
    base = SamplingParams()
    fill = {k: getattr(base, k) for k in keys if k != "structured_outputs" and hasattr(base, k)}
    if "seed" in fill:
        fill["seed"] = RANDOM_SEED
    return fill


# What the sink takes: the record, its error (null if ok), and what the report counts.
SINK_SCHEMA = pa.schema(
    [
        (parts.RECORD, pa.string()),
        (parts.ERROR, pa.string()),
        (parts.ERROR_CODE, pa.string()),
        (parts.TOKENS_IN, pa.int64()),
        (parts.TOKENS_OUT, pa.int64()),
        (parts.REQUEST_START, pa.float64()),
        (parts.RETRIES, pa.int64()),
    ]
)


class Finish:
    """The processor's postprocess: one engine result (or error) in, one output record out."""

    def __init__(self, ctx: StageContext):
        self.ctx = ctx

    def __call__(
        self, row: dict[str, Any], result: dict[str, Any], error: str | None, code: str = "inference_error"
    ) -> dict[str, Any]:
        workload = self.ctx.workload()
        where = _bookkeeping(row[parts.ROW_ID], row[FILE], int(row[LINE]))
        source = json.loads(row[INPUT])
        if error:
            if workload.spec.errors.on_row_error == "fail":
                raise RowFailed(f"row {where[parts.ROW_ID]} failed: {error}")
            return {
                parts.RECORD: error_record(workload, source, code, error, where),
                parts.ERROR: error,
                parts.ERROR_CODE: code,
                parts.TOKENS_IN: 0,
                parts.TOKENS_OUT: 0,
                parts.REQUEST_START: None,
            }
        result = {**result, "model": self.ctx.model}
        record = {
            **workload.format_result(source, result),
            **where,
            parts.TOKENS_IN: result["num_input_tokens"],
            parts.TOKENS_OUT: result["num_generated_tokens"],
        }
        # When the engine took this request (upper bound: the row reaches us a little after it finished).
        took = row.get("time_taken_llm")
        return {
            parts.RECORD: json.dumps(record, ensure_ascii=False, default=str),
            parts.ERROR: None,
            parts.ERROR_CODE: None,
            parts.TOKENS_IN: result["num_input_tokens"],
            parts.TOKENS_OUT: result["num_generated_tokens"],
            parts.REQUEST_START: time.time() - float(took) if took is not None and float(took) >= 0 else None,
        }


class FinishErrors:
    """``map_batches`` after the processor: shape the engine's error rows, which Ray Data LLM
    hands on as they were (it skips the postprocess for them), and keep only the sink's columns."""

    COLUMNS = tuple(SINK_SCHEMA.names)

    def __init__(self, ctx: StageContext):
        self.finish = Finish(ctx)

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        names = set(batch.column_names)
        records = batch.column(parts.RECORD).to_pylist() if parts.RECORD in names else [None] * n
        if all(r is not None for r in records):
            return batch.select([c for c in self.COLUMNS if c in names])
        rows = batch.to_pylist()
        out = []
        for row, record in zip(rows, records, strict=True):
            if record is None:
                error = row.get("__inference_error__") or "the engine returned no result"
                out.append(self.finish(row, {}, str(error)))
            else:
                out.append({c: row.get(c) for c in self.COLUMNS})
        return pa.Table.from_pylist(out, schema=SINK_SCHEMA)
