"""Where the Batch API keeps things: file bytes in a blob store, file and batch records in a state store.

- ``Blobs``: uploaded files and job outputs, under ``storage_root`` (a folder, a PVC mount, s3://, gs://;
  through fsspec). Outputs are not copied: an output file record points into the job's output folder.
- ``StateStore``: one JSON record per file and per batch, with compare-and-swap updates, so several
  ingress replicas can advance the same batch without losing an update.
  ``FolderState`` (embedded mode): ``<storage_root>/state/<kind>/<id>.json``, updated under a lock file.
  ``ConfigMapState`` (Kubernetes): one ConfigMap per record, labelled with its kind and owner hash;
  updates carry ``resourceVersion``, so the API server rejects a stale write (409).
"""

from __future__ import annotations

import abc
import contextlib
import fcntl
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

Kind = str  # "file" | "batch"
KINDS = ("file", "batch")


class Conflict(Exception):
    """The record changed since it was read (or already exists, on create)."""


class Blobs:
    """Bytes under ``root``: local/PVC folder, s3:// or gs:// (fsspec)."""

    def __init__(self, root: str) -> None:
        import fsspec

        if "://" not in root:
            root = str(Path(root).expanduser().resolve())
        self.root = root.rstrip("/")
        self.fs, _ = fsspec.core.url_to_fs(self.root)
        self.local = "://" not in self.root

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def open(self, path: str, mode: str = "rb") -> IO[bytes]:
        if "w" in mode:
            parent = path.rsplit("/", 1)[0]
            self.fs.makedirs(parent, exist_ok=True)
        return self.fs.open(path, mode)

    def exists(self, path: str) -> bool:
        return bool(self.fs.exists(path))

    def size(self, path: str) -> int:
        return int(self.fs.size(path))

    def read_text(self, path: str) -> str | None:
        try:
            with self.fs.open(path, "rb") as f:
                return f.read().decode()
        except FileNotFoundError:
            return None

    def iter_chunks(self, path: str, chunk: int = 1 << 20) -> Iterator[bytes]:
        with self.fs.open(path, "rb") as f:
            while data := f.read(chunk):
                yield data

    def delete(self, path: str, recursive: bool = False) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(path, recursive=recursive)


