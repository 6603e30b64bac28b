"""The output folder's part files: written by the workers, read back for resume and the report.

Layout of ``output.path``::

    data/part-<run>-<task>.parquet|jsonl    results (input columns + generated_text ...)
    errors/part-<run>-<task>.jsonl          failed rows, with a code and a reason
    _ledger/<run>/<file hash>.parquet       rows already finished, per input file (resume)

Every part carries the bookkeeping columns ``_row_id``, ``_file``, ``_line`` (the row's
identity, see ``jobs.reader``) and, for results, ``_tokens_in`` / ``_tokens_out``. A part
appears atomically (locally a hidden temp file, then a rename; object stores publish an
object when its upload completes), and its name depends only on the run and the Ray task,
so a retried task replaces its own part instead of adding a second copy.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from jobs import io
from jobs.reader import FILE, LINE

logger = logging.getLogger(__name__)

ROW_ID = "_row_id"
TOKENS_IN, TOKENS_OUT = "_tokens_in", "_tokens_out"
# Produced by the shaping stage: the output record as JSON text, and the error (null if ok).
RECORD, ERROR = "_record", "_error"
# An error record's code (invalid_json, http_400, connection_error...), also kept in the errors parts.
ERROR_CODE = "_error_code"
# How many times the http engine retried a row's request (the report counts rows that needed any).
RETRIES = "_retries"
# When an engine took the request (seconds since the epoch), for the report's start-up figure.
REQUEST_START = "_request_start"
BOOKKEEPING = (ROW_ID, FILE, LINE, TOKENS_IN, TOKENS_OUT)
LEDGER_DIR = "_ledger"


def new_run_id() -> str:
    return uuid.uuid4().hex[:8]


def row_id(file: str, line: int) -> str:
    return f"{file}:{line}"


def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of rows; a column whose values don't share one type is stored as JSON text."""
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        names = list(dict.fromkeys(k for r in rows for k in r))
        columns = {}
        for name in names:
            values = [r.get(name) for r in rows]
            try:
                columns[name] = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                columns[name] = pa.array([None if v is None else json.dumps(v, default=str) for v in values])
        return pa.table(columns)


def write_part(root: str, subdir: str, name: str, fmt: str, records: list[str]) -> str:
    """Publish one part from records given as JSON text (one object per record)."""
    fs, base = io.filesystem(root)
    folder = io.join(base, subdir)
    fs.create_dir(folder, recursive=True)
    if fmt == "parquet":
        table = rows_to_table([json.loads(r) for r in records])
        return io.publish(fs, folder, f"{name}.parquet", lambda f: pq.write_table(table, f))
    payload = ("\n".join(records) + "\n").encode("utf-8")
    return io.publish(fs, folder, f"{name}.jsonl", lambda f: f.write(payload))


