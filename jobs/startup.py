"""Job start-up work done side by side instead of one step after another.

A GPU job spends most of its first two minutes starting things: the local Ray instance,
the driver's imports of Ray Data LLM, the engine actor, vLLM's model-class inspection and
its engine. Measured on an H100 (bench/README.md), the job's own steps before the engine
actor came to ~40 s, one after the other. Here:

- the imports of Ray Data LLM run in a thread while ``ray.init`` waits for Ray's processes;
- vLLM's model-class inspection, which vLLM runs in a fresh subprocess (~17 s: it imports
  torch and vLLM) unless ``$VLLM_CACHE_ROOT/modelinfos`` already has it, is run ahead in a
  subprocess of our own. The engine actor then finds it cached when it gets there. That
  helps where the engine shares the driver's ``VLLM_CACHE_ROOT`` (local Ray, or a cache
  volume mounted on the head and the workers); elsewhere the actor inspects as before.

Both are best effort: a failure is logged and the job goes on the usual way.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from pathlib import Path

logger = logging.getLogger(__name__)


class Warmup:
    """Starts the background work; ``wait()`` before building the processor."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._inspect: subprocess.Popen | None = None

    def start_imports(self, engine_kind: str) -> None:
        def imports() -> None:
            try:
                if engine_kind != "vllm":
                    return  # the http engine is ours (jobs.http_engine) and needs no Ray Data LLM
                import ray.data.llm  # noqa: F401

                # The module Ray Data LLM loads for the engine stage (and vLLM with it).
                import ray.llm._internal.batch.stages.vllm_engine_stage  # noqa: F401
            except Exception as e:  # noqa: BLE001 - the real import reports it again, in order
                logger.debug("background import failed: %r", e)

        self._thread = threading.Thread(target=imports, name="krllm-imports", daemon=True)
        self._thread.start()

    def start_model_inspection(self, model_dir: str) -> None:
        """Fill vLLM's model-info cache for the architectures in ``model_dir/config.json``."""
        archs = architectures(model_dir)
        if not archs:
            return
        try:
            self._inspect = subprocess.Popen(
                [sys.executable, "-m", "jobs.startup", *archs],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        except OSError as e:
            logger.debug("model inspection not started: %r", e)

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()

    def close(self) -> None:
        """Stop the inspection if it still runs (the engine does its own then)."""
        if self._inspect is not None and self._inspect.poll() is None:
            self._inspect.kill()
            self._inspect.wait()


def architectures(model_dir: str) -> list[str]:
    try:
        config = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return []
    archs = config.get("architectures") or []
    return [a for a in archs if isinstance(a, str)]


def inspect(archs: list[str]) -> None:
    """What vLLM does on a model-info cache miss, ahead of time (results land in its cache)."""
    from vllm.model_executor.models.registry import ModelRegistry

    for arch in archs:
        # vLLM 0.26 through 0.29: inspects in a subprocess and writes $VLLM_CACHE_ROOT/modelinfos.
        ModelRegistry._try_inspect_model_cls(arch)


if __name__ == "__main__":
    inspect(sys.argv[1:])
