"""How a batch's job runs: the hooks every runner implements (local Ray, KubeRay RayJob)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Literal

from serve_apps.batches.models import Batch
from serve_apps.catalog import ModelEntry

Phase = Literal["pending", "running", "succeeded", "failed", "stopped", "missing"]
# The batch job's exit codes (its CLI contract).
EXIT_OK, EXIT_FAILED, EXIT_BAD_SPEC, EXIT_SIGTERM = 0, 1, 2, 143


@dataclass(frozen=True)
class RunState:
    """What a runner knows of a job run."""

    phase: Phase
    exit_code: int | None = None
    message: str = ""

    @property
    def done(self) -> bool:
        return self.phase in ("succeeded", "failed", "stopped", "missing")


class BatchRunner(abc.ABC):
    """Runs ``python -m jobs run`` for one batch. Every hook is idempotent: several ingress replicas,
    or one replica after a restart, may call them again for the same batch."""

    kind: str = "base"

    @abc.abstractmethod
    def engine(self, model_id: str, entry: ModelEntry) -> dict[str, Any]:
        """The job spec's ``engine`` block for a model of the catalog (``entry``: its ModelEntry)."""

    @abc.abstractmethod
    def submit(self, batch: Batch, spec: dict[str, Any], entry: ModelEntry) -> None:
        """Start the job run named ``batch.run_name``; nothing happens if it already exists."""

    @abc.abstractmethod
    def status(self, batch: Batch) -> RunState:
        """The run's phase; ``missing`` when the run is not known (never started, deleted, Ray restarted)."""

    @abc.abstractmethod
    def cancel(self, batch: Batch) -> None:
        """Ask the run to stop; the job keeps what it finished (SIGTERM, or the RayJob deleted)."""

    def cleanup(self, batch: Batch) -> None:  # noqa: B027 - optional hook
        """Release what the run holds once the batch is final."""
