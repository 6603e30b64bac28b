"""The model catalog: what the serving app hosts, and on which accelerators.

Each entry is a Ray Serve LLM ``LLMConfig``, written as Ray documents it (``model_loading_config``,
``engine_kwargs``, ``deployment_config``, ``lora_config``, ``placement_group_config``, ...). Every field
passes through unchanged and Ray's own model validates it when the app is built (``serve_apps.app``) or the
catalog is validated (``python -m serve_apps validate``); loading a catalog does not import Ray.

The same YAML is read by ``serve_apps.app:build_app`` (as the Serve application's ``args``), rendered by the
Helm chart into a RayService, and validated by the chart's ``values.schema.json``, whose entry schema is
``LLMConfig``'s own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from llmkit.accelerators import gpus_per_engine, load_catalog
from llmkit.config import StrictModel

Device = Literal["auto", "cpu", "gpu"]
LORA_URI_SCHEMES = ("s3://", "gs://", "abfss://", "azure://")


class ModelEntry(StrictModel):
    """One model behind the OpenAI endpoint: a Ray Serve LLM ``LLMConfig``, any of its fields.

    What is ours on top of Ray's fields: ``model_loading_config.model_source`` may be ``builtin:<name>``
    (a model provisioned offline from a wheel), ``accelerator_type`` must be a type of the accelerator
    catalog (the chart builds that type's worker group), and the catalog's ``device: cpu`` adds vLLM's CPU
    defaults under the entry's own ``engine_kwargs`` and ``runtime_env.env_vars``.
    """

    model_config = ConfigDict(extra="allow")

    @property
    def llm_config(self) -> dict[str, Any]:
        """The entry's ``LLMConfig`` fields, as written."""
        return dict(self.model_extra or {})

    @property
    def model_id(self) -> str:
        return self.llm_config["model_loading_config"]["model_id"]

    @property
    def model_source(self) -> str:
        """Where the weights come from (a cloud mirror's bucket URI); like Ray, the model id when unset."""
        source = self.llm_config["model_loading_config"].get("model_source") or self.model_id
        return source.get("bucket_uri") or self.model_id if isinstance(source, Mapping) else source

    @property
    def accelerator(self) -> str | None:
        """The entry's ``accelerator_type``."""
        return self.llm_config.get("accelerator_type")

    @property
    def vllm_kwargs(self) -> dict[str, Any]:
        """The entry's ``engine_kwargs``."""
        return dict(self.llm_config.get("engine_kwargs") or {})

    @property
    def gpus_per_replica(self) -> int:
        return gpus_per_engine(self.vllm_kwargs)

    @model_validator(mode="after")
    def _ours(self) -> ModelEntry:
        # Only what Ray's model can't know; everything else is checked by LLMConfig itself.
        loading = self.llm_config.get("model_loading_config")
        if not isinstance(loading, Mapping) or not isinstance(loading.get("model_id"), str) or not loading["model_id"]:
            raise ValueError("model_loading_config.model_id is required: the name clients send as 'model'")
        if self.accelerator is not None:
            load_catalog().get(self.accelerator)
        if "model" in self.vllm_kwargs:
            raise ValueError("engine_kwargs.model: set the weights with model_loading_config.model_source")
        lora = self.llm_config.get("lora_config")
        path = lora.get("dynamic_lora_loading_path") if isinstance(lora, Mapping) else None
        if path is not None and not str(path).startswith(LORA_URI_SCHEMES):
            # Ray Serve LLM reads adapters from cloud storage only, and fails late (on the first request).
            raise ValueError(
                f"lora_config.dynamic_lora_loading_path must start with one of {', '.join(LORA_URI_SCHEMES)} "
                f"(got {path!r})"
            )
        return self


class Auth(StrictModel):
    """Optional API-key auth. Keys come from a file or the environment, never from the catalog itself."""

    enabled: bool = Field(default=False, description="Require 'Authorization: Bearer <key>' on /v1 routes.")
    api_keys_env: str | None = Field(
        default="KRLLM_API_KEYS", description="Environment variable holding comma-separated keys."
    )
    api_keys_file: str | None = Field(
        default=None, description="File with one key per line (for example a mounted Secret)."
    )


class ModelCatalog(StrictModel):
    """Everything the serving app hosts: several models behind one OpenAI endpoint."""

    models: list[ModelEntry] = Field(min_length=1, description="The models to serve.")
    device: Device = Field(
        default="auto",
        description="cpu runs vLLM on CPU (no GPUs needed); gpu needs GPUs; auto picks cpu when "
        "the machine has no GPU and no model names an accelerator_type.",
    )
    auth: Auth = Field(default_factory=Auth, description="API-key auth for the OpenAI routes.")

    def accelerator_types(self) -> list[str]:
        return sorted({m.accelerator for m in self.models if m.accelerator})
