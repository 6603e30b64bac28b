"""Model sources resolve to what vLLM loads; the builtin model comes from the image when baked in."""

from __future__ import annotations

import pytest

from llmkit import models


def test_sources_pass_through():
    assert models.resolve("org/name") == "org/name"
    assert models.resolve("s3://bucket/model") == "s3://bucket/model"
    assert models.resolve("file:///models/x") == "/models/x"


def test_unknown_builtin_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown builtin model"):
        models.resolve("builtin:nope")


def test_baked_model_wins_over_the_cache(tmp_path, monkeypatch):
    baked = tmp_path / "baked" / "smollm2-135m-instruct"
    baked.mkdir(parents=True)
    (baked / "config.json").write_text("{}")
    monkeypatch.setenv("KRLLM_BAKED_DIR", str(tmp_path / "baked"))
    monkeypatch.setenv("KRLLM_CACHE_DIR", str(tmp_path / "empty-cache"))
    assert models.resolve(models.DEFAULT_MODEL) == str(baked)


def test_default_model_is_provisioned_as_safetensors():
    path = models.provision_builtin("smollm2-135m-instruct")
    assert (path / "config.json").is_file() and list(path.glob("*.safetensors"))
    assert (path / "tokenizer.json").is_file()
