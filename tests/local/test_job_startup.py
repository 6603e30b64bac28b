"""jobs.startup: the start-up work a job runs side by side (real vLLM, no engine)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from jobs.startup import Warmup, architectures


def test_architectures_come_from_the_model_config(tmp_path):
    assert architectures(str(tmp_path)) == []  # no config.json: nothing to inspect
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM", 3]}))
    assert architectures(str(tmp_path)) == ["LlamaForCausalLM"]
    (tmp_path / "config.json").write_text("{not json")
    assert architectures(str(tmp_path)) == []


def test_model_inspection_fills_vllms_model_info_cache(tmp_path, monkeypatch):
    cache = tmp_path / "vllm-cache"
    monkeypatch.setenv("VLLM_CACHE_ROOT", str(cache))
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    warmup = Warmup()
    warmup.start_model_inspection(str(model))
    assert warmup._inspect is not None
    deadline = time.time() + 300
    while warmup._inspect.poll() is None and time.time() < deadline:
        time.sleep(1)
    assert warmup._inspect.returncode == 0
    (info,) = (cache / "modelinfos").glob("*LlamaForCausalLM.json")
    # What vLLM itself reads back on its next start: the module hash and the model's traits.
    data = json.loads(info.read_text())
    assert data["hash"] and data["modelinfo"]["is_text_generation_model"] is True
    warmup.close()


def test_an_unknown_architecture_does_not_fail_the_job(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "jobs.startup", "NoSuchArchForCausalLM"],
        env={"VLLM_CACHE_ROOT": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=300,
    )
    assert done.returncode == 0 and not (tmp_path / "modelinfos").exists()
