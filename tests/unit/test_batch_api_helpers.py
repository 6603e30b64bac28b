"""Shared pieces of the Batch API unit tests: a fake runner, a service on a temporary folder, input lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from serve_apps.batches.config import BatchesConfig
from serve_apps.batches.models import Batch
from serve_apps.batches.runner import BatchRunner, RunState
from serve_apps.batches.service import BatchService
from serve_apps.batches.store import Blobs, FolderState
from serve_apps.catalog import ModelEntry
from tests.support import llm_entry

MODEL = "smollm2-135m-instruct"


def line(custom_id: str, content: str = "Hi", *, model: str = MODEL, url: str = "/v1/chat/completions", **body) -> str:
    return json.dumps(
        {
            "custom_id": custom_id,
            "method": "POST",
            "url": url,
            "body": {"model": model, "messages": [{"role": "user", "content": content}], **body},
        }
    )


class FakeRunner(BatchRunner):
    """Records submissions; the test decides what the job did by writing the output folder."""

    kind = "fake"

    def __init__(self) -> None:
        self.cfg = type("Cfg", (), {"max_resubmits": 2})()
        self.phase: dict[str, RunState] = {}
        self.submitted: list[tuple[str, dict[str, Any]]] = []
        self.cancelled: list[str] = []
        self.cleaned: list[str] = []

    def engine(self, model_id: str, entry: Any) -> dict[str, Any]:
        return {"kind": "http", "http": {"url": "http://x/v1", "model": model_id}}

    def submit(self, batch: Batch, spec: dict[str, Any], entry: Any) -> None:
        self.submitted.append((batch.id, spec))
        self.phase.setdefault(batch.id, RunState("running"))

    def status(self, batch: Batch) -> RunState:
        return self.phase.get(batch.id, RunState("missing"))

    def cancel(self, batch: Batch) -> None:
        """SIGTERM sent; the test says when the job has stopped (phase stopped, exit 143)."""
        if batch.id not in self.cancelled:
            self.cancelled.append(batch.id)

    def cleanup(self, batch: Batch) -> None:
        self.cleaned.append(batch.id)
        self.phase.pop(batch.id, None)


def make_service(root: Path, runner: BatchRunner | None = None, **cfg: Any) -> BatchService:
    config = BatchesConfig(enabled=True, storage_root=str(root), **{"retry_delay_s": 0, **cfg})
    blobs = Blobs(config.storage_root)
    models = {MODEL: ModelEntry(**llm_entry(MODEL))}
    return BatchService(config, models, FolderState(root / "state"), blobs, runner or FakeRunner())


def write_job_output(output: str, ok: list[str], failed: list[str], *, success: bool = True) -> None:
    """What the batch job leaves in its output folder (the documented contract)."""
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "output.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": f"batch_req_{c}", "custom_id": c, "response": {"status_code": 200, "body": {}}, "error": None}
            )
            + "\n"
            for c in ok
        )
    )
    (out / "errors.jsonl").write_text(
        "".join(
            json.dumps(
                {"id": f"batch_req_{c}", "custom_id": c, "response": None, "error": {"code": "x", "message": "y"}}
            )
            + "\n"
            for c in failed
        )
    )
    if success:
        (out / "summary.json").write_text(
            json.dumps({"rows_total": len(ok) + len(failed), "rows_ok": len(ok), "rows_failed": len(failed)})
        )
        (out / "_SUCCESS").write_text("")
