"""Catalog -> Ray Serve LLM LLMConfig mapping (no Ray cluster, no GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmkit.config import ConfigError
from serve_apps.app import CPU_ENGINE_DEFAULTS, build_llm_configs, llm_config_dict, resolve_mode
from serve_apps.catalog import ModelCatalog
from tests.support import llm_entry

EXAMPLES = Path(__file__).parents[2] / "serve_apps" / "examples"


def catalog(**kw) -> ModelCatalog:
    return ModelCatalog.from_dict(kw)


def test_cpu_mode_engine_defaults_and_overrides(monkeypatch) -> None:
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    c = catalog(device="cpu", models=[llm_entry("m", "org/m", engine_kwargs={"max_model_len": 512})])
    (cfg,) = build_llm_configs(c)
    assert cfg.accelerator_config.kind == "cpu"
    assert cfg.accelerator_type is None
    assert cfg.engine_kwargs["enforce_eager"] is True
    assert cfg.engine_kwargs["dtype"] == "float32"
    assert cfg.engine_kwargs["max_model_len"] == 512  # the entry's own engine_kwargs win
    assert cfg.runtime_env["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "1"
    bundles = cfg.get_engine_config().placement_bundles
    assert bundles == [{"CPU": 1}]


def test_cpu_mode_env_from_environment_and_entry(monkeypatch) -> None:
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "3")
    c = catalog(device="cpu", models=[llm_entry("a", "org/m")])
    assert llm_config_dict(c.models[0], "cpu")["runtime_env"]["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "3"
    c = catalog(
        device="cpu",
        models=[llm_entry("a", "org/m", runtime_env={"env_vars": {"VLLM_CPU_KVCACHE_SPACE": "5"}})],
    )
    assert llm_config_dict(c.models[0], "cpu")["runtime_env"]["env_vars"]["VLLM_CPU_KVCACHE_SPACE"] == "5"


def test_cpu_mode_ignores_accelerator_type() -> None:
    c = catalog(device="cpu", models=[llm_entry("m", "org/m", accelerator_type="L4")])
    (cfg,) = build_llm_configs(c)
    assert cfg.accelerator_type is None and cfg.accelerator_config.kind == "cpu"


@pytest.mark.parametrize("accel", ["T4", "L4", "A10G", "L40S", "A100", "A100-80G", "H100", "H200"])
def test_gpu_accelerator_types_become_ray_resources(accel: str) -> None:
    c = catalog(models=[llm_entry("m", "org/m", accelerator_type=accel, engine_kwargs={"tensor_parallel_size": 2})])
    (cfg,) = build_llm_configs(c)
    assert cfg.accelerator_type == accel
    assert cfg.accelerator_config.kind == "gpu"
    assert cfg.engine_kwargs["tensor_parallel_size"] == 2
    assert not set(CPU_ENGINE_DEFAULTS) & set(cfg.engine_kwargs)
    bundles = cfg.get_engine_config().placement_bundles
    assert len(bundles) == 2
    assert all(b["GPU"] == 1 and b[f"accelerator_type:{accel}"] > 0 for b in bundles)


def test_multi_model_gpu_example() -> None:
    c = ModelCatalog.from_yaml(EXAMPLES / "gpu-multi-h100-l4.yaml")
    big, small = build_llm_configs(c)
    assert {big.model_id: big.accelerator_type, small.model_id: small.accelerator_type} == {
        "llama-3.1-70b-instruct": "H100",
        "qwen2.5-1.5b-instruct": "L4",
    }
    big_bundles = big.get_engine_config().placement_bundles
    assert len(big_bundles) == 4 and all("accelerator_type:H100" in b for b in big_bundles)
    assert all("accelerator_type:L4" in b for b in small.get_engine_config().placement_bundles)
    # s3:// sources are mirrored by Ray, not treated as HF ids.
    assert big.get_engine_config().mirror_config.bucket_uri == "s3://my-models/llama-3.1-70b-instruct"
    assert big.deployment_config["max_ongoing_requests"] == 128


def test_autoscaling_mapping_allows_scale_to_zero() -> None:
    c = catalog(
        device="gpu",
        models=[
            llm_entry(
                "m",
                "org/m",
                deployment_config={
                    "autoscaling_config": {
                        "min_replicas": 0,
                        "max_replicas": 3,
                        "initial_replicas": 1,
                        "target_ongoing_requests": 8,
                    }
                },
            )
        ],
    )
    (cfg,) = build_llm_configs(c)
    auto = cfg.deployment_config["autoscaling_config"]
    assert auto["min_replicas"] == 0 and auto["max_replicas"] == 3
    assert auto["initial_replicas"] == 1 and auto["target_ongoing_requests"] == 8


def test_lora_mapping() -> None:
    c = ModelCatalog.from_yaml(EXAMPLES / "gpu-multi-h100-l4.yaml")
    _, small = build_llm_configs(c)
    assert small.lora_config.dynamic_lora_loading_path == "s3://my-models/qwen2.5-1.5b-lora-adapters"
    assert small.lora_config.max_num_adapters_per_replica == 8
    assert small.engine_kwargs["enable_lora"] is True
    assert small.engine_kwargs["max_lora_rank"] == 32
    assert small.multiplex_config().max_num_models_per_replica == 8


def test_builtin_source_resolves_to_the_cached_weights() -> None:
    c = catalog(device="cpu", models=[llm_entry("m", "builtin:smollm2-135m-instruct")])
    (cfg,) = build_llm_configs(c)
    source = Path(cfg.model_loading_config.model_source)
    assert (source / "config.json").is_file()


def test_unknown_engine_kwarg_is_a_config_error() -> None:
    c = catalog(device="cpu", models=[llm_entry("m", "org/m", engine_kwargs={"no_such_arg": 1})])
    with pytest.raises(ConfigError, match="no_such_arg"):
        build_llm_configs(c)


def test_device_auto(monkeypatch) -> None:
    # No GPU visible to this process (CUDA_VISIBLE_DEVICES="" hides any), no Ray cluster with GPUs.
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_mode(catalog(models=[llm_entry()])) == "cpu"
    # Naming an accelerator type means gpu (its pool may be at zero nodes), unless cpu is asked for.
    assert resolve_mode(catalog(models=[llm_entry(accelerator_type="L4")])) == "gpu"
    assert resolve_mode(catalog(device="cpu", models=[llm_entry(accelerator_type="L4")])) == "cpu"
    assert resolve_mode(catalog(device="gpu", models=[llm_entry()])) == "gpu"


@pytest.fixture
def no_ray_left_behind():
    """Ray's build_openai_app starts a local Ray instance; later tests start their own."""
    import ray

    was_up = ray.is_initialized()
    yield
    if ray.is_initialized() and not was_up:
        ray.shutdown()


def test_direct_streaming_serves_one_model_without_our_ingress(monkeypatch, no_ray_left_behind) -> None:
    from serve_apps.app import DIRECT_STREAMING_ENV, build_app

    monkeypatch.setenv(DIRECT_STREAMING_ENV, "1")
    two = {"device": "cpu", "models": [llm_entry("a", "org/m"), llm_entry("b", "org/m")]}
    with pytest.raises(ConfigError, match="exactly one model; the catalog has 2"):
        build_app({"catalog": two})
    keyed = {"device": "cpu", "models": [llm_entry("a", "org/m")], "auth": {"enabled": True}}
    with pytest.raises(ConfigError, match="auth.enabled must be false"):
        build_app({"catalog": keyed})
    one = {"device": "cpu", "models": [llm_entry("a", "org/m")]}
    app = build_app({"catalog": one})
    # Ray builds it (direct streaming proper needs the variable in Ray's own processes too).
    assert type(app).__name__ == "Application"
    monkeypatch.setenv(DIRECT_STREAMING_ENV, "0")
    assert type(build_app({"catalog": two})).__name__ == "Application"
