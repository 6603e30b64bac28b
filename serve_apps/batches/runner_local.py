"""Embedded mode: each batch is a job process on the local Ray cluster, watched by a detached actor.

The actor (named after the batch, in its own namespace, ``num_cpus=0``) starts
``python -m jobs run --config <spec>`` with ``RAY_ADDRESS`` set, so the job joins the cluster
the app runs on. Being detached, it outlives the ingress replica: a restarted replica finds it by
name. Ray's job submission would do the same, but needs the dashboard, which ``make serve`` does
not start, and kills a stopped job 3 s after SIGTERM, too soon for it to write partial output.
If Ray itself restarts, the actor is gone: the runner reports ``missing`` and the batch is resumed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from serve_apps.auth import read_api_keys
from serve_apps.batches.config import LocalRunner
from serve_apps.batches.models import Batch
from serve_apps.batches.runner import BatchRunner, RunState
from serve_apps.catalog import ModelEntry

logger = logging.getLogger(__name__)

NAMESPACE = "krllm-batches"


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # The job ends when its supervisor's process ends (Ray shut down): no orphan keeps writing.
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class JobSupervisor:
    """Starts the job process and reports on it. Sync and single-threaded: the child's parent thread lives on."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: str) -> None:
        run_dir = Path(log_path).parent
        run_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
        main = threading.current_thread() is threading.main_thread()
        self._proc = subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=run_dir,  # not the worker's cwd: `python -m jobs` must import the installed package
            start_new_session=True,
            preexec_fn=_die_with_parent if main else None,  # noqa: PLW1509
        )
        self._term_at: float | None = None
        self._grace_s = 60.0

    def status(self) -> dict[str, Any]:
        rc = self._proc.poll()
        if rc is None and self._term_at is not None and time.monotonic() - self._term_at > self._grace_s:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)
            rc = self._proc.wait(timeout=10)
        return {"pid": self._proc.pid, "exit_code": rc, "stopping": self._term_at is not None}

    def stop(self, grace_s: float) -> None:
        if self._proc.poll() is None and self._term_at is None:
            self._grace_s = grace_s
            self._term_at = time.monotonic()
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._proc.pid, signal.SIGTERM)


class LocalRayRunner(BatchRunner):
    """Runs batches on the Ray cluster this replica belongs to."""

    kind = "local"

    def __init__(self, cfg: LocalRunner, work_root: str, auth: Any = None) -> None:
        self.cfg = cfg
        self.work_root = Path(work_root)
        self.auth = auth

    # --- spec -----------------------------------------------------------------------------

    def engine(self, model_id: str, entry: ModelEntry) -> dict[str, Any]:
        if self.cfg.engine == "vllm":
            return {"kind": "vllm", "device": "auto", "engine_kwargs": entry.vllm_kwargs}
        if not self.cfg.http_url:
            raise RuntimeError("batches.local.http_url is not set (python -m serve_apps serve sets it)")
        return {
            "kind": "http",
            "http": {"url": self.cfg.http_url, "model": model_id, "api_key_env": self.cfg.api_key_env},
        }

    def _job_env(self) -> dict[str, str]:
        import ray

        env = {**self.cfg.env, "RAY_ADDRESS": ray.get_runtime_context().gcs_address, "PYTHONUNBUFFERED": "1"}
        key = "none"
        if self.auth is not None and self.auth.enabled:
            keys = sorted(read_api_keys(self.auth.api_keys_env, self.auth.api_keys_file))
            key = keys[0] if keys else key
        env[self.cfg.api_key_env] = key
        return env

    # --- hooks ----------------------------------------------------------------------------

    def _actor(self, batch: Batch) -> Any | None:
        import ray

        try:
            return ray.get_actor(batch.run_name, namespace=NAMESPACE)
        except ValueError:
            return None

    def submit(self, batch: Batch, spec: dict[str, Any], entry: ModelEntry) -> None:
        import ray

        if self._actor(batch) is not None:
            return
        run_dir = self.work_root / batch.id
        run_dir.mkdir(parents=True, exist_ok=True)
        spec_path = run_dir / "spec.yaml"
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        argv = [sys.executable, "-m", "jobs", "run", "--config", str(spec_path), "--show", "0"]
        actor_cls = ray.remote(num_cpus=0, max_restarts=0, max_concurrency=1)(JobSupervisor)
        try:
            actor_cls.options(name=batch.run_name, namespace=NAMESPACE, lifetime="detached").remote(
                argv, self._job_env(), str(run_dir / "job.log")
            )
        except ValueError:  # another replica created it between the lookup and here
            return
        logger.info("batch %s: started job %s (log %s)", batch.id, batch.run_name, run_dir / "job.log")

    def status(self, batch: Batch) -> RunState:
        import ray

        actor = self._actor(batch)
        if actor is None:
            return RunState("missing")
        try:
            info = ray.get(actor.status.remote(), timeout=30)
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as e:
            return RunState("missing", message=str(e)[:200])
        rc = info["exit_code"]
        if rc is None:
            return RunState("running")
        if rc == 0:
            return RunState("succeeded", 0)
        if rc in (143, -signal.SIGTERM, -signal.SIGKILL) or info["stopping"]:
            return RunState("stopped", rc)
        return RunState("failed", rc, f"the batch job exited with code {rc}")

    def cancel(self, batch: Batch) -> None:
        import ray

        actor = self._actor(batch)
        if actor is not None:
            with contextlib.suppress(ray.exceptions.RayActorError):
                ray.get(actor.stop.remote(self.cfg.stop_grace_s), timeout=30)

    def cleanup(self, batch: Batch) -> None:
        import ray

        actor = self._actor(batch)
        if actor is not None:
            with contextlib.suppress(Exception):
                ray.kill(actor)
