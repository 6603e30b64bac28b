"""Batch LLM inference on Ray Data LLM: ``python -m jobs run --config job.yaml``."""

from jobs.spec import JobSpec

__all__ = ["JobSpec", "run"]


def run(spec, data=None):
    """Run a job spec (a JobSpec, a dict, or a YAML path); ``data`` may be a list of rows/prompts or a DataFrame."""
    from pathlib import Path

    from jobs.pipeline import run as _run

    if isinstance(spec, (str, Path)):
        spec = JobSpec.from_yaml(spec)
    elif isinstance(spec, dict):
        spec = JobSpec.from_dict(spec)
    return _run(spec, data)
