"""The ``batches`` block of the model catalog: storage, limits, and how batches run."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmkit.accelerators import load_catalog
from llmkit.config import StrictModel

# OpenAI's own limits for a batch input file.
OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_FILE_BYTES = 200 * 1024 * 1024
STORAGE_SCHEMES = ("s3://", "gs://")


class LocalRunner(StrictModel):
    """How a batch runs in embedded mode (``make serve``): a job process on the local Ray cluster."""

    engine: Literal["http", "vllm"] = Field(
        default="http",
        description="http sends the batch to this endpoint's own model (already loaded; the right choice on a "
        "small machine); vllm starts a second engine inside the job.",
    )
    http_url: str | None = Field(
        default=None,
        description="Base /v1 URL of this endpoint for engine http; `python -m serve_apps serve` fills it in.",
    )
    api_key_env: str = Field(
        default="KRLLM_BATCH_API_KEY",
        description="Environment variable that carries an accepted API key into the job (engine http, auth on).",
    )
    stop_grace_s: float = Field(
        default=60, gt=0, description="After SIGTERM on cancel, how long the job may take to write its partial output."
    )
    max_resubmits: int = Field(
        default=3, ge=0, description="How often a job that vanished (Ray restarted) is run again to resume."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment of the job process.")


class Resources(StrictModel):
    """CPU and memory of one Ray pod (requests = limits)."""

    cpu: str = Field(default="4", description="CPU quantity.")
    memory: str = Field(default="16Gi", description="Memory quantity.")


class KubernetesRunner(StrictModel):
    """How a batch runs on Kubernetes: one KubeRay RayJob per batch, created by the service in-cluster."""

    namespace: str | None = Field(
        default=None, description="Namespace of the RayJobs and state ConfigMaps; default: the service's own."
    )
    name_prefix: str = Field(
        default="krllm",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=20,
        description="Prefix of the RayJob and ConfigMap names (the chart sets the release name).",
    )
    image: str = Field(default="kuberay-llm:latest", description="Image of the RayJob's pods (the project image).")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of that image."
    )
    ray_version: str = Field(default="2.60.0", description="rayClusterSpec.rayVersion.")
    service_account: str | None = Field(default=None, description="Service account of the RayJob's Ray pods.")
    accelerator_type: str | None = Field(
        default=None,
        description="GPU pool (accelerator catalog type) for every batch; default: the model's own accelerator_type.",
    )
    node_selector_preset: Literal["gke", "gfd", "karpenter", "eks"] = Field(
        default="gke", description="Which node labels of the accelerator catalog select the GPU pool."
    )
    head: Resources = Field(default_factory=lambda: Resources(cpu="2", memory="8Gi"), description="Head pod.")
    worker: Resources = Field(default_factory=lambda: Resources(cpu="8", memory="32Gi"), description="GPU worker pod.")
    storage_pvc: str | None = Field(
        default=None,
        description="PVC holding the batch files when storage_root is a path; mounted at storage_root in the job.",
    )
    image_pull_secrets: list[str] = Field(default_factory=list, description="Pull secrets of the job's pods.")
    pod_security_context: dict[str, Any] = Field(
        default_factory=dict, description="securityContext of the job's pods (the chart passes its own)."
    )
    security_context: dict[str, Any] = Field(
        default_factory=dict, description="securityContext of the job's containers (the chart passes its own)."
    )
    env: dict[str, str] = Field(default_factory=dict, description="Extra environment of the job's Ray containers.")
    env_from_secrets: list[str] = Field(
        default_factory=list, description="Secrets whose keys become environment (object-store credentials)."
    )
    ttl_seconds_after_finished: int = Field(
        default=3600, ge=0, description="How long a finished RayJob (and its cluster) is kept."
    )
    active_deadline_seconds: int = Field(
        default=86_400, ge=60, description="Hard limit of one RayJob's run time (the 24 h completion window)."
    )
    max_resubmits: int = Field(default=3, ge=0, description="How often a vanished RayJob is recreated to resume.")
    extra_labels: dict[str, str] = Field(default_factory=dict, description="Labels added to every object created.")

    @field_validator("accelerator_type")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None:
            load_catalog().get(value)
        return value


class BatchesConfig(StrictModel):
    """The OpenAI Batch API on this endpoint (``/v1/files``, ``/v1/batches``)."""

    enabled: bool = Field(default=False, description="Serve /v1/files and /v1/batches.")
    runner: Literal["local", "kubernetes"] = Field(
        default="local",
        description="local runs each batch as a job process on the local Ray cluster, state in storage_root; "
        "kubernetes creates a RayJob per batch, state in ConfigMaps.",
    )
    storage_root: str = Field(
        default=".cache/batches",
        description="Where uploaded files and batch outputs live: a folder (local, or a PVC mount), s3:// or gs://.",
    )
    max_requests_per_file: int = Field(
        default=OPENAI_MAX_REQUESTS, ge=1, description="Most requests in one batch input file (OpenAI: 50,000)."
    )
    max_file_bytes: int = Field(
        default=OPENAI_MAX_FILE_BYTES, ge=1, description="Largest uploaded file, in bytes (OpenAI: 200 MB)."
    )
    completion_window_s: int = Field(
        default=86_400, ge=60, description="The '24h' completion window; a batch still running after it expires."
    )
    poll_interval_s: float = Field(default=5, gt=0, description="How often each replica advances running batches.")
    retry_delay_s: float = Field(
        default=75,
        ge=0,
        description="Wait before running a failed or lost job again (longer than the job's 60 s output lease).",
    )
    max_tokens: int = Field(default=1024, ge=1, description="max_tokens of a request that does not set one.")
    job: dict[str, Any] = Field(
        default_factory=dict,
        description="Job spec fields merged over the spec the service builds for each batch "
        "(e.g. engine: {batch_size: 32, concurrency: 2}, output: {rows_per_file: 100}: request_counts move "
        "as parts are written); name, workload, input and output.path are the service's.",
    )
    local: LocalRunner = Field(default_factory=LocalRunner, description="Settings of runner local.")
    kubernetes: KubernetesRunner = Field(default_factory=KubernetesRunner, description="Settings of runner kubernetes.")

    @model_validator(mode="after")
    def _storage(self) -> BatchesConfig:
        if "://" in self.storage_root and not self.storage_root.startswith(STORAGE_SCHEMES):
            raise ValueError(f"storage_root must be a path or start with {' or '.join(STORAGE_SCHEMES)}")
        return self

    @field_validator("job")
    @classmethod
    def _job_overrides(cls, value: dict[str, Any]) -> dict[str, Any]:
        owned = sorted({"name", "workload", "input"} & set(value))
        if isinstance(value.get("output"), dict) and "path" in value["output"]:
            owned.insert(0, "output.path")
        if owned:
            raise ValueError(f"job.{owned[0]} is set by the Batch API for each batch")
        return value
