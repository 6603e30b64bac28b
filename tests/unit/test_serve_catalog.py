"""Model catalog and app args validation (no Ray)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmkit.config import ConfigError
from serve_apps.app import AppArgs
from serve_apps.catalog import ModelCatalog

EXAMPLES = sorted((Path(__file__).parents[2] / "serve_apps" / "examples").glob("*.yaml"))


def test_there_are_example_catalogs() -> None:
    names = {p.name for p in EXAMPLES}
    assert "local-cpu.yaml" in names
    assert len(names) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_catalogs_validate(path: Path) -> None:
    catalog = ModelCatalog.from_yaml(path)
    assert catalog.models


def test_minimal_catalog_defaults() -> None:
    c = ModelCatalog.from_dict({"models": [{"model_id": "m"}]})
    assert c.device == "auto"
    assert c.auth.enabled is False
    m = c.models[0]
    assert m.source == "builtin:smollm2-135m-instruct"
    assert (m.autoscaling.min_replicas, m.autoscaling.max_replicas) == (1, 1)


@pytest.mark.parametrize(
    "data,field",
    [
        ({"models": [{"model_id": "m", "bogus": 1}]}, "models.0.bogus"),
        ({"models": [{"model_id": "m"}], "extra": 1}, "extra"),
        ({"models": [{"model_id": "m", "autoscaling": {"min_replica": 0}}]}, "min_replica"),
        ({"models": []}, "models"),
        ({"models": [{"model_id": "m", "tensor_parallel_size": 0}]}, "tensor_parallel_size"),
        ({"models": [{"model_id": "m", "autoscaling": {"min_replicas": 3, "max_replicas": 2}}]}, "min_replicas"),
        ({"models": [{"model_id": "m", "autoscaling": {"target_ongoing_requests": 0}}]}, "target_ongoing_requests"),
        ({"models": [{"model_id": "m"}, {"model_id": "m"}]}, "twice"),
        ({"models": [{"model_id": "m", "accelerator_type": "Z9"}]}, "Z9"),
        ({"models": [{"model_id": "m", "engine_kwargs": {"tensor_parallel_size": 2}}]}, "tensor_parallel_size"),
        ({"models": [{"model_id": "m", "lora": {"dynamic_lora_loading_path": "/local/dir"}}]}, "s3://"),
        ({"models": [{"model_id": "m"}], "device": "tpu"}, "device"),
        ({"models": [{"model_id": "m"}], "auth": {"enabled": True, "api_keys": ["k"]}}, "api_keys"),
    ],
)
def test_invalid_catalogs_name_the_field(data: dict, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        ModelCatalog.from_dict(data)
    assert field in str(e.value)


def test_scale_to_zero_is_allowed() -> None:
    c = ModelCatalog.from_dict({"models": [{"model_id": "m", "autoscaling": {"min_replicas": 0, "max_replicas": 4}}]})
    assert c.models[0].autoscaling.min_replicas == 0


def test_accelerator_types() -> None:
    c = ModelCatalog.from_dict(
        {"models": [{"model_id": "a", "accelerator_type": "L4"}, {"model_id": "b", "accelerator_type": "H100"}]}
    )
    assert c.accelerator_types() == ["H100", "L4"]


def test_app_args_inline_or_path(tmp_path: Path) -> None:
    inline = AppArgs.from_dict({"catalog": {"models": [{"model_id": "m"}]}})
    assert inline.load_catalog().models[0].model_id == "m"
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: from-file\n")
    assert AppArgs.from_dict({"catalog_path": str(path)}).load_catalog().models[0].model_id == "from-file"


@pytest.mark.parametrize(
    "data",
    [{}, {"catalog": {"models": [{"model_id": "m"}]}, "catalog_path": "x.yaml"}, {"catalog_path": "x", "other": 1}],
)
def test_app_args_need_exactly_one_source(data: dict) -> None:
    with pytest.raises(ConfigError):
        AppArgs.from_dict(data)


def test_app_args_bad_catalog_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("models:\n  - model_id: m\n    typo_field: 1\n")
    with pytest.raises(ConfigError, match="typo_field"):
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
    path.write_text("models:\n  - model_id: m\n    accelerator: L4\n")
    assert main(["validate", "--config", str(path)]) == 2
    assert "models.0.accelerator" in capsys.readouterr().err
