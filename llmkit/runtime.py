"""Runtime detection: does this machine have a GPU?"""

from __future__ import annotations

import glob
import os
import shutil


def has_gpu() -> bool:
    """True when an NVIDIA GPU is visible to this process (device nodes or nvidia-smi)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None
