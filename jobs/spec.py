"""The job spec: everything one batch run needs, as a closed pydantic model loaded from YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmkit.accelerators import load_catalog
from llmkit.config import StrictModel
from llmkit.models import DEFAULT_MODEL

InputFormat = Literal["auto", "json", "jsonl", "csv", "parquet", "text"]
OutputFormat = Literal["parquet", "jsonl"]
Device = Literal["auto", "cpu", "gpu"]


class ModelSpec(StrictModel):
    """Which model to run."""

    source: str = Field(
        default=DEFAULT_MODEL,
        description="An HF id, a local path (e.g. a mounted PVC), an s3:// or gs:// URI, "
        "or builtin:<name> for a model provisioned offline from a wheel.",
    )
    served_name: str | None = Field(
        default=None,
        description="Model name written to outputs (and sent to an HTTP engine); defaults to the source.",
    )


class HttpEngine(StrictModel):
    """An existing OpenAI-compatible server to send the batch to, instead of starting vLLM."""

    url: str | None = Field(
        default=None,
        description="Base URL of the server (e.g. http://llm:8000/v1) or the full "
        "/chat/completions URL; falls back to OPENAI_BASE_URL.",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable that holds the API key, if the server needs one."
    )
    model: str | None = Field(
        default=None, description="Model name to request; defaults to model.served_name or model.source."
    )
    qps: int | None = Field(default=None, ge=1, description="Requests per second cap per worker; none for no cap.")
    max_retries: int = Field(default=3, ge=0, description="Retries of a failed request.")
    timeout_s: float = Field(default=600, gt=0, description="Timeout of one request, in seconds.")


class EngineSpec(StrictModel):
    """How inference runs: vLLM inside the job, or an HTTP OpenAI-compatible endpoint."""

    kind: Literal["vllm", "http"] = Field(
        default="vllm", description="vllm starts engines in the job; http calls a server."
    )
    device: Device = Field(
        default="auto", description="cpu runs vLLM on CPU; gpu needs GPUs; auto uses a GPU when one is visible."
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="vLLM engine arguments: max_model_len, enable_chunked_prefill, max_num_batched_tokens, "
        "gpu_memory_utilization, tensor_parallel_size, enable_prefix_caching...; merged over tuned defaults.",
    )
    batch_size: int | None = Field(
        default=None, ge=1, description="Rows per batch sent to one engine; none picks the tuned default."
    )
    concurrency: int | tuple[int, int] = Field(
        default=1, description="Engine replicas (data parallel), or (min, max) for an autoscaling pool."
    )
    max_concurrent_batches: int | None = Field(
        default=None, ge=1, description="Batches in flight per engine; none picks the tuned default."
    )
    accelerator_type: str | None = Field(
        default=None, description="Accelerator type from the accelerator catalog (L4, H100...) the engines need."
    )
    http: HttpEngine = Field(default_factory=HttpEngine, description="Settings for kind: http.")

    @field_validator("concurrency")
    @classmethod
    def _concurrency(cls, value: int | tuple[int, int]) -> int | tuple[int, int]:
        if isinstance(value, int):
            if value < 1:
                raise ValueError("concurrency must be >= 1")
        elif not (1 <= value[0] <= value[1]):
            raise ValueError("concurrency (min, max) needs 1 <= min <= max")
        return value

    @field_validator("accelerator_type")
    @classmethod
    def _known_accelerator(cls, value: str | None) -> str | None:
        if value is not None:
            load_catalog().get(value)
        return value

    @field_validator("engine_kwargs")
    @classmethod
    def _no_model_in_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        if "model" in value:
            raise ValueError("set the model with model.source, not engine_kwargs.model")
        return value


class SamplingSpec(StrictModel):
    """Default sampling parameters; a row's own ``sampling_params`` column overrides them per row."""

    model_config = StrictModel.model_config | {"extra": "allow"}

    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(default=256, ge=1, description="Most tokens generated per row.")
    seed: int | None = Field(default=None, description="Sampling seed, for reproducible sampled output.")
    stop: list[str] | None = Field(default=None, description="Stop strings.")

    @model_validator(mode="after")
    def _extras_are_plain(self) -> SamplingSpec:
        # Extra keys go to vLLM SamplingParams as-is (repetition_penalty, ignore_eos...).
        for key, value in (self.model_extra or {}).items():
            if not key.isidentifier():
                raise ValueError(f"sampling parameter {key!r} is not a valid name")
            if callable(value):
                raise ValueError(f"sampling parameter {key!r} must be plain data")
        return self


