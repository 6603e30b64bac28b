"""The model catalog: entries are Ray Serve LLM ``LLMConfig``s, passed through and validated by Ray's own model."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmkit.config import ConfigError
from serve_apps.app import AppArgs, build_llm_configs
from serve_apps.catalog import ModelCatalog
from tests.support import llm_entry

ROOT = Path(__file__).parents[2]
EXAMPLES = sorted((ROOT / "serve_apps" / "examples").glob("*.yaml"))


def test_there_are_example_catalogs() -> None:
    names = {p.name for p in EXAMPLES}
    assert "local-cpu.yaml" in names
    assert len(names) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_catalogs_validate(path: Path) -> None:
    catalog = ModelCatalog.from_yaml(path)
    assert catalog.models


def test_minimal_catalog_defaults() -> None:
    c = ModelCatalog.from_dict({"models": [llm_entry("org/m")]})
    assert c.device == "auto"
    assert c.auth.enabled is False
    m = c.models[0]
    assert m.model_source == "org/m"  # as in Ray: no model_source loads the model id
    assert m.accelerator is None and m.gpus_per_replica == 1


# Every LLMConfig field, with a value other than Ray's default: a catalog entry must carry each to Ray unchanged.
EVERY_FIELD = llm_entry(
    "m",
    "s3://bucket/m",
    llm_engine="vLLM",
    engine_kwargs={"max_model_len": 1024, "tensor_parallel_size": 2, "enable_lora": True},
    accelerator_type="H100",
    accelerator_config={"kind": "gpu"},
    placement_group_config={"bundles": [{"GPU": 1}, {"GPU": 1}], "strategy": "STRICT_PACK"},
    lora_config={"dynamic_lora_loading_path": "s3://bucket/adapters", "max_num_adapters_per_replica": 4},
    deployment_config={
        "max_ongoing_requests": 48,
        "health_check_period_s": 7,
        "graceful_shutdown_timeout_s": 11,
        "autoscaling_config": {"min_replicas": 0, "max_replicas": 3, "upscale_delay_s": 5},
    },
    runtime_env={"env_vars": {"A": "1"}},
    server_cls="ray.serve.llm.deployment.LLMServer",
    experimental_configs={"stream_batching_interval_ms": 25},
    log_engine_metrics=False,
    callback_config={"raise_error_on_callback": False},
)


def test_every_llm_config_field_passes_through_to_ray() -> None:
    from ray.serve.llm import LLMConfig

    assert set(EVERY_FIELD) == set(LLMConfig.model_fields), "the test must cover every field of this Ray's LLMConfig"
    (cfg,) = build_llm_configs(ModelCatalog.from_dict({"models": [EVERY_FIELD], "device": "gpu"}), provision=False)
    for field, value in EVERY_FIELD.items():
        built = getattr(cfg, field)
        if isinstance(built, type):  # Ray imports an import path
            built = f"{built.__module__}.{built.__qualname__}"
        elif isinstance(value, dict) and not isinstance(built, dict):  # and turns mappings into its own models
            built = vars(built)
        if isinstance(value, dict):
            assert {k: built[k] for k in value} == value, field
        else:
            assert built == value, field


@pytest.mark.parametrize(
    "data,field",
    [
        ({"models": [{"model_id": "m"}]}, "model_loading_config"),
        ({"models": [llm_entry()], "extra": 1}, "extra"),
        ({"models": []}, "models"),
        ({"models": [llm_entry(accelerator_type="Z9")]}, "Z9"),
        ({"models": [llm_entry(engine_kwargs={"model": "x"})]}, "model_source"),
        ({"models": [llm_entry(lora_config={"dynamic_lora_loading_path": "/local/dir"})]}, "s3://"),
        ({"models": [llm_entry()], "device": "tpu"}, "device"),
        ({"models": [llm_entry()], "auth": {"enabled": True, "api_keys": ["k"]}}, "api_keys"),
    ],
)
def test_invalid_catalogs_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        ModelCatalog.from_dict(data)
    assert field in str(e.value)


@pytest.mark.parametrize(
    "entries,words",
    [
        ([llm_entry(bogus=1)], ["models[0] (m)", "bogus"]),
        (
            [llm_entry(deployment_config={"autoscaling_config": {"min_replicas": 3, "max_replicas": 2}})],
            ["min_replicas"],
        ),
        ([llm_entry(model_loading_config={"model_id": "m", "sourcee": "x"})], ["sourcee"]),
        ([llm_entry(engine_kwargs={"no_such_arg": 1})], ["no_such_arg"]),
        ([llm_entry("m"), llm_entry("m")], ["models:", "Duplicate"]),
    ],
)
def test_ray_rejects_what_its_model_rejects_in_one_line(entries: list, words: list[str]) -> None:
    catalog = ModelCatalog.from_dict({"models": entries, "device": "cpu"})
    with pytest.raises(ConfigError) as e:
        build_llm_configs(catalog, provision=False)
    message = str(e.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_accelerator_types() -> None:
    c = ModelCatalog.from_dict(
        {"models": [llm_entry("a", accelerator_type="L4"), llm_entry("b", accelerator_type="H100")]}
    )
    assert c.accelerator_types() == ["H100", "L4"]


def test_app_args_inline_or_path(tmp_path: Path) -> None:
    inline = AppArgs.from_dict({"catalog": {"models": [llm_entry()]}})
    assert inline.load_catalog().models[0].model_id == "m"
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_loading_config: {model_id: from-file}\n")
    assert AppArgs.from_dict({"catalog_path": str(path)}).load_catalog().models[0].model_id == "from-file"


@pytest.mark.parametrize(
    "data",
    [{}, {"catalog": {"models": [llm_entry()]}, "catalog_path": "x.yaml"}, {"catalog_path": "x", "other": 1}],
)
def test_app_args_need_exactly_one_source(data: dict) -> None:
    with pytest.raises(ConfigError):
        AppArgs.from_dict(data)


def test_app_args_bad_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: m\n")
    with pytest.raises(ConfigError, match="model_loading_config"):
        AppArgs.from_dict({"catalog_path": str(path)}).load_catalog()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_cli_validate_prints_llm_configs(path: Path, capsys) -> None:
    from serve_apps.__main__ import main

    assert main(["validate", "--config", str(path)]) == 0
    out = capsys.readouterr().out
    for model in ModelCatalog.from_yaml(path).models:
        assert f'"model_id": "{model.model_id}"' in out


def test_cli_validate_reports_bad_catalog(tmp_path: Path, capsys) -> None:
    from serve_apps.__main__ import main

    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_loading_config: {model_id: m}\n    accelerator: L4\n")
    assert main(["validate", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: models[0] (m): ") and "accelerator" in err and len(err.splitlines()) == 1
