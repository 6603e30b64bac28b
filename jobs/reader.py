"""Input rows as a Ray Data dataset, read by the workers.

Every row leaves the reader with the same four columns, whatever its file format:

- ``_file``: the file it came from (its path, without the scheme);
- ``_line``: its position in that file (0-based; the n-th record, not the byte offset);
- ``_raw``: the row as JSON text (a JSONL line is passed through as it is, so a line that
  is not JSON is found and reported by the parse stage, not here);
- ``_bad``: why the reader could not decode the row, or null.

``(_file, _line)`` is the row's identity: stable across reruns, and adding a file to an
input folder shifts nothing in the other files. It is what resume filters on.

Ray's file readers do the listing, read-task planning, retries, compression and the
filesystems (local, PVC, ``s3://``, ``gs://``); this module subclasses Ray's
``FileBasedDatasource`` only to decode each format into those four columns. Ray's own
``read_json`` fails a whole file on one malformed line, and none of Ray's readers tells a
row's position in its file, which stable ids need.
"""

from __future__ import annotations

import csv
import hashlib
import io as _io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from jobs import io

logger = logging.getLogger(__name__)

FILE, LINE, RAW, BAD = "_file", "_line", "_raw", "_bad"
SCHEMA = pa.schema([(FILE, pa.string()), (LINE, pa.int64()), (RAW, pa.string()), (BAD, pa.string())])
# Rows handed to the dataset not from files (lists, DataFrames, Datasets) live in this pseudo file.
IN_MEMORY = "<data>"
_ROWS_PER_BLOCK = 4096


def block(file: str, lines: list[int], raws: list[str | None], bads: list[str | None]) -> pa.Table:
    return pa.table([pa.array([file] * len(lines)), pa.array(lines, pa.int64()), raws, bads], schema=SCHEMA)


class _Rows:
    """Collects decoded rows of one file into Arrow blocks of a bounded size."""

    def __init__(self, file: str):
        self.file = file
        self.line = 0
        self.lines: list[int] = []
        self.raws: list[str | None] = []
        self.bads: list[str | None] = []

    def add(self, raw: str | None, bad: str | None = None) -> pa.Table | None:
        self.lines.append(self.line)
        self.raws.append(raw)
        self.bads.append(bad)
        self.line += 1
        return self.flush() if len(self.lines) >= _ROWS_PER_BLOCK else None

    def flush(self) -> pa.Table | None:
        if not self.lines:
            return None
        out = block(self.file, self.lines, self.raws, self.bads)
        self.lines, self.raws, self.bads = [], [], []
        return out


def _text_lines(f) -> Iterator[str]:
    """Lines of a (possibly huge) stream, decoded as UTF-8, without holding the file."""
    pending = b""
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", errors="replace").rstrip("\r")
    if pending:
        yield pending.decode("utf-8", errors="replace").rstrip("\r")


def decode(f, path: str, kind: str) -> Iterator[pa.Table]:
    """Blocks of (_file, _line, _raw, _bad) for one input file of format ``kind``."""
    rows = _Rows(path)

    def emit(raw: str | None, bad: str | None = None) -> Iterator[pa.Table]:
        out = rows.add(raw, bad)
        if out is not None:
            yield out

    if kind == "jsonl":
        for line in _text_lines(f):
            if line.strip():
                yield from emit(line)
    elif kind == "text":
        for line in _text_lines(f):
            if line.strip():
                yield from emit(json.dumps({"prompt": line}, ensure_ascii=False))
    elif kind == "csv":
        text = _io.TextIOWrapper(_io.BufferedReader(_Readable(f)), encoding="utf-8", newline="")
        for record in csv.DictReader(text):
            yield from emit(json.dumps(record, ensure_ascii=False))
    elif kind == "json":
        value = json.loads(f.read().decode("utf-8"))
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            value = value["data"]
        if not isinstance(value, list):
            yield from emit(None, f"{path}: a .json input must hold a list of objects")
        else:
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    yield from emit(json.dumps(item, ensure_ascii=False, default=str))
                else:
                    yield from emit(json.dumps(item, default=str), f"{path}[{i}]: expected an object")
    elif kind == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(f).iter_batches(batch_size=_ROWS_PER_BLOCK):
            for record in batch.to_pylist():
                yield from emit(json.dumps(record, ensure_ascii=False, default=str))
    else:
        raise ValueError(f"unknown input format {kind!r}")
    last = rows.flush()
    if last is not None:
        yield last


