"""The job spec: everything one batch run needs, as a closed pydantic model loaded from YAML."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from llmkit.accelerators import gpus_per_engine, load_catalog
from llmkit.config import StrictModel, key_error
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
    max_retries: int = Field(
        default=8,
        ge=0,
        description="Retries of a request that failed in a way worth retrying (connection error, timeout, 408, "
        "409, 429, 5xx), with exponential backoff; then the row goes to the errors output. Other 4xx answers "
        "are not retried. The defaults wait about two minutes in all: long enough for a server to restart.",
    )
    retry_backoff_s: float = Field(
        default=1.0, gt=0, description="Wait before the first retry, in seconds; doubled on each retry after it."
    )
    retry_backoff_max_s: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between two retries, in seconds (a 429's Retry-After may ask more).",
    )
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
    engines_per_gpu: int = Field(
        default=1,
        ge=1,
        le=16,
        description="Engines packed on one GPU, each holding 1/n of it (a Ray fractional GPU). For small "
        "models, whose per-request CPU work caps one engine long before the GPU does (bench/README.md: a "
        "0.5B model kept an H200 9% busy). concurrency still counts engines, so a job uses "
        "ceil(concurrency / engines_per_gpu) GPUs. Needs a one-GPU engine and engine_kwargs."
        "kv_cache_memory_bytes: vLLM otherwise sizes its KV cache from the GPU's free memory, which "
        "engines starting together change under each other. GPU engines only; the CPU engine ignores it.",
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

    @model_validator(mode="after")
    def _packing(self) -> EngineSpec:
        if self.engines_per_gpu == 1:
            return self
        if self.kind != "vllm":
            raise key_error("engines_per_gpu", "packs vLLM engines; kind http starts none")
        if gpus_per_engine(self.engine_kwargs) != 1:
            raise key_error("engines_per_gpu", "only one-GPU engines share a GPU (tensor x pipeline parallel size 1)")
        if not self.engine_kwargs.get("kv_cache_memory_bytes"):
            raise key_error(
                "engines_per_gpu",
                "more than 1 needs engine_kwargs.kv_cache_memory_bytes: engines that start together on one GPU "
                "corrupt vLLM's free-memory profile for each other",
            )
        return self

    @model_validator(mode="after")
    def _engine_kwargs_known(self) -> EngineSpec:
        # Names vLLM's engine would reject fail here, not when the engines start (jobs/engine_params.py).
        if self.kind == "vllm" and self.engine_kwargs:
            from jobs.engine_params import engine_kwargs_problems

            _reject_keys("engine_kwargs", engine_kwargs_problems(self.engine_kwargs))
        return self


def _reject_keys(field: str, problems: dict[str, str]) -> None:
    """Fail validation naming the first bad key as ``<field>.<key>`` (and the others after it)."""
    if problems:
        key, *others = sorted(problems)
        also = f" (also unknown: {', '.join(others)})" if others else ""
        raise key_error(f"{field}.{key}", problems[key] + also)


class SamplingSpec(StrictModel):
    """Default sampling parameters; a row's own ``sampling_params`` column overrides them per row. What is
    set here wins over the workload's own defaults (``summarize``'s ``max_tokens: 128``...); what is not, yields.

    Other keys are passed to the engine as they are, and validation checks their names: for
    ``engine.kind: vllm`` against vLLM's ``SamplingParams`` (skipped where vLLM is not installed);
    for ``kind: http`` against OpenAI's chat-completion parameters plus vLLM's extra sampling
    parameters (top_k, min_p, repetition_penalty, ignore_eos...), since the server may be vLLM.
    ``model``, ``messages`` and ``stream`` are the job's own there.
    """

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
        description="Column that every row must have (rows without it go to the errors output). "
        "Rows are identified by their file and position in it, which resume uses; with a "
        "ray.data.Dataset input, which has no positions, this column's value identifies the row.",
    )
    limit: int | None = Field(
        default=None, ge=1, description="Process only the first N rows (in the order the files are listed)."
    )


class OutputSpec(StrictModel):
    """Where the results go."""

    path: str = Field(description="Output folder (local, PVC, s3://, gs://).")
    format: OutputFormat = Field(default="parquet", description="File format of the result parts.")
    rows_per_file: int = Field(
        default=1000,
        ge=1,
        description="Rows per output part file, written by one worker task once it has that many rows "
        "(the last part of a run may be smaller). A killed run loses at most the rows not yet in a part.",
    )
    lease_ttl_s: float = Field(
        default=60,
        ge=5,
        description="A run holds a lease on the output path (<path>/_LEASE), renewed every third of this; "
        "another run on the same path refuses to start until the lease is released or its last heartbeat "
        "is older than this (its run was killed), when it takes the lease over.",
    )


class ErrorPolicy(StrictModel):
    """What to do with rows that fail."""

    on_row_error: Literal["record", "fail"] = Field(
        default="record", description="record writes failed rows to the errors output and goes on; fail stops the job."
    )
    max_error_fraction: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="The job fails (exit code 1, no _SUCCESS) if more than this fraction of its rows failed, "
        "and always if it had rows and none succeeded, even at 1.0. The default 0.1 tolerates scattered "
        "bad rows (a malformed line, an over-long prompt) but fails a job in which something systematic "
        "broke (a wrong sampling parameter, an endpoint down), which fails far more than one row in ten. "
        "Failed rows are recorded in the errors output either way.",
    )


class ResumePolicy(StrictModel):
    """What to do when the output folder already holds results of this job."""

    mode: Literal["resume", "overwrite", "fail"] = Field(
        default="resume",
        description="resume skips rows already written; overwrite deletes earlier results; fail refuses to run.",
    )
    rerun_failed: bool = Field(
        default=True,
        description="On resume, rows in the errors output run again (how failed rows are retried, e.g. once an "
        "endpoint that was down is back): the earlier error records are removed when the rerun starts, and "
        "each of those rows is written again, as a result or an error. false keeps them and runs only the "
        "rows no run finished.",
    )


class WorkloadSpec(StrictModel):
    """Which workload turns rows into chat messages, and its options."""

    name: str = Field(default="chat", description="Workload plug-in name (chat, creative, sentiment, ...).")
    options: dict[str, Any] = Field(default_factory=dict, description="Workload-specific options.")


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

    @model_validator(mode="after")
    def _sampling_keys_known(self) -> JobSpec:
        # Here, where the engine kind is known; a misspelled key would otherwise fail every row.
        extra = self.sampling.model_extra or {}
        if extra:
            from jobs.engine_params import sampling_problems

            _reject_keys("sampling", sampling_problems(extra, self.engine.kind))
        return self

    def model_name(self) -> str:
        if self.model.served_name:
            return self.model.served_name
        return self.model.source.removeprefix("builtin:")
