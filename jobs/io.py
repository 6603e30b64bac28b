"""Filesystems (local/PVC, s3://, gs://) and the output folder's layout.

Reading inputs and writing parts are Ray Data's, on the workers (``jobs.reader``,
``jobs.parts``); this module lists files, publishes a file atomically, and reads or writes
the few small files a job keeps beside its parts (its spec, the summary).
"""

from __future__ import annotations

import fnmatch
import json
import logging
import posixpath
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

logger = logging.getLogger(__name__)

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


# -- the output folder -----------------------------------------------------------
def list_parts(root: str, subdir: str, limit: int | None = None) -> list[str]:
    """Part files of one output folder, sorted by name (``limit``: stop caring after that many)."""
    fs, base = filesystem(root)
    folder = join(base, subdir)
    if fs.get_file_info(folder).type != pafs.FileType.Directory:
        return []
    infos = fs.get_file_info(pafs.FileSelector(folder))
    found = sorted(
        i.path for i in infos if i.type == pafs.FileType.File and posixpath.basename(i.path).startswith("part-")
    )
    return found[:limit] if limit is not None else found


def head(root: str, subdir: str, n: int) -> list[dict[str, Any]]:
    """The first ``n`` rows of a folder's parts (for showing a few results; reads no more than it needs)."""
    fs, _ = filesystem(root)
    rows: list[dict[str, Any]] = []
    for path in list_parts(root, subdir):
        if len(rows) >= n:
            break
        if path.endswith(".parquet"):
            with fs.open_input_file(path) as f:
                batch = next(pq.ParquetFile(f).iter_batches(batch_size=n - len(rows)), None)
                rows.extend(batch.to_pylist() if batch is not None else [])
        else:
            with fs.open_input_stream(path) as f:
                for line in f.read().decode("utf-8").splitlines():
                    if line.strip() and len(rows) < n:
                        rows.append(json.loads(line))
    return rows


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


def clear(root: str, keep: tuple[str, ...] = ("_LEASE",)) -> None:
    """Delete everything in the output folder but ``keep`` (the running job's lease)."""
    fs, base = filesystem(root)
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        return
    for info in fs.get_file_info(pafs.FileSelector(base)):
        if posixpath.basename(info.path.rstrip("/")) in keep:
            continue
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(info.path)
        else:
            fs.delete_file(info.path)