class StateStore(abc.ABC):
    """JSON records by kind and id, with an owner, and versioned updates."""

    @abc.abstractmethod
    def create(self, kind: Kind, record: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        """Store a new record (``record['id']``, ``record['owner']``); Conflict if it exists."""

    @abc.abstractmethod
    def get(self, kind: Kind, id_: str) -> tuple[dict[str, Any], str] | None:
        """The record and its version, or None."""

    @abc.abstractmethod
    def update(self, kind: Kind, record: dict[str, Any], version: str) -> str:
        """Replace the record if it is still at ``version``; returns the new version; Conflict otherwise."""

    @abc.abstractmethod
    def list(self, kind: Kind, owner: str | None = None) -> list[dict[str, Any]]:
        """All records of a kind (of one owner, if given)."""

    @abc.abstractmethod
    def delete(self, kind: Kind, id_: str) -> None:
        """Remove a record (no error if it is gone)."""


_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


def check_id(id_: str) -> str:
    if not _ID.match(id_):
        raise KeyError(id_)
    return id_


class FolderState(StateStore):
    """Records as JSON files in a local folder; a lock file serialises writers on this machine."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        for kind in KINDS:
            (self.root / kind).mkdir(parents=True, exist_ok=True)

    def _path(self, kind: Kind, id_: str) -> Path:
        return self.root / kind / f"{check_id(id_)}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, path)

    def create(self, kind: Kind, record: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        path = self._path(kind, record["id"])
        with self._locked():
            if path.exists():
                raise Conflict(record["id"])
            self._write(path, {"rev": 1, "record": record, "extra": extra or {}})

    def get(self, kind: Kind, id_: str) -> tuple[dict[str, Any], str] | None:
        try:
            doc = self._read(self._path(kind, id_))
        except KeyError:
            return None
        return (doc["record"], str(doc["rev"])) if doc else None

    def update(self, kind: Kind, record: dict[str, Any], version: str) -> str:
        path = self._path(kind, record["id"])
        with self._locked():
            doc = self._read(path)
            if doc is None or str(doc["rev"]) != version:
                raise Conflict(record["id"])
            doc["rev"] += 1
            doc["record"] = record
            self._write(path, doc)
            return str(doc["rev"])

    def list(self, kind: Kind, owner: str | None = None) -> list[dict[str, Any]]:
        out = []
        for path in (self.root / kind).glob("*.json"):
            doc = self._read(path)
            if doc and (owner is None or doc["record"].get("owner") == owner):
                out.append(doc["record"])
        return out

    def delete(self, kind: Kind, id_: str) -> None:
        with contextlib.suppress(FileNotFoundError, KeyError), self._locked():
            self._path(kind, id_).unlink()


LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_KIND = "kuberay-llm/batch-api"
LABEL_OWNER = "kuberay-llm/owner"
RECORD_KEY = "record.json"


def k8s_name(prefix: str, id_: str) -> str:
    """A DNS-1123 name for an object id (``batch_ab12`` -> ``<prefix>-batch-ab12``)."""
    return f"{prefix}-{check_id(id_).lower().replace('_', '-')}"[:63].rstrip("-")


class ConfigMapState(StateStore):
    """Records as ConfigMaps in one namespace (shared by every ingress replica, kept by etcd)."""

    def __init__(self, core_api: Any, namespace: str, prefix: str, labels: dict[str, str] | None = None) -> None:
        self.api = core_api
        self.namespace = namespace
        self.prefix = prefix
        self.labels = dict(labels or {})

    def name(self, id_: str) -> str:
        return k8s_name(self.prefix, id_)

    def body(self, kind: Kind, record: dict[str, Any], extra: dict[str, str] | None = None) -> dict[str, Any]:
        labels = {**self.labels, LABEL_PART_OF: "kuberay-llm", LABEL_KIND: kind, LABEL_OWNER: record["owner"]}
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name(record["id"]),
                "namespace": self.namespace,
                "labels": labels,
                "annotations": {"kuberay-llm/id": record["id"]},
            },
            "data": {RECORD_KEY: json.dumps(record), **(extra or {})},
        }

    @staticmethod
    def _status(e: Exception) -> int | None:
        return getattr(e, "status", None)

    def create(self, kind: Kind, record: dict[str, Any], extra: dict[str, str] | None = None) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.create_namespaced_config_map(self.namespace, self.body(kind, record, extra))
        except ApiException as e:
            if e.status == 409:
                raise Conflict(record["id"]) from None
            raise

    def _read(self, id_: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.api.read_namespaced_config_map(self.name(id_), self.namespace)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    @staticmethod
    def _field(obj: Any, *path: str) -> Any:
        for p in path:
            obj = obj.get(p) if isinstance(obj, dict) else getattr(obj, p, None)
            if obj is None:
                return None
        return obj

    def get(self, kind: Kind, id_: str) -> tuple[dict[str, Any], str] | None:
        try:
            cm = self._read(id_)
        except KeyError:
            return None
        if cm is None or (self._field(cm, "metadata", "labels") or {}).get(LABEL_KIND) != kind:
            return None
        data = self._field(cm, "data") or {}
        return json.loads(data[RECORD_KEY]), str(self._field(cm, "metadata", "resource_version"))

    def update(self, kind: Kind, record: dict[str, Any], version: str) -> str:
        from kubernetes.client.exceptions import ApiException

        cm = self._read(record["id"])
        if cm is None:
            raise Conflict(record["id"])
        data = dict(self._field(cm, "data") or {})
        data[RECORD_KEY] = json.dumps(record)
        body = self.body(kind, record)
        body["data"] = data
        body["metadata"]["resourceVersion"] = version
        try:
            new = self.api.replace_namespaced_config_map(self.name(record["id"]), self.namespace, body)
        except ApiException as e:
            if e.status in (409, 404):
                raise Conflict(record["id"]) from None
            raise
        return str(self._field(new, "metadata", "resource_version"))

    def list(self, kind: Kind, owner: str | None = None) -> list[dict[str, Any]]:
        selector = f"{LABEL_PART_OF}=kuberay-llm,{LABEL_KIND}={kind}"
        if owner is not None:
            selector += f",{LABEL_OWNER}={owner}"
        items = self.api.list_namespaced_config_map(self.namespace, label_selector=selector).items
        return [json.loads((self._field(cm, "data") or {})[RECORD_KEY]) for cm in items]

    def delete(self, kind: Kind, id_: str) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.api.delete_namespaced_config_map(self.name(id_), self.namespace)
        except (ApiException, KeyError) as e:
            if getattr(e, "status", 404) != 404:
                raise