class InputSpec(StrictModel):
    """Where the rows come from."""

    path: str | list[str] | None = Field(
        default=None,
        description="File, folder or glob (local, PVC, s3://, gs://), or a list of them; "
        "none uses the workload's bundled sample data.",
    )
    format: InputFormat = Field(default="auto", description="File format; auto goes by extension.")
    id_column: str | None = Field(
        default=None,
        description="Column with a unique row id (kept in the output, used to resume); "
        "none numbers rows in input order.",
    )
    limit: int | None = Field(default=None, ge=1, description="Process only the first N rows.")


class OutputSpec(StrictModel):
    """Where the results go."""

    path: str = Field(description="Output folder (local, PVC, s3://, gs://).")
    format: OutputFormat = Field(default="parquet", description="File format of the result parts.")
    rows_per_file: int = Field(default=1000, ge=1, description="Rows per output part file (the unit of resume).")
    flush_interval_s: float = Field(
        default=30, gt=0, description="Write a partial part at least this often, so a killed run loses little."
    )


class ErrorPolicy(StrictModel):
    """What to do with rows that fail."""

    on_row_error: Literal["record", "fail"] = Field(
        default="record", description="record writes failed rows to the errors output and goes on; fail stops the job."
    )
    max_error_fraction: float = Field(
        default=1.0, ge=0, le=1, description="Fail the job at the end if more than this fraction of rows failed."
    )


class ResumePolicy(StrictModel):
    """What to do when the output folder already holds results of this job."""

    mode: Literal["resume", "overwrite", "fail"] = Field(
        default="resume",
        description="resume skips rows already written; overwrite deletes earlier results; fail refuses to run.",
    )


class WorkloadSpec(StrictModel):
    """Which workload turns rows into chat messages, and its options."""

    name: str = Field(default="chat", description="Workload plug-in name (chat, creative, sentiment, ...).")
    options: dict[str, Any] = Field(default_factory=dict, description="Workload-specific options.")

    @field_validator("name")
    @classmethod
    def _known_workload(cls, value: str) -> str:
        from jobs.workloads import REGISTRY, get_workload

        try:
            get_workload(value)
        except (KeyError, ImportError, AttributeError, TypeError):
            raise ValueError(
                f"unknown workload {value!r}; known: {', '.join(REGISTRY)} (or a plug-in as package.module:Class)"
            ) from None
        return value


class JobSpec(StrictModel):
    """A batch inference job."""

    name: str = Field(
        default="batch",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=53,
        description="Job name (DNS-1123 label); used in logs, reports and Kubernetes objects.",
    )
    model: ModelSpec = Field(default_factory=ModelSpec, description="The model.")
    engine: EngineSpec = Field(default_factory=EngineSpec, description="The inference engine.")
    workload: WorkloadSpec = Field(default_factory=WorkloadSpec, description="The workload.")
    system_prompt: str | None = Field(
        default=None, description="System message put before every row's messages; none keeps the workload's."
    )
    prompt_template: str | None = Field(
        default=None,
        description="Python format string for the user message, filled from the row's columns "
        "(e.g. 'Answer briefly: {prompt}'); none keeps the workload's.",
    )
    sampling: SamplingSpec = Field(default_factory=SamplingSpec, description="Default sampling parameters.")
    input: InputSpec = Field(default_factory=InputSpec, description="The input rows.")
    output: OutputSpec = Field(description="The results.")
    errors: ErrorPolicy = Field(default_factory=ErrorPolicy, description="Error policy.")
    resume: ResumePolicy = Field(default_factory=ResumePolicy, description="Resume policy.")

    def model_name(self) -> str:
        if self.model.served_name:
            return self.model.served_name
        return self.model.source.removeprefix("builtin:")
