"""Runtime detection (CPU or GPU) and the vLLM-on-CPU settings shared by batch and serving."""

from __future__ import annotations

import glob
import logging
import os
import shutil
from typing import Any, Literal

logger = logging.getLogger(__name__)

Device = Literal["cpu", "gpu"]

# vLLM engine arguments on CPU: eager mode starts in ~30 s instead of minutes of torch.compile,
# and float32 keeps small models' answers intact (bf16 on CPU turned SmolLM2's greedy answers
# to noise). max_model_len bounds the per-request KV cache. Users' engine_kwargs override these.
CPU_ENGINE_KWARGS: dict[str, Any] = {"enforce_eager": True, "dtype": "float32", "max_model_len": 2048}
# vLLM's CPU KV cache, in GiB; the environment of whoever builds the job or app wins.
CPU_ENV_DEFAULTS: dict[str, str] = {"VLLM_CPU_KVCACHE_SPACE": "1"}


def cpu_env() -> dict[str, str]:
    return {k: os.environ.get(k, v) for k, v in CPU_ENV_DEFAULTS.items()}


def has_gpu() -> bool:
    """True when an NVIDIA GPU is visible to this process (device nodes or nvidia-smi)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def cluster_has_gpu() -> bool:
    """True when a connected Ray cluster advertises GPUs (our code may run on a GPU-less head)."""
    try:
        import ray

        return ray.is_initialized() and ray.cluster_resources().get("GPU", 0) > 0
    except Exception:  # noqa: BLE001 - detection must never break a run
        logger.debug("GPU detection through Ray failed", exc_info=True)
        return False


def pick_device(requested: str, names_accelerator: bool) -> Device:
    """cpu or gpu. ``auto``: gpu when an accelerator type is named (its pool may still be at zero
    nodes), the Ray cluster has GPUs, or one is visible here; cpu otherwise."""
    if requested in ("cpu", "gpu"):
        return requested  # type: ignore[return-value]
    return "gpu" if names_accelerator or cluster_has_gpu() or has_gpu() else "cpu"
