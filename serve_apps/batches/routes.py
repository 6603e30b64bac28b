"""The HTTP side: ``/v1/files`` and ``/v1/batches`` as methods of the ingress (``BatchRoutes``).

They are registered through the ingress's endpoint map (``BATCH_ENDPOINTS``), so they sit behind
the same FastAPI app, API-key middleware and OpenAI-shaped error handlers as the model routes.
The owner of everything is a hash of the caller's API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from serve_apps.auth import openai_error
from serve_apps.batches.config import BatchesConfig
from serve_apps.batches.service import BatchAPIError, BatchService, owner_of

logger = logging.getLogger(__name__)

UPLOAD_SLACK_BYTES = 1 << 20  # multipart framing and the purpose field, beyond the file itself


def _token(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise BatchAPIError(400, f"{name} must be an integer", "invalid_value", name) from None


async def batch_api_error_handler(request: Request, exc: BatchAPIError) -> JSONResponse:
    return JSONResponse(
        status_code=exc.status, content=openai_error(exc.message, type_=exc.type, code=exc.code, param=exc.param)
    )


class BatchRoutes:
    """Mixed into the ingress class; ``_batch_service`` is set by ``start_batches``."""

    _batch_service: BatchService | None = None
    _batch_stop: threading.Event | None = None

    def start_batches(self, service: BatchService) -> None:
        self._batch_service = service
        self._batch_stop = threading.Event()
        thread = threading.Thread(target=self._batch_loop, name="krllm-batch-reconciler", daemon=True)
        thread.start()

    def _batch_loop(self) -> None:
        service, stop = self._batch_service, self._batch_stop
        while not stop.wait(service.cfg.poll_interval_s):
            try:
                service.reconcile_all()
            except Exception:
                logger.exception("batch reconcile loop")

    def _svc(self) -> BatchService:
        if self._batch_service is None:
            raise BatchAPIError(404, "the Batch API is not enabled on this endpoint", "not_found")
        return self._batch_service

    def _kick(self, batch_id: str) -> None:
        """Advance a batch now rather than at the next loop (validation starts right after create)."""
        service = self._svc()

        def run() -> None:
            with contextlib.suppress(Exception):
                service.reconcile(batch_id)

        asyncio.get_running_loop().run_in_executor(None, run)

    # --- files ----------------------------------------------------------------------------

    async def files_create(self, request: Request) -> JSONResponse:
        service = self._svc()
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise BatchAPIError(400, "upload the file as multipart/form-data (fields file, purpose)", "invalid_request")
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > service.cfg.max_file_bytes + UPLOAD_SLACK_BYTES:
            raise BatchAPIError(
                400,
                f"the file is larger than the limit of {service.cfg.max_file_bytes} bytes",
                "file_too_large",
                "file",
            )
        try:
            form = await request.form()
        except Exception as e:  # malformed multipart
            raise BatchAPIError(400, f"could not read the multipart body: {e}", "invalid_request") from None
        try:
            upload, purpose = form.get("file"), form.get("purpose")
            if upload is None or isinstance(upload, str):
                raise BatchAPIError(
                    400, "the multipart field 'file' (a file) is required", "missing_required_parameter", "file"
                )
            if not isinstance(purpose, str) or not purpose:
                raise BatchAPIError(400, "the field 'purpose' is required", "missing_required_parameter", "purpose")
            owner = owner_of(_token(request))
            result = await run_in_threadpool(service.create_file, owner, upload.filename or "", purpose, upload.file)
        finally:
            await form.close()
        return JSONResponse(result)

    async def files_list(self, request: Request) -> JSONResponse:
        service = self._svc()
        q = request.query_params
        result = await run_in_threadpool(
            lambda: service.list_files(
                owner_of(_token(request)),
                purpose=q.get("purpose"),
                after=q.get("after"),
                limit=_int(request, "limit", 10000),
                order=q.get("order", "desc"),
            )
        )
        return JSONResponse(result)

    async def files_get(self, file_id: str, request: Request) -> JSONResponse:
        service = self._svc()
        return JSONResponse(await run_in_threadpool(service.get_file, owner_of(_token(request)), file_id))

    async def files_content(self, file_id: str, request: Request) -> StreamingResponse:
        service = self._svc()
        record, chunks = await run_in_threadpool(service.file_content, owner_of(_token(request)), file_id)
        return StreamingResponse(
            iterate_in_threadpool(chunks),
            media_type="application/octet-stream",
            headers={
                "content-length": str(record.bytes),
                "content-disposition": f'attachment; filename="{record.filename}"',
            },
        )

    async def files_delete(self, file_id: str, request: Request) -> JSONResponse:
        service = self._svc()
        return JSONResponse(await run_in_threadpool(service.delete_file, owner_of(_token(request)), file_id))

    # --- batches --------------------------------------------------------------------------

    async def batches_create(self, request: Request) -> JSONResponse:
        service = self._svc()
        raw = await request.body()
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            raise BatchAPIError(400, "the body is not valid JSON", "invalid_json") from None
        result = await run_in_threadpool(service.create_batch, owner_of(_token(request)), body)
        self._kick(result["id"])
        return JSONResponse(result)

    async def batches_list(self, request: Request) -> JSONResponse:
        service = self._svc()
        q = request.query_params
        result = await run_in_threadpool(
            lambda: service.list_batches(
                owner_of(_token(request)), after=q.get("after"), limit=_int(request, "limit", 20)
            )
        )
        return JSONResponse(result)

    async def batches_get(self, batch_id: str, request: Request) -> JSONResponse:
        service = self._svc()
        return JSONResponse(await run_in_threadpool(service.get_batch, owner_of(_token(request)), batch_id))

    async def batches_cancel(self, batch_id: str, request: Request) -> JSONResponse:
        service = self._svc()
        result = await run_in_threadpool(service.cancel_batch, owner_of(_token(request)), batch_id)
        self._kick(batch_id)
        return JSONResponse(result)


BATCH_ENDPOINTS = {
    "files_create": lambda app: app.post("/v1/files"),
    "files_list": lambda app: app.get("/v1/files"),
    "files_get": lambda app: app.get("/v1/files/{file_id}"),
    "files_content": lambda app: app.get("/v1/files/{file_id}/content"),
    "files_delete": lambda app: app.delete("/v1/files/{file_id}"),
    "batches_create": lambda app: app.post("/v1/batches"),
    "batches_list": lambda app: app.get("/v1/batches"),
    "batches_get": lambda app: app.get("/v1/batches/{batch_id}"),
    "batches_cancel": lambda app: app.post("/v1/batches/{batch_id}/cancel"),
}


def build_service(cfg: BatchesConfig, models: dict[str, Any], auth: Any = None) -> BatchService:
    """The service for this replica: folder state + local Ray runner, or ConfigMaps + RayJobs."""
    from serve_apps.batches.store import Blobs

    blobs = Blobs(cfg.storage_root)
    if cfg.runner == "kubernetes":
        from serve_apps.batches.runner_k8s import KubeRayRunner, current_namespace, kube_clients
        from serve_apps.batches.store import ConfigMapState

        core, custom = kube_clients()
        namespace = current_namespace(cfg.kubernetes.namespace)
        state = ConfigMapState(core, namespace, cfg.kubernetes.name_prefix, cfg.kubernetes.extra_labels)
        runner = KubeRayRunner(cfg.kubernetes, blobs.root, core, custom)
    else:
        from serve_apps.batches.runner_local import LocalRayRunner
        from serve_apps.batches.store import FolderState

        if not blobs.local:
            raise ValueError("batches.runner local keeps its state in a folder: storage_root must be a path")
        state = FolderState(f"{blobs.root}/state")
        runner = LocalRayRunner(cfg.local, f"{blobs.root}/runs", auth)
    return BatchService(cfg, models, state, blobs, runner)