class _Readable(_io.RawIOBase):
    """A pyarrow input stream as a Python raw stream (for the csv module)."""

    def __init__(self, f):
        self.f = f

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.f.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _datasource_class():
    from ray.data.datasource import FileBasedDatasource

    class InputFiles(FileBasedDatasource):
        """Input files of one format, decoded into the reader's four columns."""

        def __init__(self, paths: list[str], kind: str, **kwargs: Any):
            super().__init__(paths, **kwargs)
            self.kind = kind

        def _open_input_source(self, filesystem, path: str, **open_args):
            if self.kind == "parquet":  # Parquet needs random access, not a stream.
                return filesystem.open_input_file(path)
            return super()._open_input_source(filesystem, path, **open_args)

        def _read_stream(self, f, path: str) -> Iterator[pa.Table]:
            yield from decode(f, path, self.kind)

    return InputFiles


def read_inputs(paths: list[str], fmt: str = "auto", num_cpus: float = 1.0):
    """A dataset of the rows of every input file (files, folders or globs; local, s3://, gs://).

    The driver lists file names; the workers read and decode the files, many at a time.
    """
    import ray

    by_kind: dict[str, tuple[Any, list[str]]] = {}
    for path in paths:
        for fs, file in io.expand(path):
            kind = io.detect_format(file, fmt)
            by_kind.setdefault(kind, (fs, []))[1].append(file)
    source = _datasource_class()
    datasets = [
        ray.data.read_datasource(source(files, kind, filesystem=fs), num_cpus=num_cpus)
        for kind, (fs, files) in sorted(by_kind.items())
    ]
    ds = datasets[0]
    return ds.union(*datasets[1:]) if len(datasets) > 1 else ds


def _hash_line(value: str) -> int:
    """A stable 63-bit position for rows that have no file position (Datasets without one)."""
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big") >> 1


class _FromRecords:
    """Rows of an in-memory or plug-in dataset, into the reader's columns."""

    def __init__(self, id_column: str | None):
        self.id_column = id_column

    def __call__(self, batch: pa.Table) -> pa.Table:
        has_line = LINE in batch.column_names
        lines = batch.column(LINE).to_pylist() if has_line else None
        records = batch.drop_columns([LINE]).to_pylist() if has_line else batch.to_pylist()
        out_lines, raws, bads = [], [], []
        for i, record in enumerate(records):
            raw = json.dumps(record, ensure_ascii=False, default=str)
            raws.append(raw)
            bads.append(None)
            if lines is not None:
                out_lines.append(lines[i])
            elif self.id_column and record.get(self.id_column) is not None:
                out_lines.append(_hash_line(f"id:{record[self.id_column]}"))
            else:
                out_lines.append(_hash_line(f"row:{raw}"))
        return block(IN_MEMORY, out_lines, raws, bads)


def from_data(data: Any, id_column: str | None = None, num_cpus: float = 1.0):
    """A list of rows or prompts, a pandas DataFrame, or a ``ray.data.Dataset``, as reader rows.

    Lists and DataFrames are numbered by position (they are in this process already).
    A Dataset's rows have no position: a row's identity is a hash of its ``id_column``
    value, or of the whole row when there is none (identical rows then count as one for
    resume).
    """
    import ray

    if isinstance(data, ray.data.Dataset):
        ds = data
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):
        frame = data.reset_index(drop=True)
        frame[LINE] = range(len(frame))
        ds = ray.data.from_pandas(frame)
    else:
        items = [{"prompt": r} if isinstance(r, str) else dict(r) for r in data]
        ds = ray.data.from_items([{**r, LINE: i} for i, r in enumerate(items)])
    return ds.map_batches(
        _FromRecords(id_column), batch_format="pyarrow", batch_size=None, zero_copy_batch=True, num_cpus=num_cpus
    )
