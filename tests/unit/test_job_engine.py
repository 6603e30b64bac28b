"""jobs.engine: the defaults a spec gets and the rows the vLLM stage receives (no Ray, no vLLM)."""

from __future__ import annotations

from jobs.engine import GPU_DEFAULTS, engine_kwargs
from jobs.spec import JobSpec


def test_spec_engine_kwargs_override_the_device_defaults():
    spec = JobSpec.from_dict(
        {
            "name": "t",
            "model": {"source": "org/m"},
            "workload": {"name": "chat"},
            "input": {"path": "in.jsonl"},
            "output": {"path": "out"},
            "engine": {"engine_kwargs": {"max_num_seqs": 8}},
        }
    )
    gpu = engine_kwargs(spec, "gpu")
    assert gpu["max_num_seqs"] == 8 and gpu["max_num_batched_tokens"] == 16384
    assert engine_kwargs(spec, "cpu")["enforce_eager"] is True
    assert (GPU_DEFAULTS.batch_size, GPU_DEFAULTS.max_concurrent_batches) == (128, 16)
