"""The Batch API's logic, apart from HTTP: files, batches, and the state machine that runs them.

A batch moves ``validating -> in_progress -> finalizing -> completed`` (or ``failed``,
``cancelling -> cancelled``, ``expired``). Every ingress replica runs ``reconcile_all`` every
``poll_interval_s``: it reads the stored batch, looks at its job run and output folder, and writes
the next state with a compare-and-swap. The runner's hooks are idempotent, so two replicas (or
one after a restart) advancing the same batch cannot start it twice or lose an update.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

from pydantic import ValidationError

from serve_apps.batches.config import BatchesConfig
from serve_apps.batches.models import (
    SUPPORTED_ENDPOINTS,
    Batch,
    BatchCreate,
    BatchErrorItem,
    BatchErrors,
    FileObject,
    RequestCounts,
    page,
)
from serve_apps.batches.runner import BatchRunner, RunState
from serve_apps.batches.store import Blobs, Conflict, StateStore, check_id
from serve_apps.batches.validate import validate_lines

logger = logging.getLogger(__name__)

ANONYMOUS = "anonymous"
OUTPUT_FILE, ERRORS_FILE, SUMMARY_FILE, PROGRESS_FILE, SUCCESS_FILE = (
    "output.jsonl",
    "errors.jsonl",
    "summary.json",
    "progress.json",
    "_SUCCESS",
)
CHUNK = 1 << 20


class BatchAPIError(Exception):
    """An error the API answers in OpenAI's shape."""

    def __init__(
        self, status: int, message: str, code: str | None, param: str | None = None, type_: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.type = type_ or ("invalid_request_error" if status < 500 else "server_error")


def not_found(kind: str, id_: str) -> BatchAPIError:
    return BatchAPIError(404, f"No such {kind} object: {id_}", "not_found", "id")


def owner_of(token: str | None) -> str:
    """Who owns what: a hash of the API key (the raw key is never stored)."""
    if not token:
        return ANONYMOUS
    return hashlib.sha256(f"krllm-batch-owner:{token}".encode()).hexdigest()[:40]


def _derived_file_id(batch_id: str, which: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{which}".encode()).hexdigest()[:24]


def _merged(overrides: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` with ``overrides`` merged over it, mapping by mapping."""
    out = dict(spec)
    for key, value in overrides.items():
        out[key] = _merged(value, out[key]) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _count_lines(blobs: Blobs, path: str) -> int:
    if not blobs.exists(path):
        return 0
    with blobs.open(path) as f:
        return sum(1 for line in f if line.strip())


class BatchService:
    def __init__(
        self,
        cfg: BatchesConfig,
        models: dict[str, Any],
        state: StateStore,
        blobs: Blobs,
        runner: BatchRunner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cfg = cfg
        self.models = models
        self.state = state
        self.blobs = blobs
        self.runner = runner
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    # --- files ----------------------------------------------------------------------------

    def create_file(self, owner: str, filename: str, purpose: str, stream: IO[bytes]) -> dict[str, Any]:
        if purpose != "batch":
            raise BatchAPIError(
                400, f"purpose {purpose!r} is not supported here; use 'batch'", "invalid_value", "purpose"
            )
        file_id = "file-" + uuid.uuid4().hex[:24]
        path = self.blobs.path("files", file_id, "input.jsonl")
        size = 0
        try:
            with self.blobs.open(path, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > self.cfg.max_file_bytes:
                        raise BatchAPIError(
                            400,
                            f"the file is larger than the limit of {self.cfg.max_file_bytes} bytes",
                            "file_too_large",
                            "file",
                        )
                    out.write(chunk)
        except BatchAPIError:
            self.blobs.delete(self.blobs.path("files", file_id), recursive=True)
            raise
        record = FileObject(
            id=file_id,
            bytes=size,
            created_at=self.now(),
            filename=(filename or "upload.jsonl")[:255],
            purpose="batch",
            owner=owner,
            path=path,
        )
        self.state.create("file", record.model_dump(mode="json"))
        return record.public()

    def _file(self, owner: str, file_id: str) -> FileObject:
        try:
            found = self.state.get("file", check_id(file_id))
        except KeyError:
            found = None
        if found is None or found[0].get("owner") != owner:
            raise not_found("File", file_id)
        return FileObject.model_validate(found[0])

    def get_file(self, owner: str, file_id: str) -> dict[str, Any]:
        return self._file(owner, file_id).public()

    def file_content(self, owner: str, file_id: str) -> tuple[FileObject, Iterator[bytes]]:
        record = self._file(owner, file_id)
        if not self.blobs.exists(record.path):
            raise not_found("File content", file_id)
        return record, self.blobs.iter_chunks(record.path)

    def delete_file(self, owner: str, file_id: str) -> dict[str, Any]:
        record = self._file(owner, file_id)
        self.state.delete("file", file_id)
        if record.batch_id is None:
            self.blobs.delete(self.blobs.path("files", file_id), recursive=True)
        else:
            self.blobs.delete(record.path)
        return {"id": file_id, "object": "file", "deleted": True}

    def list_files(
        self,
        owner: str,
        *,
        purpose: str | None = None,
        after: str | None = None,
        limit: int = 10000,
        order: str = "desc",
    ) -> dict[str, Any]:
        if order not in ("asc", "desc"):
            raise BatchAPIError(400, "order must be asc or desc", "invalid_value", "order")
        records = [FileObject.model_validate(r) for r in self.state.list("file", owner)]
        if purpose:
            records = [r for r in records if r.purpose == purpose]
        records.sort(key=lambda r: (r.created_at, r.id), reverse=order == "desc")
        return self._page([r.public() for r in records], after, limit, 10000)

    @staticmethod
    def _page(items: list[dict[str, Any]], after: str | None, limit: int, max_limit: int) -> dict[str, Any]:
        if not 1 <= limit <= max_limit:
            raise BatchAPIError(400, f"limit must be between 1 and {max_limit}", "invalid_value", "limit")
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        return page(items[:limit], len(items) > limit)

    # --- batches --------------------------------------------------------------------------

    def create_batch(self, owner: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BatchAPIError(400, "the body must be a JSON object", "invalid_request")
        try:
            req = BatchCreate.model_validate(body)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise BatchAPIError(400, f"Invalid request: {first['msg']} (at {where})", "invalid_value", where) from None
        if req.endpoint not in SUPPORTED_ENDPOINTS:
            raise BatchAPIError(
                400,
                f"endpoint {req.endpoint!r} is not supported for batches here; use {', '.join(SUPPORTED_ENDPOINTS)}",
                "invalid_value",
                "endpoint",
            )
        source = self._file(owner, req.input_file_id)
        if source.purpose != "batch":
            raise BatchAPIError(400, "the input file must have purpose 'batch'", "invalid_value", "input_file_id")
        token = uuid.uuid4().hex
        batch_id = f"batch_{token}"
        prefix = getattr(getattr(self.cfg, "kubernetes", None), "name_prefix", "krllm")
        now = self.now()
        batch = Batch(
            id=batch_id,
            endpoint=req.endpoint,
            input_file_id=req.input_file_id,
            completion_window=req.completion_window,
            created_at=now,
            expires_at=now + self.cfg.completion_window_s,
            metadata=req.metadata,
            owner=owner,
            output_path=self.blobs.path("batches", batch_id, "output"),
            run_name=f"{prefix}-batch-{token[:16]}",
        )
        self.state.create("batch", batch.model_dump(mode="json"))
        return batch.public()

    def _batch(self, owner: str | None, batch_id: str) -> tuple[Batch, str]:
        try:
            found = self.state.get("batch", check_id(batch_id))
        except KeyError:
            found = None
        if found is None or (owner is not None and found[0].get("owner") != owner):
            raise not_found("Batch", batch_id)
        return Batch.model_validate(found[0]), found[1]

    def get_batch(self, owner: str, batch_id: str) -> dict[str, Any]:
        return self._batch(owner, batch_id)[0].public()

    def list_batches(self, owner: str, *, after: str | None = None, limit: int = 20) -> dict[str, Any]:
        records = [Batch.model_validate(r) for r in self.state.list("batch", owner)]
        records.sort(key=lambda b: (b.created_at, b.id), reverse=True)
        return self._page([b.public() for b in records], after, limit, 100)

    def cancel_batch(self, owner: str, batch_id: str) -> dict[str, Any]:
        for _ in range(5):
            batch, version = self._batch(owner, batch_id)
            if batch.status in ("cancelling", "cancelled"):
                return batch.public()
            if batch.terminal or batch.status == "finalizing":
                raise BatchAPIError(
                    409, f"cannot cancel a batch that is {batch.status}", "invalid_state", type_="invalid_request_error"
                )
            batch.status = "cancelling"
            batch.cancelling_at = self.now()
            try:
                self.state.update("batch", batch.model_dump(mode="json"), version)
            except Conflict:
                continue
            return batch.public()
        raise BatchAPIError(409, "the batch changed while cancelling; retry", "conflict")

    # --- the state machine ----------------------------------------------------------------

    def reconcile_all(self) -> None:
        for record in self.state.list("batch"):
            if record.get("status") in ("validating", "in_progress", "finalizing", "cancelling"):
                try:
                    self.reconcile(record["id"])
                except Exception:  # one bad batch must not stop the others
                    logger.exception("batch %s: reconcile failed", record.get("id"))

    def reconcile(self, batch_id: str) -> Batch:
        """Advance one batch as far as it goes now; safe to call from anywhere, any number of times.
        Each state is written before the next step starts (so ``finalizing`` is seen while outputs are collected)."""
        batch = self._step(batch_id)
        for _ in range(4):
            if batch.terminal:
                break
            before = batch.status
            batch = self._step(batch_id)
            if batch.status == before:
                break
        return batch

    def _step(self, batch_id: str) -> Batch:
        for _ in range(5):
            batch, version = self._batch(None, batch_id)
            if batch.terminal:
                return batch
            before = batch.model_dump(mode="json")
            step = {
                "validating": self._validate,
                "in_progress": self._watch,
                "finalizing": self._finalize,
                "cancelling": self._stop,
            }[batch.status]
            step(batch)
            after = batch.model_dump(mode="json")
            if after == before:
                return batch
            try:
                self.state.update("batch", after, version)
                return batch
            except Conflict:
                continue
        return batch

    def _input(self, batch: Batch) -> FileObject | None:
        found = self.state.get("file", batch.input_file_id)
        return FileObject.model_validate(found[0]) if found else None

    def _fail(self, batch: Batch, errors: list[BatchErrorItem]) -> None:
        batch.status = "failed"
        batch.failed_at = self.now()
        batch.errors = BatchErrors(data=errors)

    def _validate(self, batch: Batch) -> None:
        source = self._input(batch)
        if source is None or not self.blobs.exists(source.path):
            self._fail(batch, [BatchErrorItem(code="file_not_found", message="the input file was deleted")])
            return
        with self.blobs.open(source.path) as f:
            result = validate_lines(f, batch.endpoint, self.models, self.cfg.max_requests_per_file)
        batch.request_counts = RequestCounts(total=result.total)
        if not result.ok:
            self._fail(batch, result.errors)
            return
        batch.model = result.model
        self.runner.submit(batch, self.job_spec(batch, source), self.models[batch.model])
        batch.status = "in_progress"
        batch.in_progress_at = self.now()

    def job_spec(self, batch: Batch, source: FileObject) -> dict[str, Any]:
        """The batch job's spec (its documented contract: workload openai_batch, input, output, engine)."""
        entry = self.models[batch.model]
        return _merged(
            self.cfg.job,
            {
                "name": batch.run_name,
                "workload": {"name": "openai_batch"},
                "model": {"source": entry.model_source, "served_name": batch.model},
                "input": {"path": source.path},
                "output": {"path": batch.output_path},
                "engine": self.runner.engine(batch.model, entry),
                "sampling": {"max_tokens": self.cfg.max_tokens},
                # As with OpenAI, failed requests go to the error file and never fail the batch.
                "errors": {"on_row_error": "record", "max_error_fraction": 1.0},
            },
        )

    def _progress(self, batch: Batch) -> None:
        text = self.blobs.read_text(f"{batch.output_path}/{PROGRESS_FILE}")
        if not text:
            return
        try:
            progress = json.loads(text)
            ok, failed = int(progress["rows_ok"]), int(progress["rows_failed"])
        except (ValueError, KeyError, TypeError):
            return
        total = batch.request_counts.total
        batch.request_counts = RequestCounts(total=total, completed=min(ok, total), failed=min(failed, total))

    def _watch(self, batch: Batch) -> None:
        if batch.expires_at is not None and self.now() >= batch.expires_at:
            batch.status = "cancelling"
            batch.cancelling_at = self.now()
            batch.expire_on_stop = True
            self._stop(batch)
            return
        state = self.runner.status(batch)
        self._progress(batch)
        if state.phase in ("pending", "running"):
            return
        succeeded = self.blobs.exists(f"{batch.output_path}/{SUCCESS_FILE}")
        if state.phase == "succeeded" or succeeded:
            batch.status = "finalizing"
            batch.finalizing_at = self.now()
            return
        # The run failed, or vanished (Ray restarted, pod lost, stopped without a cancel): run it again on
        # the same output folder, which resumes (only missing rows), a few times, each after retry_delay_s
        # (longer than the job's output lease, which a crashed run holds a while; the job then exits 2).
        limit = getattr(self.runner.cfg, "max_resubmits", 3)
        source = self._input(batch)
        if batch.resubmits >= limit or source is None:
            self._collect(batch, assemble=True)
            if source is None:
                message = "the input file was deleted"
            elif state.phase == "failed":
                message = state.message or "the batch job failed"
            else:
                message = f"the job run was lost {batch.resubmits + 1} times"
            self._fail(batch, [BatchErrorItem(code="batch_failed", message=message)])
            self.runner.cleanup(batch)
            return
        if batch.retry_at is None:
            logger.warning(
                "batch %s: run %s %s (%s); running it again in %.0f s",
                batch.id,
                batch.run_name,
                state.phase,
                state.message,
                self.cfg.retry_delay_s,
            )
            batch.retry_at = self.clock() + self.cfg.retry_delay_s
            if self.cfg.retry_delay_s > 0:
                return
        if self.clock() < batch.retry_at:
            return
        batch.retry_at = None
        self.runner.cleanup(batch)
        # A new run name: the old run (a RayJob being deleted, a dead actor) never collides with the new one.
        base = batch.run_name.rsplit("-r", 1)[0] if batch.resubmits else batch.run_name
        batch.resubmits += 1
        batch.run_name = f"{base}-r{batch.resubmits}"
        self.runner.submit(batch, self.job_spec(batch, source), self.models[batch.model])

    def _finalize(self, batch: Batch) -> None:
        self._collect(batch, assemble=False)
        batch.status = "completed"
        batch.completed_at = self.now()
        self.runner.cleanup(batch)

    def _stop(self, batch: Batch) -> None:
        state: RunState = self.runner.status(batch)
        if not state.done:
            if batch.cancel_sent_at is None:
                batch.cancel_sent_at = self.clock()
            self.runner.cancel(batch)
            self._progress(batch)
            return
        # The job wrote its partial output on SIGTERM (exit 143); after a harder stop, assemble it here.
        self._collect(batch, assemble=state.exit_code != 143)
        now = self.now()
        if batch.expire_on_stop:
            batch.status, batch.expired_at = "expired", now
        else:
            batch.status, batch.cancelled_at = "cancelled", now
        self.runner.cleanup(batch)

    def _collect(self, batch: Batch, *, assemble: bool) -> None:
        """Output and error files of the batch from the job's output folder, and the final counts."""
        out = batch.output_path
        results, errors = f"{out}/{OUTPUT_FILE}", f"{out}/{ERRORS_FILE}"
        if (assemble or not self.blobs.exists(results)) and self.blobs.exists(out):
            try:
                from jobs.openai_files import assemble as assemble_output

                assemble_output(out)
            except ImportError:
                logger.warning("jobs.openai_files is not available; using the output as the job left it")
            except Exception:
                logger.exception("batch %s: assembling the partial output failed", batch.id)
        summary = None
        if self.blobs.exists(f"{out}/{SUCCESS_FILE}"):
            try:
                summary = json.loads(self.blobs.read_text(f"{out}/{SUMMARY_FILE}") or "null")
            except ValueError:
                summary = None
        total = batch.request_counts.total
        if isinstance(summary, dict) and "rows_ok" in summary:
            ok, failed = int(summary["rows_ok"]), int(summary.get("rows_failed", 0))
            tokens_in, tokens_out = int(summary.get("input_tokens") or 0), int(summary.get("output_tokens") or 0)
            batch.usage = {
                "input_tokens": tokens_in,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": tokens_out,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": tokens_in + tokens_out,
            }
        else:
            ok, failed = _count_lines(self.blobs, results), _count_lines(self.blobs, errors)
        batch.request_counts = RequestCounts(total=total, completed=min(ok, total), failed=min(failed, total))
        if self.blobs.exists(results):
            batch.output_file_id = self._output_file(batch, "output", results)
        if self.blobs.exists(errors) and self.blobs.size(errors) > 0:
            batch.error_file_id = self._output_file(batch, "error", errors)

    def _output_file(self, batch: Batch, which: str, path: str) -> str:
        file_id = _derived_file_id(batch.id, which)
        record = FileObject(
            id=file_id,
            bytes=self.blobs.size(path),
            created_at=self.now(),
            filename=f"{batch.id}_{which}.jsonl",
            purpose="batch_output",
            owner=batch.owner,
            path=path,
            batch_id=batch.id,
        )
        with contextlib.suppress(Conflict):  # another replica (or an earlier try) made it
            self.state.create("file", record.model_dump(mode="json"))
        return file_id
