"""Shared test setup: offline, quiet, and the default model's cache inside the repo."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Same defaults as the Makefile, so `pytest` alone behaves like `make test`.
os.environ.setdefault("KRLLM_CACHE_DIR", str(ROOT / ".cache"))
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
