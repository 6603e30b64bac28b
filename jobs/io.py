"""Reading inputs and writing result parts through pyarrow filesystems (local/PVC, s3://, gs://).

The output folder is also the resume ledger: every part file carries the ``_row_id`` of
its rows and appears atomically (write-then-rename locally; object stores publish an
object only when its upload completes), so the set of finished rows is exactly the
union of the ``_row_id`` values of the parts present.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import json
import logging
import posixpath
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

ROW_ID = "_row_id"
# A row the reader could not decode carries this key with the reason; "_raw" holds the text.
MALFORMED = "__malformed__"
DATA_DIR, ERRORS_DIR = "data", "errors"
_EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
}


# -- filesystems ---------------------------------------------------------------
def filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """A pyarrow filesystem and the path inside it, for local paths and URIs (s3://, gs://, file://...)."""
    if "://" not in uri:
        return pafs.LocalFileSystem(), str(uri)
    try:
        return pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        import fsspec  # schemes pyarrow lacks (abfs://, hf://...) through fsspec

        fs, path = fsspec.core.url_to_fs(uri)
        return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), path


def join(base: str, *parts: str) -> str:
    return posixpath.join(base.rstrip("/"), *parts) if "://" in base else posixpath.join(base, *parts)


def expand(path: str) -> list[tuple[pafs.FileSystem, str]]:
    """Files named by a path: a file, a folder (its files, recursively, sorted) or a glob."""
    fs, inner = filesystem(path)
    if any(c in inner for c in "*?["):
        base = inner.split("*")[0].split("?")[0].split("[")[0].rsplit("/", 1)[0] or "/"
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
        files = sorted(i.path for i in infos if i.type == pafs.FileType.File and fnmatch.fnmatch(i.path, inner))
    else:
        info = fs.get_file_info(inner)
        if info.type == pafs.FileType.NotFound:
            raise FileNotFoundError(f"input {path!r} does not exist")
        if info.type == pafs.FileType.Directory:
            infos = fs.get_file_info(pafs.FileSelector(inner, recursive=True))
            files = sorted(
                i.path
                for i in infos
                if i.type == pafs.FileType.File and not posixpath.basename(i.path).startswith((".", "_"))
            )
        else:
            files = [inner]
    if not files:
        raise FileNotFoundError(f"input {path!r} matches no files")
    return [(fs, f) for f in files]


def detect_format(path: str, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    name = path.lower()
    for suffix in (".gz", ".zst", ".bz2"):
        name = name.removesuffix(suffix)
    ext = posixpath.splitext(name)[1]
    if ext not in _EXTENSIONS:
        raise ValueError(f"can't tell the format of {path!r}; set input.format")
    return _EXTENSIONS[ext]


# -- reading -----------------------------------------------------------------
def read_rows(paths: Iterable[str], fmt: str = "auto") -> Iterator[dict[str, Any]]:
    """Rows of every input file, in a stable order. Undecodable lines come back as MALFORMED rows."""
    for path in paths:
        for fs, file in expand(path):
            kind = detect_format(file, fmt)
            logger.info("reading %s (%s)", file, kind)
            if kind == "parquet":
                with fs.open_input_file(file) as f:
                    yield from pq.read_table(f).to_pylist()
                continue
            with fs.open_input_stream(file, compression="detect") as f:
                text = f.read().decode("utf-8")
            yield from _decode(text, kind, file)


def _decode(text: str, kind: str, name: str) -> Iterator[dict[str, Any]]:
    if kind == "jsonl":
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as e:
                yield {MALFORMED: f"{name}:{lineno}: invalid JSON: {e.msg}", "_raw": line}
                continue
            if isinstance(value, dict):
                yield value
            else:
                yield {MALFORMED: f"{name}:{lineno}: expected a JSON object, got {type(value).__name__}", "_raw": line}
    elif kind == "json":
        value = json.loads(text)
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            value = value["data"]
        if not isinstance(value, list):
            raise ValueError(f"{name}: a .json input must hold a list of objects")
        for i, item in enumerate(value):
            yield (
                item
                if isinstance(item, dict)
                else {MALFORMED: f"{name}[{i}]: expected an object", "_raw": json.dumps(item)}
            )
    elif kind == "csv":
        yield from csv.DictReader(io.StringIO(text))
    elif kind == "text":
        for line in text.splitlines():
            if line.strip():
                yield {"prompt": line.rstrip("\r")}
    else:
        raise ValueError(f"unknown input format {kind!r}")


# -- writing -----------------------------------------------------------------
def rows_to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An Arrow table of rows; columns whose values don't share one type are stored as JSON text."""
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


class PartWriter:
    """Writes numbered part files into one folder, each published atomically."""

    def __init__(self, root: str, subdir: str, fmt: str):
        self.fs, base = filesystem(root)
        self.dir = join(base, subdir)
        self.fmt = fmt
        self.run = uuid.uuid4().hex[:8]
        self.seq = 0
        self.fs.create_dir(self.dir, recursive=True)

    def write(self, rows: list[dict[str, Any]]) -> str | None:
        if not rows:
            return None
        name = f"part-{self.seq:05d}-{self.run}.{'parquet' if self.fmt == 'parquet' else 'jsonl'}"
        self.seq += 1
        if self.fmt == "parquet":
            return publish(self.fs, self.dir, name, lambda f: pq.write_table(rows_to_table(rows), f))
        payload = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows).encode("utf-8")
        return publish(self.fs, self.dir, name, lambda f: f.write(payload))


