"""A lease on a job's output path, so two runs never write the same output at once.

The lease is the file ``<output>/_LEASE``: a JSON record of its holder (owner id, host, pid, job
name), when it was acquired, its last heartbeat and its TTL. The holder renews the heartbeat every
``ttl_s / 3`` from a background thread. Another run refuses to start (``LeaseHeld``) while the
heartbeat is younger than the TTL; once it is older (its job was killed), the next run takes the
lease over, so kill-then-rerun needs no manual cleanup. Expiry compares the holder's clock with the
reader's, so the clocks of the machines involved must agree to well within the TTL (NTP does).

What each storage guarantees:

- **Local paths and PVCs** (any POSIX filesystem, NFS included): creating the lease is atomic
  (a complete temporary file hard-linked into place, which fails if the lease exists; ``O_EXCL``
  where hard links are not supported), so of two runs exactly one acquires it. Runs that take over
  an expired lease go one at a time (a lock file beside it), check that it still holds the expired
  record they read, and replace it in one rename, so two runs taking over at once also end with
  one holder.
- **s3://** (with boto3 installed, as Ray's images have it): writes are conditional, ``If-None-Match: *``
  to create and ``If-Match: <ETag>`` to take over, renew and release, which S3 has enforced since
  2024 (as do MinIO and moto). Exactly one run acquires. The lease is also read back after a short
  settle time, for S3-compatible stores that ignore these headers.
- **gs:// and other object stores** (and s3:// without boto3): best effort. The lease is written, and
  read back after ``settle_s``: if another run's record is there, this run backs off. Two runs still
  both acquire if one of them stalls for longer than ``settle_s`` between reading that the lease is
  free and writing its own, which needs a pause of seconds at that exact point.

In every case a holder's heartbeat thread re-reads the lease before renewing it; if it finds another
owner's record (it stalled past its TTL and was taken over), it marks the lease lost, logs an error
and calls ``on_lost``; ``ensure_held()`` raises ``LeaseLost`` then. ``release()`` deletes the lease
only while it is still this run's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

import pyarrow.fs as pafs

from jobs import io
from llmkit.config import ConfigError

logger = logging.getLogger(__name__)

LEASE_FILE = "_LEASE"
DEFAULT_TTL_S = 60.0
DEFAULT_SETTLE_S = 1.0  # read-back delay on object stores
_ATTEMPTS = 5


class LeaseHeld(ConfigError):
    """Another live run holds the lease on this output path."""


class LeaseLost(RuntimeError):
    """This run's lease was taken over by another run (this run stalled past its TTL)."""


@dataclass(frozen=True)
class LeaseRecord:
    owner: str
    host: str
    pid: int
    job: str
    acquired_at: float
    heartbeat_at: float
    ttl_s: float

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def parse(cls, data: bytes) -> LeaseRecord | None:
        """The record, or None when the bytes are not one (a torn write, a foreign file)."""
        try:
            raw = json.loads(data)
            return cls(
                owner=str(raw["owner"]),
                host=str(raw["host"]),
                pid=int(raw["pid"]),
                job=str(raw["job"]),
                acquired_at=float(raw["acquired_at"]),
                heartbeat_at=float(raw["heartbeat_at"]),
                ttl_s=float(raw["ttl_s"]),
            )
        except (ValueError, TypeError, KeyError):
            return None


@dataclass(frozen=True)
class _Blob:
    data: bytes
    token: str | None  # S3 ETag: what a conditional write compares against
    mtime: float | None  # seconds since the epoch, where the store says


# -- stores ----------------------------------------------------------------------
# A takeover lock older than this was left by a run that died while taking a lease over.
_TAKEOVER_LOCK_STALE_S = 30.0