def _sink_class():
    from ray.data import Datasink

    class PartsSink(Datasink):
        """Writes each write task's rows as one results part and one errors part."""

        def __init__(self, root: str, fmt: str, run: str, rows_per_file: int, progress: str | None = None):
            self.root, self.fmt, self.run = root, fmt, run
            self.rows_per_file = rows_per_file
            self.progress = progress

        def on_write_start(self, *args: Any, **kwargs: Any) -> None:
            fs, base = io.filesystem(self.root)
            for subdir in (io.DATA_DIR, io.ERRORS_DIR):
                fs.create_dir(io.join(base, subdir), recursive=True)

        @property
        def min_rows_per_write(self) -> int:
            return self.rows_per_file

        def write(self, blocks: Iterable[pa.Table], ctx) -> dict[str, int]:
            ok: list[str] = []
            failed: list[str] = []
            tokens_in = tokens_out = retried = 0
            first_request: float | None = None
            reasons: dict[str, list] = {}  # code -> [rows, first message]
            for block in blocks:
                table = block if isinstance(block, pa.Table) else pa.Table.from_pandas(block)
                if table.num_rows == 0:  # e.g. a batch whose rows were all finished already
                    continue
                names = table.column_names
                records = table.column(RECORD).to_pylist()
                errors = table.column(ERROR).to_pylist()
                codes = table.column(ERROR_CODE).to_pylist() if ERROR_CODE in names else [None] * len(errors)
                t_in = table.column(TOKENS_IN).to_pylist()
                t_out = table.column(TOKENS_OUT).to_pylist()
                if RETRIES in names:
                    retried += sum(1 for r in table.column(RETRIES).to_pylist() if r)
                if REQUEST_START in names:
                    starts = [t for t in table.column(REQUEST_START).to_pylist() if t is not None]
                    if starts:
                        first_request = min(starts + ([first_request] if first_request else []))
                for record, error, code, a, b in zip(records, errors, codes, t_in, t_out, strict=True):
                    if error is None:
                        ok.append(record)
                        tokens_in += a or 0
                        tokens_out += b or 0
                    else:
                        failed.append(record)
                        reasons.setdefault(code or "error", [0, error])[0] += 1
            name = f"part-{self.run}-{ctx.task_idx:06d}"
            if ok:
                write_part(self.root, io.DATA_DIR, name, self.fmt, ok)
            if failed:
                write_part(self.root, io.ERRORS_DIR, name, "jsonl", failed)
            counts = {"ok": len(ok), "failed": len(failed), "tokens_in": tokens_in, "tokens_out": tokens_out}
            if self.progress:
                from jobs.progress import add

                add(self.progress, **counts, retried=retried, first_request=first_request, reasons=reasons)
            return counts

    return PartsSink


def sink(root: str, fmt: str, run: str, rows_per_file: int, progress: str | None = None):
    return _sink_class()(root, fmt, run, rows_per_file, progress)


# -- reading parts back (on the workers) ---------------------------------------------
BOOK_SCHEMA = pa.schema(
    [
        (FILE, pa.string()),
        (LINE, pa.int64()),
        ("_ok", pa.bool_()),
        (TOKENS_IN, pa.int64()),
        (TOKENS_OUT, pa.int64()),
        (ERROR_CODE, pa.string()),
    ]
)


def _book_rows(f, path: str) -> Iterator[pa.Table]:
    ok = "/" + io.DATA_DIR + "/" in path.replace("\\", "/")
    if path.endswith(".parquet"):
        pf = pq.ParquetFile(f)
        names = set(pf.schema_arrow.names)
        if not {FILE, LINE} <= names:
            logger.warning("part %s has no row identity columns; skipped", path)
            return
        cols = [c for c in (FILE, LINE, TOKENS_IN, TOKENS_OUT) if c in names]
        for batch in pf.iter_batches(columns=cols):
            n = batch.num_rows
            zeros = pa.array([0] * n, pa.int64())
            yield pa.table(
                [
                    batch.column(FILE).cast(pa.string()),
                    batch.column(LINE).cast(pa.int64()),
                    pa.array([ok] * n),
                    batch.column(TOKENS_IN).cast(pa.int64()) if TOKENS_IN in cols else zeros,
                    batch.column(TOKENS_OUT).cast(pa.int64()) if TOKENS_OUT in cols else zeros,
                    pa.nulls(n, pa.string()),
                ],
                schema=BOOK_SCHEMA,
            )
        return
    files, lines, oks, t_in, t_out, codes = [], [], [], [], [], []
    from jobs.reader import _text_lines

    for text in _text_lines(f):
        if not text.strip():
            continue
        record = json.loads(text)
        if FILE not in record or LINE not in record:
            continue
        files.append(record[FILE])
        lines.append(record[LINE])
        oks.append(ok)
        t_in.append(int(record.get(TOKENS_IN) or 0))
        t_out.append(int(record.get(TOKENS_OUT) or 0))
        codes.append(None if ok else record.get(ERROR_CODE))
    if files:
        yield pa.table([files, pa.array(lines, pa.int64()), oks, t_in, t_out, codes], schema=BOOK_SCHEMA)


def _book_source_class():
    from ray.data.datasource import FileBasedDatasource

    class PartsBookkeeping(FileBasedDatasource):
        """The bookkeeping columns of every part: which rows are finished, ok or not, and tokens."""

        def _open_input_source(self, filesystem, path: str, **open_args):
            if path.endswith(".parquet"):
                return filesystem.open_input_file(path)
            return super()._open_input_source(filesystem, path, **open_args)

        def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
            yield from _book_rows(f, path)

    return PartsBookkeeping


