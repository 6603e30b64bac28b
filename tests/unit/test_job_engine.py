"""jobs.engine: the defaults a spec gets and the rows the vLLM stage receives (no Ray, no vLLM)."""

from __future__ import annotations

import pytest

from jobs.engine import GPU_DEFAULTS, engine_kwargs
from jobs.spec import JobSpec
from tests.support import chat_job


def test_spec_engine_kwargs_override_the_device_defaults():
    spec = chat_job(engine_kwargs={"max_num_seqs": 8})
    gpu = engine_kwargs(spec, "gpu")
    assert gpu["max_num_seqs"] == 8 and gpu["max_num_batched_tokens"] == 16384
    assert engine_kwargs(spec, "cpu")["enforce_eager"] is True
    assert (GPU_DEFAULTS.batch_size, GPU_DEFAULTS.max_concurrent_batches) == (128, 16)


def _packed(concurrency, n, **kwargs) -> JobSpec:
    return chat_job(
        concurrency=concurrency, engines_per_gpu=n, engine_kwargs={"kv_cache_memory_bytes": 4 << 30, **kwargs}
    )


def test_packed_engines_share_one_gpu_and_its_light_stage_cpus():
    from jobs.engine import job_gpus, light_stage_cpus, placement_group_config

    spec = _packed(6, 4)
    assert placement_group_config(spec, "gpu") == {"bundles": [{"GPU": 0.25, "CPU": 1}]}
    assert engine_kwargs(spec, "gpu")["gpu_memory_utilization"] == 0.225  # the start check: 1/4 of 0.90
    assert light_stage_cpus(spec, "gpu") == 0.25
    assert job_gpus(spec, "gpu") == 2  # 6 engines, 4 to a GPU
    # A spec's own utilization wins; the CPU engine ignores packing.
    assert engine_kwargs(_packed(4, 4, gpu_memory_utilization=0.2), "gpu")["gpu_memory_utilization"] == 0.2
    assert placement_group_config(spec, "cpu") == {"bundles": [{"CPU": 1}]}
    assert job_gpus(spec, "cpu") == 0 and "gpu_memory_utilization" not in engine_kwargs(spec, "cpu")
    one = _packed(3, 1)
    assert placement_group_config(one, "gpu") is None and job_gpus(one, "gpu") == 3


def test_packing_needs_one_gpu_engines_and_a_fixed_kv_cache():
    from llmkit.config import ConfigError

    for kwargs, words in (
        ({"tensor_parallel_size": 2}, "one-GPU engines"),
        (
            {"kv_cache_memory_bytes": None},
            "engine.engines_per_gpu: more than 1 needs engine_kwargs.kv_cache_memory_bytes",
        ),
    ):
        with pytest.raises(ConfigError, match=words):
            _packed(4, 4, **kwargs)


def test_a_concurrency_that_leaves_packed_gpu_room_is_named():
    from jobs.engine import packing_shortfall

    assert packing_shortfall(_packed(1, 4), "gpu") == (
        "engine.concurrency: 1 engines at engines_per_gpu=4 hold 1 GPU(s), room for 4; "
        "set concurrency to a multiple of 4 to use them"
    )
    assert "hold 2 GPU(s), room for 8" in packing_shortfall(_packed((2, 6), 4), "gpu")
    for spec, device in ((_packed(8, 4), "gpu"), (_packed(3, 1), "gpu"), (_packed(1, 4), "cpu")):
        assert packing_shortfall(spec, device) is None


def test_a_local_ray_gets_room_for_one_default_task_beside_the_actors():
    from jobs.engine import actor_cpus, local_ray_cpus

    cpu = chat_job()  # one CPU engine (1 CPU) and its two light stages (0.1 each)
    assert actor_cpus(cpu, "cpu") == pytest.approx(1.2)
    assert local_ray_cpus(cpu, "cpu", cores=2) == 3 and local_ray_cpus(cpu, "cpu", cores=4) is None
    # Four engines packed on one GPU: a CPU each, and a quarter of each light stage's CPU.
    assert actor_cpus(_packed(4, 4), "gpu") == pytest.approx(4 * (1 + 2 * 0.25))
    assert local_ray_cpus(_packed(4, 4), "gpu", cores=16) is None
    # A two-GPU engine holds a CPU beside each GPU; light stages take a CPU each on GPU.
    assert actor_cpus(chat_job(engine_kwargs={"tensor_parallel_size": 2}), "gpu") == pytest.approx(4)
    assert local_ray_cpus(chat_job(concurrency=2, kind="http"), "cpu", cores=1) == 2