def list_parts(root: str, subdir: str) -> list[str]:
    fs, base = filesystem(root)
    folder = join(base, subdir)
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(folder))
    return sorted(
        i.path for i in infos if i.type == pafs.FileType.File and posixpath.basename(i.path).startswith("part-")
    )


def read_part(fs: pafs.FileSystem, path: str) -> list[dict[str, Any]]:
    if path.endswith(".parquet"):
        with fs.open_input_file(path) as f:
            return pq.read_table(f).to_pylist()
    with fs.open_input_stream(path) as f:
        return [json.loads(line) for line in f.read().decode("utf-8").splitlines() if line.strip()]


def read_parts(root: str, subdir: str, columns: list[str] | None = None) -> list[dict[str, Any]]:
    fs, _ = filesystem(root)
    rows: list[dict[str, Any]] = []
    for path in list_parts(root, subdir):
        if columns and path.endswith(".parquet"):
            with fs.open_input_file(path) as f:
                rows.extend(pq.read_table(f, columns=columns).to_pylist())
        else:
            part = read_part(fs, path)
            rows.extend({c: r.get(c) for c in columns} if columns else r for r in part)
    return rows


def finished_ids(root: str) -> set[str]:
    """Row ids already written (results and errors): the resume ledger."""
    done: set[str] = set()
    for subdir in (DATA_DIR, ERRORS_DIR):
        done.update(str(r[ROW_ID]) for r in read_parts(root, subdir, [ROW_ID]))
    return done


def publish(fs: pafs.FileSystem, folder: str, name: str, write: Callable[[Any], Any]) -> str:
    """Write ``folder/name`` so that readers see all of it or nothing.

    Locally: a hidden temp file, then a rename. Object stores publish an object only when
    its upload completes, so there the final name is written directly.
    """
    final = join(folder, name)
    local = isinstance(fs, pafs.LocalFileSystem)
    target = join(folder, f".tmp-{name}") if local else final
    with fs.open_output_stream(target) as f:
        write(f)
    if local:
        fs.move(target, final)
    return final


def write_text(root: str, name: str, text: str) -> str:
    fs, base = filesystem(root)
    fs.create_dir(base, recursive=True)
    data = text.encode("utf-8")
    return publish(fs, base, name, lambda f: f.write(data))


def read_text(root: str, name: str) -> str | None:
    fs, base = filesystem(root)
    path = join(base, name)
    if fs.get_file_info(path).type != pafs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def clear(root: str) -> None:
    fs, base = filesystem(root)
    if fs.get_file_info(base).type == pafs.FileType.Directory:
        fs.delete_dir_contents(base)
