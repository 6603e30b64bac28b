"""Which rows an earlier run already finished: a per-input-file ledger, built and read by the workers.

At the start of a run that resumes, the workers read the bookkeeping columns of every part
(``jobs.parts``), group them by input file, and write one small Parquet file per input file
with the sorted positions (``_line``) of its finished rows, under ``_ledger/<run>/``. The parse
stage, which sees rows file by file, loads the ledger of the file a row comes from and drops
the rows in it before anything else happens to them.

So the driver holds no ids at all, and a worker holds the finished positions of the few
files it is reading (8 bytes a row), not those of the whole input. Ray Data's own
``CheckpointConfig`` was the first candidate and is not used: it needs the id in the rows
as they are read, and gives exactly-once only for a single file datasink (we write two
folders, and rows that fail to parse never reach the sink), and it loads every finished
id into each filter actor.
"""

from __future__ import annotations

import functools
import hashlib
import logging

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from jobs import io
from jobs.parts import LEDGER_DIR, read_bookkeeping, shuffle_partitions, stream_sum
from jobs.reader import FILE, LINE

logger = logging.getLogger(__name__)


def file_key(file: str) -> str:
    return hashlib.blake2b(file.encode(), digest_size=12).hexdigest()


def ledger_dir(root: str, run: str) -> str:
    return io.join(root, LEDGER_DIR, run)


def _write_ledger(folder: str):
    """``map_groups`` function: one input file's positions -> ``<folder>/<file hash>.parquet``."""

    def write_ledger(group: pa.Table) -> pa.Table:
        if group.num_rows == 0:
            return pa.table({"n": pa.array([], pa.int64())})
        file = group.column(FILE)[0].as_py()
        lines = np.unique(group.column(LINE).to_numpy())
        fs, base = io.filesystem(folder)
        table = pa.table({LINE: pa.array(lines, pa.int64())})
        io.publish(fs, base, f"{file_key(file)}.parquet", lambda f: pq.write_table(table, f))
        return pa.table({"n": pa.array([len(lines)], pa.int64())})

    return write_ledger


def build(root: str, run: str) -> int:
    """Write the ledger of everything finished in ``root``; returns how many rows that is."""
    ds = read_bookkeeping(root)
    if ds is None:
        return 0
    folder = ledger_dir(root, run)
    fs, base = io.filesystem(folder)
    fs.create_dir(base, recursive=True)
    written = (
        ds.select_columns([FILE, LINE])
        .groupby(FILE, num_partitions=shuffle_partitions())
        .map_groups(_write_ledger(folder), batch_format="pyarrow")
    )
    return stream_sum(written, "n")


def clear_old(root: str, keep: str) -> None:
    """Remove ledgers and duplicate lists of earlier runs (they describe an output that has grown since)."""
    for kind in (LEDGER_DIR, DUPLICATES_DIR):
        fs, base = io.filesystem(io.join(root, kind))
        if fs.get_file_info(base).type != pafs.FileType.Directory:
            continue
        for info in fs.get_file_info(pafs.FileSelector(base)):
            if info.type == pafs.FileType.Directory and not info.path.rstrip("/").endswith("/" + keep):
                fs.delete_dir(info.path)


@functools.lru_cache(maxsize=32)
def finished_lines(folder: str, file: str) -> np.ndarray:
    """Sorted positions of the finished rows of one input file (empty if none)."""
    fs, base = io.filesystem(folder)
    path = io.join(base, f"{file_key(file)}.parquet")
    # A ledger that exists but can't be read must fail the task (and be retried), never
    # read as "nothing finished", which would run those rows twice.
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return np.empty(0, dtype=np.int64)
    with fs.open_input_file(path) as f:
        return pq.read_table(f).column(LINE).to_numpy()


# -- unique keys (id_column, OpenAI custom_id) -------------------------------------
DUPLICATES_DIR = "_duplicates"
_KEY = "_key"


class _Keys:
    """Reader rows -> (_key, _file, _line) for the rows that have a unique key."""

    def __init__(self, spec_json: str):
        self.spec_json = spec_json

    def __call__(self, batch: pa.Table) -> pa.Table:
        import json

        from jobs.stages import _workload

        workload = _workload(self.spec_json)
        keys, files, lines = [], [], []
        for file, line, raw in zip(
            batch.column(FILE).to_pylist(),
            batch.column(LINE).to_pylist(),
            batch.column("_raw").to_pylist(),
            strict=True,
        ):
            try:
                row = json.loads(raw) if raw is not None else None
            except json.JSONDecodeError:
                continue
            key = workload.unique_key(row) if isinstance(row, dict) else None
            if key is not None:
                keys.append(key)
                files.append(file)
                lines.append(line)
        return pa.table(
            {_KEY: pa.array(keys, pa.string()), FILE: pa.array(files, pa.string()), LINE: pa.array(lines, pa.int64())}
        )


def _later_ones(group: pa.Table) -> pa.Table:
    """Every row of one key but the first (by file, then position)."""
    order = group.sort_by([(FILE, "ascending"), (LINE, "ascending")])
    return order.select([FILE, LINE]).slice(1)


def build_duplicates(ds, spec_json: str, root: str, run: str, num_cpus: float) -> str | None:
    """Find rows whose unique key an earlier row already has; returns the folder that lists them, per file."""
    folder = io.join(root, DUPLICATES_DIR, run)
    fs, base = io.filesystem(folder)
    fs.create_dir(base, recursive=True)
    partitions = shuffle_partitions()
    later = (
        ds.map_batches(_Keys(spec_json), batch_format="pyarrow", num_cpus=num_cpus)
        .groupby(_KEY, num_partitions=partitions)
        .map_groups(_later_ones, batch_format="pyarrow")
    )
    written = later.groupby(FILE, num_partitions=partitions).map_groups(_write_ledger(folder), batch_format="pyarrow")
    return folder if stream_sum(written, "n") else None