class _LocalStore:
    """A lease file on a POSIX filesystem: atomic create, rename-aside takeover and release."""

    strong = True

    def __init__(self, path: str):
        self.path = path

    def read(self) -> _Blob | None:
        try:
            with open(self.path, "rb") as f:
                return _Blob(f.read(), None, os.fstat(f.fileno()).st_mtime)
        except FileNotFoundError:
            return None

    def create(self, data: bytes) -> str | None | bool:
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        try:
            self._write(tmp, data, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            try:
                os.link(tmp, self.path)  # fails if the lease exists; visible only complete
                return None
            except FileExistsError:
                return False
            except OSError:  # no hard links here (some FUSE and SMB mounts): plain O_EXCL
                try:
                    self._write(self.path, data, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                    return None
                except FileExistsError:
                    return False
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def replace(self, data: bytes, expected: _Blob) -> str | None | bool:
        """Take over the record ``expected``: only if the file still holds exactly it.

        Takers go one at a time, through a lock file, and the lease is replaced in one rename, so
        the path is never empty: moving the record aside to check it (as ``delete`` does) left a
        moment in which a third run could create a lease while a second one put the first run's back,
        and two runs held it (seen with eight contenders on a loaded machine)."""
        lock = f"{self.path}.takeover"
        try:
            self._write(lock, b"", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            with contextlib.suppress(OSError):  # a taker that died holding the lock: clear it
                if time.time() - os.stat(lock).st_mtime > _TAKEOVER_LOCK_STALE_S:
                    os.unlink(lock)
            return False
        try:
            current = self.read()
            if current is None or current.data != expected.data:
                return False
            return self.renew(data, current)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)

    def renew(self, data: bytes, expected: _Blob) -> str | None | bool:
        # The caller just read our own record; an atomic replace never leaves the path empty.
        tmp = f"{self.path}.{uuid.uuid4().hex}.tmp"
        self._write(tmp, data, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        os.replace(tmp, self.path)
        return None

    def delete(self, expected: _Blob) -> bool:
        return self._remove(expected)

    def _remove(self, expected: _Blob) -> bool:
        """Remove the lease file if it holds ``expected``; put back whatever else was there."""
        aside = f"{self.path}.{uuid.uuid4().hex}.old"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return False
        with open(aside, "rb") as f:
            found = f.read()
        if found != expected.data:  # changed since it was read: restore it (unless a new one is there)
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            os.unlink(aside)
            return False
        os.unlink(aside)
        return True

    @staticmethod
    def _write(path: str, data: bytes, flags: int) -> None:
        fd = os.open(path, flags, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


class _ObjectStore:
    """A lease object through a pyarrow filesystem (gs://, s3:// without boto3...): plain writes."""

    strong = False

    def __init__(self, fs: pafs.FileSystem, path: str):
        self.fs, self.path = fs, path

    def read(self) -> _Blob | None:
        try:
            with self.fs.open_input_stream(self.path) as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError:
            if self.fs.get_file_info(self.path).type == pafs.FileType.NotFound:
                return None
            raise
        mtime = None
        if LeaseRecord.parse(data) is None:  # only an unreadable record's age needs the object's mtime
            info = self.fs.get_file_info(self.path)
            mtime = info.mtime.timestamp() if info.mtime is not None else None
        return _Blob(data, None, mtime)

    def _put(self, data: bytes) -> None:
        with self.fs.open_output_stream(self.path) as f:
            f.write(data)

    def create(self, data: bytes) -> str | None | bool:
        self._put(data)
        return None

    def replace(self, data: bytes, expected: _Blob) -> str | None | bool:
        current = self.read()
        if current is None or current.data != expected.data:
            return False
        self._put(data)
        return None

    renew = replace

    def delete(self, expected: _Blob) -> bool:
        current = self.read()
        if current is None or current.data != expected.data:
            return False
        self.fs.delete_file(self.path)
        return True


class _S3Store:
    """A lease object on S3 through boto3, with conditional writes (If-None-Match / If-Match)."""

    strong = True

    def __init__(self, bucket: str, key: str):
        import boto3

        self.bucket, self.key = bucket, key
        self.client = boto3.client("s3")

    @staticmethod
    def _precondition_failed(err: Exception) -> bool:
        response = getattr(err, "response", None) or {}
        code = str((response.get("Error") or {}).get("Code", ""))
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return code in {"PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey", "404"} or status in {
            404,
            409,
            412,
        }

    def read(self) -> _Blob | None:
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except self.client.exceptions.NoSuchKey:
            return None
        return _Blob(got["Body"].read(), got["ETag"], got["LastModified"].timestamp())

    def _put(self, data: bytes, **condition: str) -> str | None | bool:
        try:
            return self.client.put_object(Bucket=self.bucket, Key=self.key, Body=data, **condition)["ETag"]
        except Exception as e:  # botocore.exceptions.ClientError
            if self._precondition_failed(e):
                return False
            raise

    def create(self, data: bytes) -> str | None | bool:
        return self._put(data, IfNoneMatch="*")

    def replace(self, data: bytes, expected: _Blob) -> str | None | bool:
        return self._put(data, IfMatch=expected.token or "*")

    renew = replace

    def delete(self, expected: _Blob) -> bool:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=expected.token or "*")
        except Exception as e:
            if self._precondition_failed(e):
                return False
            raise
        return True


def _store_for(lease_uri: str):
    fs, path = io.filesystem(lease_uri)
    if isinstance(fs, pafs.LocalFileSystem):
        return _LocalStore(path)
    if lease_uri.startswith("s3://") and "?" not in lease_uri:
        try:
            bucket, _, key = path.partition("/")
            return _S3Store(bucket, key)
        except ImportError:
            logger.info("boto3 is not installed: the lease on %s uses plain writes and a read-back", lease_uri)
    return _ObjectStore(fs, path)


# -- the lease -------------------------------------------------------------------
class OutputLease:
    """``with OutputLease(spec.output.path, spec.name, spec.output.lease_ttl_s): ...`` runs with the output to itself.

    ``acquire()`` raises ``LeaseHeld`` (a ``ConfigError``: the CLI prints it as one line and exits 75)
    while another run's heartbeat is fresh.
    """

    def __init__(
        self,
        output_path: str,
        job_name: str,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        settle_s: float = DEFAULT_SETTLE_S,
        on_lost: Callable[[str], None] | None = None,
    ):
        if ttl_s <= 0:
            raise ValueError("ttl_s must be > 0")
        self.output_path = output_path
        self.uri = io.join(output_path, LEASE_FILE)
        self.job_name = job_name
        self.ttl_s = float(ttl_s)
        self.settle_s = settle_s
        self.on_lost = on_lost
        self.owner = uuid.uuid4().hex
        self._store = _store_for(self.uri)
        self._acquired_at = 0.0
        self._held: _Blob | None = None  # our record as last written (and its ETag on S3)
        self._lost: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public
    @property
    def held(self) -> bool:
        return self._held is not None and self._lost is None

    @property
    def lost(self) -> str | None:
        """Why the lease was lost, or None."""
        return self._lost

    def ensure_held(self) -> None:
        if self._lost is not None:
            raise LeaseLost(self._lost)
        if self._held is None:
            raise LeaseLost(f"{self.uri}: not acquired")

    def acquire(self) -> OutputLease:
        if self._held is not None:
            return self
        for _ in range(_ATTEMPTS):
            current = self._store.read()
            now = time.time()
            self._acquired_at = now
            data = self._record(now).to_bytes()
            if current is None:
                result = self._store.create(data)
            else:
                record = LeaseRecord.parse(current.data)
                if not self._expired(record, current, now):
                    raise LeaseHeld(self._held_message(record, current, now))
                logger.warning("%s: taking over an expired lease: %s", self.uri, self._describe(record, current, now))
                result = self._store.replace(data, current)
            if result is False:  # another run got there first: look at what it wrote
                time.sleep(0.05)
                continue
            if not isinstance(self._store, _LocalStore):  # object stores: read back after a settle time
                time.sleep(self.settle_s)
            check = self._store.read()
            record = LeaseRecord.parse(check.data) if check is not None else None
            if record is not None and record.owner == self.owner:
                self._held = check
                self._lost = None
                self._start_heartbeat()
                logger.info("%s: lease acquired by %s (ttl %g s)", self.uri, self._me(), self.ttl_s)
                return self
            if check is None:
                continue
            raise LeaseHeld(self._held_message(record, check, time.time()))
        raise LeaseHeld(f"{self.uri}: could not acquire the output lease: other runs keep taking it")

    def renew(self) -> bool:
        """One heartbeat; False when the lease turned out to be lost (another run holds it now)."""
        with self._lock:
            if self._held is None or self._lost is not None:
                return False
            current = self._store.read()
            record = LeaseRecord.parse(current.data) if current is not None else None
            if record is None or record.owner != self.owner:
                holder = self._describe(record, current, time.time()) if current is not None else "nobody"
                self._mark_lost(f"{self.uri}: this run's output lease was taken over; it is now held by {holder}")
                return False
            data = self._record(time.time()).to_bytes()
            token = self._store.renew(data, current)
            if token is False:
                self._mark_lost(f"{self.uri}: this run's output lease changed under it while renewing")
                return False
            self._held = _Blob(data, token, None)
            return True

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still this run's; never touches another's."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        self._thread = None
        with self._lock:
            if self._held is None:
                return
            try:
                current = self._store.read()
                record = LeaseRecord.parse(current.data) if current is not None else None
                if record is not None and record.owner == self.owner:
                    self._store.delete(current)
                else:
                    logger.warning("%s: not releasing the lease: it is no longer this run's", self.uri)
            finally:
                self._held = None

    def __enter__(self) -> OutputLease:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- internals
    def _record(self, now: float) -> LeaseRecord:
        return LeaseRecord(
            owner=self.owner,
            host=socket.gethostname(),
            pid=os.getpid(),
            job=self.job_name,
            acquired_at=self._acquired_at,
            heartbeat_at=now,
            ttl_s=self.ttl_s,
        )

    def _me(self) -> str:
        return f"job {self.job_name!r} (host {socket.gethostname()}, pid {os.getpid()})"

    def _expired(self, record: LeaseRecord | None, blob: _Blob, now: float) -> bool:
        if record is not None:
            return now - record.heartbeat_at > record.ttl_s
        # Not a lease record (a torn write, a foreign file): expired once unchanged for our TTL.
        return blob.mtime is not None and now - blob.mtime > self.ttl_s

    def _describe(self, record: LeaseRecord | None, blob: _Blob | None, now: float) -> str:
        if record is None:
            age = (
                f"{now - blob.mtime:.0f} s ago" if blob is not None and blob.mtime is not None else "at an unknown time"
            )
            return f"an unreadable lease file, last modified {age}"
        return (
            f"job {record.job!r} (host {record.host}, pid {record.pid}), "
            f"last heartbeat {max(0.0, now - record.heartbeat_at):.0f} s ago, ttl {record.ttl_s:g} s"
        )

    def _held_message(self, record: LeaseRecord | None, blob: _Blob | None, now: float) -> str:
        return (
            f"{self.output_path}: output is in use by {self._describe(record, blob, now)}; "
            f"wait for it to finish (a killed run's lease expires after its ttl) or use another output.path"
        )

    def _mark_lost(self, why: str) -> None:
        self._lost = why
        logger.error("%s", why)
        if self.on_lost is not None:
            try:
                self.on_lost(why)
            except Exception:
                logger.exception("%s: on_lost callback failed", self.uri)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{self.job_name}", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        interval = self.ttl_s / 3
        last_ok = time.monotonic()
        while not self._stop.wait(interval):
            try:
                if not self.renew():
                    return
                last_ok = time.monotonic()
            except Exception as e:  # a transient storage error: try again next beat
                logger.warning("%s: heartbeat failed (%s: %s)", self.uri, type(e).__name__, e)
                if time.monotonic() - last_ok > self.ttl_s:
                    logger.error("%s: no heartbeat for over %g s; another run may take the lease", self.uri, self.ttl_s)