def part_folders(root: str) -> list[str]:
    """The output's data and errors folders that hold at least one part."""
    return [io.join(root, d) for d in (io.DATA_DIR, io.ERRORS_DIR) if io.list_parts(root, d, limit=1)]


def drop_errors(root: str) -> bool:
    """Delete the errors parts (a rerun retries their rows); returns whether there were any."""
    if not io.list_parts(root, io.ERRORS_DIR, limit=1):
        return False
    fs, base = io.filesystem(root)
    fs.delete_dir_contents(io.join(base, io.ERRORS_DIR))
    return True


def read_bookkeeping(root: str):
    """A dataset of (_file, _line, _ok, _tokens_in, _tokens_out, _error_code) over every part, or None if
    there are none."""
    import ray

    folders = part_folders(root)
    if not folders:
        return None
    fs, _ = io.filesystem(root)
    paths = [io.filesystem(folder)[1] for folder in folders]
    source = _book_source_class()(paths, filesystem=fs, file_extensions=["parquet", "jsonl"])
    return ray.data.read_datasource(source)


def totals(root: str) -> dict[str, Any]:
    """Rows ok / failed, failed rows by error code, and token sums over the whole output. The workers sum
    each block of the parts; the driver streams those sums (a few rows per block, one per error code) and
    adds them up, holding only the running totals. No shuffle: on a small cluster a hash aggregate's
    actors cost more than the sums themselves."""
    ds = read_bookkeeping(root)
    out: dict[str, Any] = {"rows_ok": 0, "rows_failed": 0, "input_tokens": 0, "output_tokens": 0, "failed_by_code": {}}
    if ds is None:
        return out
    by_code: dict[str, int] = {}
    sums = ds.map_batches(_sum_block, batch_format="pyarrow")
    for batch in sums.iter_batches(batch_size=None, batch_format="pyarrow"):
        for row in batch.to_pylist():
            out["rows_ok"] += row["ok"]
            out["rows_failed"] += row["failed"]
            out["input_tokens"] += row["tokens_in"] or 0
            out["output_tokens"] += row["tokens_out"] or 0
            if row["failed"]:
                by_code[row["code"]] = by_code.get(row["code"], 0) + row["failed"]
    out["failed_by_code"] = dict(sorted(by_code.items(), key=lambda kv: -kv[1]))
    return out


def shuffle_partitions() -> int:
    """Partitions of a group-by: two per CPU of the cluster, at most Ray's default. Ray's default (200)
    suits a large cluster; on a small one each partition's aggregator actor costs more than its share."""
    import ray

    cpus = int(ray.cluster_resources().get("CPU", 1))
    return max(1, min(ray.data.DataContext.get_current().default_hash_shuffle_parallelism, 2 * cpus))


def stream_sum(ds, column: str) -> int:
    """The sum of one column of a small per-block dataset, added up on the driver as it streams."""
    import pyarrow.compute as pc

    batches = ds.iter_batches(batch_size=None, batch_format="pyarrow")
    return sum(int(pc.sum(b.column(column)).as_py() or 0) for b in batches)


def _sum_block(table: pa.Table) -> pa.Table:
    """One row per error code in the block ("" for rows that succeeded) with its counts and tokens."""
    import pyarrow.compute as pc

    ok = table.column("_ok")
    codes = pc.if_else(ok, "", pc.fill_null(table.column(ERROR_CODE), "error"))
    grouped = (
        pa.table(
            {
                "code": codes,
                "ok": pc.cast(ok, pa.int64()),
                "failed": pc.cast(pc.invert(ok), pa.int64()),
                "tokens_in": table.column(TOKENS_IN),
                "tokens_out": table.column(TOKENS_OUT),
            }
        )
        .group_by("code")
        .aggregate([("ok", "sum"), ("failed", "sum"), ("tokens_in", "sum"), ("tokens_out", "sum")])
    )
    return grouped.rename_columns([c.removesuffix("_sum") for c in grouped.column_names])
