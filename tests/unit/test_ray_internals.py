"""What serve_apps relies on from Ray Serve LLM's internals (serve_apps/ray_internals.py), checked as
behaviour: a Ray upgrade that moves or changes one of them fails here, not in a deployed ingress."""

from __future__ import annotations

from fastapi import FastAPI
from ray.serve.llm import LLMConfig
from ray.serve.llm.ingress import OpenAiIngress

from serve_apps.ray_internals import (
    DEFAULT_ENDPOINTS,
    maybe_apply_llm_deployment_config_defaults,
    new_fastapi_app,
    to_model_metadata,
)


def test_default_endpoints_are_openai_ingress_methods_with_route_factories():
    for name in ("chat", "completions", "models"):
        assert name in DEFAULT_ENDPOINTS, sorted(DEFAULT_ENDPOINTS)
    app = FastAPI()
    for name, route in DEFAULT_ENDPOINTS.items():
        assert callable(getattr(OpenAiIngress, name, None)), name
        assert callable(route(app)), name  # a route decorator for that app


def test_new_fastapi_app_is_a_fresh_app():
    a, b = new_fastapi_app(), new_fastapi_app()
    assert isinstance(a, FastAPI) and a is not b


def test_model_metadata_names_the_model():
    config = LLMConfig(model_loading_config={"model_id": "m1", "model_source": "org/m"}, accelerator_type=None)
    card = to_model_metadata("m1", config)
    assert card.id == "m1"


def test_deployment_defaults_merge_with_ours_winning():
    merged = maybe_apply_llm_deployment_config_defaults(
        {"ray_actor_options": {"num_cpus": 1, "memory": 5}, "max_ongoing_requests": 7},
        {"ray_actor_options": {"num_cpus": 0}},
    )
    assert merged["ray_actor_options"] == {"num_cpus": 0, "memory": 5}
    assert merged["max_ongoing_requests"] == 7


def test_ray_data_llm_gives_each_packed_engine_its_share_of_a_gpu():
    """jobs.engine packs engines with a placement bundle; Ray Data LLM must turn it into the engine actor's
    fractional ``num_gpus`` (not a placement group per engine) and keep our light stages' CPUs."""
    import ray

    from jobs.engine import build_processor
    from tests.support import chat_job

    spec = chat_job(concurrency=4, engines_per_gpu=4, engine_kwargs={"kv_cache_memory_bytes": 1 << 30})

    started = not ray.is_initialized()
    try:  # Ray Data LLM's telemetry starts a local Ray
        processor = build_processor(spec, "/nonexistent/model", "gpu", lambda row, result, error: row)
    finally:
        if started and ray.is_initialized():
            ray.shutdown()
    engine = processor.get_stage_by_name("vLLMEngineStage").map_batches_kwargs
    assert engine["num_gpus"] == 0.25 and engine["num_cpus"] == 1
    assert "ray_remote_args_fn" not in engine  # no placement group of its own: "uni" executor
    for name in ("ChatTemplateStage", "TokenizeStage"):
        assert processor.get_stage_by_name(name).map_batches_kwargs["num_cpus"] == 0.25, name
    # The engine's own output text is the result: no second decode of the same tokens.
    assert "DetokenizeStage" not in processor.list_stage_names()
