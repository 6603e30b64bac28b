"""GPUs requested equal GPUs used, at max scale, in every scenario and manifest.

The two sides come from different places on purpose:
- requested: what the rendered custom resource asks Kubernetes for, summed over its worker groups
  (`maxReplicas` x the `nvidia.com/gpu` limit of the group's pod);
- used: what the code that runs in the pods needs, from the rendered serveConfigV2 or job spec: per served
  model, the GPUs of the placement bundles Ray Serve LLM reserves for one replica x the most replicas Ray
  Serve scales its deployment to (from the LLMConfig the app builds);
  `jobs.engine.job_gpus` per batch job (engines x their GPUs, packed engines sharing one; with the entrypoint's
  `--set` overrides applied as the jobs CLI applies them).
Nothing here restates how the chart lays out groups, so any layout that wastes or lacks a GPU fails.
"""

from __future__ import annotations

import shlex

import pytest
import yaml
from chart_helpers import CR_KINDS, cluster_spec

from jobs.engine import job_gpus, resolve_device
from jobs.spec import JobSpec
from llmkit.config import apply_overrides
from serve_apps.catalog import ModelCatalog

pytestmark = pytest.mark.charts


def requested_at_max_scale(cr: dict) -> int:
    total = 0
    for group in cluster_spec(cr).get("workerGroupSpecs", []):
        for c in group["template"]["spec"]["containers"]:
            total += group["maxReplicas"] * int(c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu", 0))
    return total


def served_gpus_at_max_scale(service: dict) -> int:
    from ray.serve.config import AutoscalingConfig

    from serve_apps.app import build_llm_configs, resolve_mode

    (app,) = yaml.safe_load(service["spec"]["serveConfigV2"])["applications"]
    catalog = ModelCatalog.model_validate(app["args"]["catalog"])
    if resolve_mode(catalog) == "cpu":
        return 0
    total = 0
    for config in build_llm_configs(catalog, "gpu", provision=False):
        if not config.accelerator_type:  # the chart puts it on the CPU pool
            continue
        gpus = sum(b.get("GPU", 0) for b in config.get_engine_config().placement_bundles)
        deployment = config.deployment_config
        fixed = deployment.get("num_replicas")
        most = (
            fixed
            if isinstance(fixed, int)
            else AutoscalingConfig(**deployment.get("autoscaling_config", {})).max_replicas
        )
        total += int(gpus) * most
    return total


def job_gpus_at_max_scale(job: dict, configmaps: list[dict]) -> int:
    name = job["metadata"]["labels"]["kuberay-llm/job"]
    (cm,) = [c for c in configmaps if c["metadata"]["labels"].get("kuberay-llm/job") == name]
    argv = shlex.split(job["spec"]["entrypoint"])
    overrides = [argv[i + 1] for i, a in enumerate(argv) if a == "--set"]
    spec = JobSpec.from_dict(apply_overrides(yaml.safe_load(cm["data"]["job.yaml"]), overrides))
    return job_gpus(spec, resolve_device(spec))


def test_gpus_requested_at_max_scale_equal_gpus_the_engines_use(all_rendered):
    seen = []
    for name, r in all_rendered.items():
        configmaps = r.kind("ConfigMap")
        for cr in r.docs:
            if cr["kind"] not in CR_KINDS:
                continue
            service = cr["kind"] == "RayService"
            used = served_gpus_at_max_scale(cr) if service else job_gpus_at_max_scale(cr, configmaps)
            requested = requested_at_max_scale(cr)
            assert requested == used, (
                f"{name} {cr['kind']} {cr['metadata']['name']}: requests {requested} GPUs, uses {used}"
            )
            seen.append((name, cr["metadata"]["name"], used))
    assert len(seen) >= 15
    # The property is not vacuous: several GPU layouts are covered, including engines of 1 and 2 GPUs on
    # 4-GPU nodes (ci/multi-gpu-nodes-values.yaml: 4 one-GPU engines must ask for 4 GPUs, not 16).
    assert {used for _, _, used in seen} >= {0, 1, 2, 4}
    assert ("ci/multi-gpu-nodes", "llm-kuberay-llm-questions", 4) in seen
