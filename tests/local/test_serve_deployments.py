"""The built Serve application asks Ray for the catalog's accelerator types (no GPU needed).

Ray Serve LLM computes deployment options through the Ray runtime context, so this needs
a (tiny, local) Ray; nothing is deployed.
"""

from __future__ import annotations

import pytest

from llmkit.models import DEFAULT_MODEL
from serve_apps.app import build_app
from tests.support import llm_entry

pytestmark = [pytest.mark.local, pytest.mark.serve]

GPU_CATALOG = {
    "models": [
        llm_entry("big", "s3://bucket/llama-70b", accelerator_type="H100", engine_kwargs={"tensor_parallel_size": 4}),
        llm_entry("small", "Qwen/Qwen2.5-1.5B-Instruct", accelerator_type="L4"),
    ]
}


@pytest.fixture(scope="module")
def ray_up():
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


def _llm_deployments(app) -> dict:
    ingress = app._bound_deployment
    return {k: v._bound_deployment for k, v in ingress.init_kwargs["llm_deployments"].items()}


def test_gpu_catalog_deployments_require_the_accelerator_types(ray_up) -> None:
    app = build_app({"catalog": GPU_CATALOG})
    deployments = _llm_deployments(app)
    assert set(deployments) == {"big", "small"}

    big = deployments["big"]._replica_config.placement_group_bundles
    assert len(big) == 4  # one bundle per tensor-parallel GPU
    assert all(b["GPU"] == 1 and b["accelerator_type:H100"] > 0 for b in big)

    small = deployments["small"]._replica_config.placement_group_bundles
    assert len(small) == 1
    assert small[0]["GPU"] == 1 and small[0]["accelerator_type:L4"] > 0
    assert not any("accelerator_type:H100" in b for b in small)


def test_ingress_needs_no_cpu(ray_up) -> None:
    app = build_app({"catalog": GPU_CATALOG})
    assert app._bound_deployment.ray_actor_options["num_cpus"] == 0


def test_cpu_catalog_deployments_need_no_gpu(ray_up) -> None:
    app = build_app({"catalog": {"device": "cpu", "models": [llm_entry("m", DEFAULT_MODEL)]}})
    bundles = _llm_deployments(app)["m"]._replica_config.placement_group_bundles
    assert bundles and all(b.get("GPU", 0) == 0 for b in bundles)
    assert not any(k.startswith("accelerator_type:") for b in bundles for k in b)


@pytest.mark.parametrize("example", ["gpu-l4-single.yaml", "gpu-multi-h100-l4.yaml", "local-cpu.yaml"])
def test_serve_config_import_path_and_args(ray_up, example: str) -> None:
    """What RayService's serveConfigV2 does: import the builder by path and call it with args."""
    from pathlib import Path

    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
    from ray.serve._private.utils import import_attr
    from ray.serve.deployment import Application

    builder = import_attr("serve_apps.app:build_app")
    path = Path(__file__).parents[2] / "serve_apps" / "examples" / example
    app = call_user_app_builder_with_args_if_necessary(builder, {"catalog_path": str(path)})
    assert isinstance(app, Application)
    assert _llm_deployments(app)
