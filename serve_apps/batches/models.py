"""OpenAI Batch API objects (files, batches) and the create-batch request, as pydantic v2 models."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
TERMINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})
CHAT_ENDPOINT = "/v1/chat/completions"
# The batch job's openai_batch workload answers chat completions only.
SUPPORTED_ENDPOINTS: tuple[str, ...] = (CHAT_ENDPOINT,)


class _Record(BaseModel):
    """Stored objects keep fields of our own (owner, paths) besides OpenAI's; ``public()`` drops them."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    PRIVATE: ClassVar[frozenset[str]] = frozenset()

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude=set(self.PRIVATE))


class FileObject(_Record):
    """An uploaded (or produced) file, as OpenAI's ``file`` object."""

    PRIVATE: ClassVar[frozenset[str]] = frozenset({"owner", "path", "batch_id"})

    id: str = Field(description="file-<hex>.")
    object: Literal["file"] = "file"
    bytes: int = Field(ge=0, description="Size in bytes.")
    created_at: int = Field(description="Unix seconds.")
    filename: str = Field(description="Name given at upload, or batch_<id>_output.jsonl / _error.jsonl.")
    purpose: Literal["batch", "batch_output"] = Field(description="batch (uploaded) or batch_output (produced).")
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None
    owner: str = Field(description="Hash of the API key that owns the file (never the key).")
    path: str = Field(description="Where the bytes live (folder, PVC, s3://, gs://).")
    batch_id: str | None = Field(default=None, description="The batch that produced this file, if any.")


class RequestCounts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchErrorItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    model_config = ConfigDict(extra="forbid")
    object: Literal["list"] = "list"
    data: list[BatchErrorItem] = Field(default_factory=list)


class Batch(_Record):
    """A batch, as OpenAI's ``batch`` object, plus our run bookkeeping (private fields)."""

    PRIVATE: ClassVar[frozenset[str]] = frozenset(
        {"owner", "output_path", "run_name", "resubmits", "expire_on_stop", "cancel_sent_at", "retry_at"}
    )

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str = "24h"
    status: BatchStatus = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    metadata: dict[str, str] | None = None
    model: str | None = None
    usage: dict[str, Any] | None = None
    owner: str
    output_path: str = Field(description="The job's output folder.")
    run_name: str = Field(description="Name of the job run (Ray actor or RayJob): a DNS label.")
    resubmits: int = 0
    expire_on_stop: bool = False
    cancel_sent_at: float | None = None
    retry_at: float | None = Field(default=None, description="When a failed or lost run is started again.")

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class BatchCreate(BaseModel):
    """Body of ``POST /v1/batches``."""

    model_config = ConfigDict(extra="forbid")

    input_file_id: str = Field(min_length=1, description="An uploaded file with purpose batch.")
    endpoint: str = Field(description="The endpoint every line calls: /v1/chat/completions.")
    completion_window: Literal["24h"] = Field(description="Only 24h, as OpenAI.")
    metadata: dict[str, str] | None = Field(default=None, description="Up to 16 key-value pairs.")
    output_expires_after: dict[str, Any] | None = Field(default=None, description="Accepted and ignored.")

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > 16:
            raise ValueError("at most 16 metadata pairs")
        for k, v in value.items():
            if len(k) > 64 or len(v) > 512:
                raise ValueError("metadata keys are at most 64 characters, values at most 512")
        return value


def page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """OpenAI's cursor page."""
    return {
        "object": "list",
        "data": items,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": has_more,
    }
