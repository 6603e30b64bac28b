"""The OpenAI ingress: Ray Serve LLM's ``OpenAiIngress`` plus a health route and optional auth.

Ray's ``build_openai_app`` builds its FastAPI app internally, so nothing can be put in
front of the routes. ``build_ingress`` repeats its few steps with Ray's own public parts
(``OpenAiIngress``, ``make_fastapi_ingress``, ``build_llm_deployment``) and the internals of
``serve_apps.ray_internals``, and hands ``make_fastapi_ingress`` an app that carries the auth middleware.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from ray import serve
from ray.serve.deployment import Application
from ray.serve.llm import LLMConfig, build_llm_deployment
from ray.serve.llm.ingress import OpenAiIngress, make_fastapi_ingress
from starlette.exceptions import HTTPException as StarletteHTTPException

from serve_apps.auth import ApiKeyAuthMiddleware, NoApiKeysError, openai_error, read_api_keys
from serve_apps.batches.config import BatchesConfig
from serve_apps.batches.routes import BATCH_ENDPOINTS, BatchRoutes, batch_api_error_handler
from serve_apps.batches.service import BatchAPIError
from serve_apps.catalog import Auth, ModelEntry
from serve_apps.ray_internals import (
    DEFAULT_ENDPOINTS,
    maybe_apply_llm_deployment_config_defaults,
    new_fastapi_app,
    to_model_metadata,
)

logger = logging.getLogger(__name__)

HEALTH_PATH = "/health"


class KrllmIngress(BatchRoutes, OpenAiIngress):
    """OpenAiIngress with ``GET /health`` and, when enabled, the Batch API; checks at start-up that auth has keys."""

    def __init__(
        self,
        llm_deployments: dict,
        model_cards: dict,
        *,
        auth: dict | None = None,
        batches: dict | None = None,
        entries: list[dict] | None = None,
        **kwargs: Any,
    ):
        super().__init__(llm_deployments, model_cards, **kwargs)
        auth_cfg = Auth.model_validate(auth or {})
        if auth_cfg.enabled and not read_api_keys(auth_cfg.api_keys_env, auth_cfg.api_keys_file):
            # Fail the replica loudly rather than serve a locked (or open) endpoint.
            raise NoApiKeysError(
                "auth.enabled is true but no API key was found in "
                f"${auth_cfg.api_keys_env or '<unset>'} or file {auth_cfg.api_keys_file or '<unset>'}"
            )
        batches_cfg = BatchesConfig.model_validate(batches or {})
        if batches_cfg.enabled:
            from serve_apps.batches.routes import build_service

            models = {e.model_id: e for e in (ModelEntry.model_validate(d) for d in entries or [])}
            self.start_batches(build_service(batches_cfg, models, auth_cfg))

    async def health(self) -> dict[str, Any]:
        """Liveness of the ingress, open even with auth on (for probes)."""
        return {"status": "ok", "models": sorted(self._model_cards)}


ENDPOINTS = {**DEFAULT_ENDPOINTS, "health": lambda app: app.get(HEALTH_PATH)}


async def _http_exception_as_openai_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """FastAPI answers HTTPException (unknown model, unknown route...) with {"detail": ...}; use OpenAI's shape."""
    return JSONResponse(
        status_code=exc.status_code,
        content=openai_error(str(exc.detail), type_="invalid_request_error", code=exc.status_code),
        headers=getattr(exc, "headers", None),
    )


async def _validation_error_as_openai_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """400 for a body that does not parse or validate.

    Replaces Ray's handler, which echoes the offending input back and fails with a 500 when
    that input is raw bytes (a non-JSON body sent without a JSON content type).
    """
    errors = exc.errors()
    first = errors[0] if errors else {}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    where = ".".join(loc)
    message = f"Invalid request: {first.get('msg', 'the body is not a valid request')}"
    if where:
        message += f" (at {where})"
    return JSONResponse(
        status_code=400,
        content=openai_error(message, type_="invalid_request_error", code="invalid_parameter", param=where or None),
    )


def make_fastapi_app(auth: Auth) -> FastAPI:
    """Ray's ingress FastAPI app: OpenAI-shaped HTTP errors, and the auth middleware outermost when auth is on."""
    app = new_fastapi_app()
    app.add_exception_handler(StarletteHTTPException, _http_exception_as_openai_error)
    app.add_exception_handler(RequestValidationError, _validation_error_as_openai_error)
    app.add_exception_handler(BatchAPIError, batch_api_error_handler)
    if auth.enabled:
        app.add_middleware(ApiKeyAuthMiddleware, api_keys_env=auth.api_keys_env, api_keys_file=auth.api_keys_file)
    return app


def build_ingress(
    llm_configs: list[LLMConfig],
    auth: Auth,
    batches: BatchesConfig | None = None,
    entries: list[ModelEntry] | None = None,
) -> Application:
    """The OpenAI router over one LLMServer deployment per config (as ``build_openai_app``), plus the Batch API."""
    batches = batches or BatchesConfig()
    llm_deployments = {c.model_id: build_llm_deployment(c) for c in llm_configs}
    model_cards = {c.model_id: to_model_metadata(c.model_id, c) for c in llm_configs}
    lora_paths = {c.model_id: c.lora_config.dynamic_lora_loading_path for c in llm_configs if c.lora_config is not None}
    options = maybe_apply_llm_deployment_config_defaults(
        KrllmIngress.get_deployment_options(llm_configs),
        # The router does no compute; num_cpus 0 lets it sit on a resource-less head node.
        {"ray_actor_options": {"num_cpus": 0}},
    )
    endpoints = {**ENDPOINTS, **BATCH_ENDPOINTS} if batches.enabled else ENDPOINTS
    ingress_cls = make_fastapi_ingress(KrllmIngress, endpoint_map=endpoints, app=make_fastapi_app(auth))
    return serve.deployment(ingress_cls, **options).bind(
        llm_deployments=llm_deployments,
        model_cards=model_cards,
        lora_paths=lora_paths,
        auth=auth.model_dump(),
        batches=batches.model_dump(mode="json"),
        entries=[e.model_dump(mode="json") for e in entries or []],
    )
