"""Every rendered serveConfigV2 loads with Ray's own Serve config schema, and every model of its
catalog builds a real ray.serve.llm.LLMConfig through serve_apps (the code the RayService runs)."""

import pytest
import yaml

pytestmark = pytest.mark.charts


def _serve_configs(all_rendered):
    return [(name, d) for name, r in all_rendered.items() for d in r.kind("RayService")]


def test_serve_configs_load_with_rays_schema(all_rendered):
    from ray.serve.schema import ServeDeploySchema

    found = _serve_configs(all_rendered)
    assert len(found) >= 7
    for name, svc in found:
        cfg = ServeDeploySchema.model_validate(yaml.safe_load(svc["spec"]["serveConfigV2"]))
        (app,) = cfg.applications
        assert app.import_path == "serve_apps.app:build_app", name
        assert cfg.http_options.port == 8000


def test_each_model_builds_a_real_llm_config(all_rendered, monkeypatch):
    from ray.serve.llm import LLMConfig

    from serve_apps.app import AppArgs, build_llm_configs, resolve_mode

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name, svc in _serve_configs(all_rendered):
        (app,) = yaml.safe_load(svc["spec"]["serveConfigV2"])["applications"]
        catalog = AppArgs.from_dict(app["args"]).load_catalog()
        mode = resolve_mode(catalog)
        configs = build_llm_configs(catalog, mode)
        assert len(configs) == len(catalog.models)
        for entry, cfg in zip(catalog.models, configs, strict=True):
            assert isinstance(cfg, LLMConfig)
            assert cfg.model_id == entry.model_id
            if mode == "gpu":
                assert cfg.accelerator_type == entry.accelerator, name
            # The entry's own fields reach Ray unchanged (cpu mode only adds defaults under engine_kwargs).
            for key, value in entry.vllm_kwargs.items():
                assert cfg.engine_kwargs[key] == value, (name, key)
            assert cfg.deployment_config == entry.llm_config.get("deployment_config", {}), name
