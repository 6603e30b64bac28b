"""The Serve application: a model catalog -> ``LLMConfig``s -> one OpenAI-compatible endpoint.

KubeRay's RayService points ``serveConfigV2.applications[].import_path`` at
``serve_apps.app:build_app`` with ``args`` that are either the catalog itself or the path
of a catalog YAML file (see ``AppArgs``). ``python -m serve_apps serve`` runs the same
application on local Ray.

CPU mode (``device: cpu``, or ``auto`` on a machine without GPUs) runs vLLM's CPU build:
the engine defaults of ``CPU_ENGINE_DEFAULTS`` and ``runtime.cpu_env()`` apply, and an
entry's own ``engine_kwargs`` / ``runtime_env.env_vars`` override them. Every other ``LLMConfig`` field of an
entry passes through as written.
"""

from __future__ import annotations

import copy
import logging
import os
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from llmkit import runtime
from llmkit.config import ConfigError, StrictModel, validation_problems
from llmkit.models import resolve
from serve_apps.batches.config import BatchesConfig
from serve_apps.catalog import ModelCatalog, ModelEntry

logger = logging.getLogger(__name__)

# CPU mode's engine arguments and replica environment, shared with the batch jobs.
CPU_ENGINE_DEFAULTS = runtime.CPU_ENGINE_KWARGS

Mode = Literal["cpu", "gpu"]


class AppArgs(StrictModel):
    """The Serve application's ``args``: the catalog inline, or the path of its YAML file."""

    catalog: ModelCatalog | None = Field(default=None, description="The model catalog, inline.")
    catalog_path: str | None = Field(default=None, description="Path of a model catalog YAML file.")
    batches: BatchesConfig = Field(
        default_factory=BatchesConfig, description="The OpenAI Batch API (/v1/files, /v1/batches); off by default."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> AppArgs:
        if (self.catalog is None) == (self.catalog_path is None):
            raise ValueError("set exactly one of 'catalog' and 'catalog_path'")
        return self

    def load_catalog(self) -> ModelCatalog:
        if self.catalog is not None:
            return self.catalog
        return ModelCatalog.from_yaml(self.catalog_path)


def resolve_mode(catalog: ModelCatalog) -> Mode:
    """cpu or gpu. ``auto`` means gpu when a model names an accelerator type or a GPU is visible."""
    return runtime.pick_device(catalog.device, bool(catalog.accelerator_types()))


def _model_source(source: Any, provision: bool) -> Any:
    # builtin:<name> is provisioned (once) on the machine that builds the app; with a
    # single-node local Ray that is where the replicas run too.
    return resolve(source) if provision and isinstance(source, str) else source


def llm_config_dict(entry: ModelEntry, mode: Mode, provision: bool = True) -> dict[str, Any]:
    """The ``LLMConfig`` (as a dict) for one catalog entry: its own fields, with the mode's defaults under them
    and a ``builtin:`` source provisioned (``provision=False`` leaves it as it is, converting nothing)."""
    config = copy.deepcopy(entry.llm_config)
    loading = dict(config["model_loading_config"])
    loading["model_source"] = _model_source(loading.get("model_source") or entry.model_id, provision)
    config["model_loading_config"] = loading
    engine_kwargs = dict(config.get("engine_kwargs") or {})
    if mode == "cpu":
        engine_kwargs = {**CPU_ENGINE_DEFAULTS, **engine_kwargs}
        runtime_env = dict(config.get("runtime_env") or {})
        runtime_env["env_vars"] = {**runtime.cpu_env(), **(runtime_env.get("env_vars") or {})}
        config["runtime_env"] = runtime_env
        if config.pop("accelerator_type", None):
            logger.warning("model %s: accelerator_type %s is ignored in cpu mode", entry.model_id, entry.accelerator)
        config["accelerator_config"] = {"kind": "cpu"}
    else:
        config.setdefault("accelerator_config", {"kind": "gpu"})
    lora = config.get("lora_config")
    if lora is not None:
        # Ray Serve LLM loads adapters but leaves vLLM's LoRA switch to the engine arguments.
        engine_kwargs.setdefault("enable_lora", True)
        engine_kwargs.setdefault("max_loras", dict(lora).get("max_num_adapters_per_replica", 16))
    config["engine_kwargs"] = engine_kwargs
    return config


def build_llm_configs(catalog: ModelCatalog, mode: Mode | None = None, provision: bool = True) -> list[Any]:
    """One ``ray.serve.llm.LLMConfig`` per catalog entry, validated by Ray's own models (``provision``: see
    ``llm_config_dict``)."""
    from ray.serve.llm import LLMConfig, LLMServingArgs

    mode = mode or resolve_mode(catalog)
    configs = []
    for i, entry in enumerate(catalog.models):
        try:
            config = LLMConfig.model_validate(llm_config_dict(entry, mode, provision))
            config.get_engine_config()  # checks engine_kwargs names against vLLM's engine arguments
        except ValueError as e:
            raise ConfigError(
                f"models[{i}] ({entry.model_id}): Ray Serve LLM rejects its config: {_one_line(e)}"
            ) from e
        configs.append(config)
    try:
        LLMServingArgs(llm_configs=configs)  # Ray's checks across models (unique model ids)
    except ValueError as e:
        raise ConfigError(f"models: Ray Serve LLM rejects the catalog: {_one_line(e)}") from e
    logger.info("serving %s in %s mode", ", ".join(c.model_id for c in configs), mode)
    return configs


def _one_line(err: ValueError) -> str:
    """An error from Ray's models in one line: each pydantic error's field and message."""
    if isinstance(err, ValidationError):
        return "; ".join(validation_problems(err))
    return " ".join(str(err).split())


DIRECT_STREAMING_ENV = "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING"


def direct_streaming() -> bool:
    """Ray's direct streaming (with HAProxy): the LLM server replica is the ingress itself."""
    return os.environ.get(DIRECT_STREAMING_ENV, "0") == "1"


def build_app(args: dict[str, Any] | AppArgs):
    """Serve application builder: ``import_path: serve_apps.app:build_app``."""
    from serve_apps.ingress import build_ingress

    app_args = args if isinstance(args, AppArgs) else AppArgs.from_dict(dict(args or {}), source="app args")
    catalog = app_args.load_catalog()
    configs = build_llm_configs(catalog)
    if direct_streaming():
        if app_args.batches.enabled:
            raise ConfigError(f"{DIRECT_STREAMING_ENV}=1 bypasses our ingress, so batches.enabled must be false")
        return _build_direct(configs, catalog)
    return build_ingress(configs, catalog.auth, batches=app_args.batches, entries=catalog.models)


def _build_direct(configs: list[Any], catalog: ModelCatalog):
    # vLLM's own OpenAI app answers on the replica, so our ingress (API keys, OpenAI-shaped
    # errors for the routes it adds) is not in the path: only what it can serve alone is allowed.
    if len(configs) != 1:
        raise ConfigError(f"{DIRECT_STREAMING_ENV}=1 serves exactly one model; the catalog has {len(configs)}")
    if catalog.auth.enabled:
        raise ConfigError(f"{DIRECT_STREAMING_ENV}=1 bypasses our ingress, so auth.enabled must be false")
    from ray.serve.llm import build_openai_app

    logger.info("direct streaming: model %s is served by its LLM server replicas directly", configs[0].model_id)
    return build_openai_app({"llm_configs": configs})
