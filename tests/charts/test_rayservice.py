"""templates/rayservice.yaml: the serving RayService per scenario."""

import pytest
import yaml
from chart_helpers import cluster_spec, pod_templates
from semantics import (
    assert_cpu_group,
    assert_gpu_group,
    assert_head_has_no_gpu,
    assert_no_inline_secret,
    assert_pod_security,
    expected_serving_groups,
)

pytestmark = pytest.mark.charts

SERVING = [
    "default",
    "gke-l4",
    "eks-a10g",
    "multi-pool-h100-l4",
    "cpu-local",
    "multi-gpu-nodes",
    "batch-api",
    "batch-api-pvc",
]


@pytest.mark.parametrize("scenario", SERVING)
def test_worker_group_per_accelerator_type(scenarios, scenario):
    r = scenarios[scenario]
    spec = cluster_spec(r.one("RayService"))
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    expected = expected_serving_groups(r.values)
    assert set(groups) == set(expected)
    for name, want in expected.items():
        g = groups[name]
        if want["pool"] == "cpu":
            assert_cpu_group(g, r.values)
        else:
            assert_gpu_group(g, want["pool"], r.values, want["gpus"])
        assert (g["minReplicas"], g["maxReplicas"]) == (want["min"], want["max"])
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]


@pytest.mark.parametrize("scenario", SERVING)
def test_head_autoscaling_and_security(scenarios, scenario):
    r = scenarios[scenario]
    svc = r.one("RayService")
    spec = cluster_spec(svc)
    assert_head_has_no_gpu(spec)
    assert spec["enableInTreeAutoscaling"] is r.values["autoscaler"]["enabled"]
    if r.values["autoscaler"]["enabled"]:
        assert spec["autoscalerOptions"]["idleTimeoutSeconds"] == r.values["autoscaler"]["idleTimeoutSeconds"]
        assert spec["autoscalerOptions"]["securityContext"]["allowPrivilegeEscalation"] is False
    for _, tpl in pod_templates(svc):
        assert_pod_security(tpl["spec"])
    assert_no_inline_secret(r.text, r.docs)
    assert svc["spec"]["upgradeStrategy"]["type"] == r.values["serving"]["upgradeStrategy"]


def test_multi_pool_has_both_types_side_by_side(scenarios):
    spec = cluster_spec(scenarios["multi-pool-h100-l4"].one("RayService"))
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"h100-4gpu", "l4-1gpu"}
    assert groups["h100-4gpu"]["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 4
    assert groups["l4-1gpu"]["minReplicas"] == 0  # scales from zero through accelerator_type:L4


def test_models_of_different_sizes_on_one_type_get_one_group_each(scenarios):
    spec = cluster_spec(scenarios["multi-gpu-nodes"].one("RayService"))
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"l40s-1gpu", "l40s-2gpu"}
    gpus = {
        n: g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] for n, g in groups.items()
    }
    assert gpus == {"l40s-1gpu": 1, "l40s-2gpu": 2}


@pytest.mark.parametrize("scenario", SERVING)
def test_serve_config_carries_the_catalog_verbatim(scenarios, scenario):
    r = scenarios[scenario]
    cfg = yaml.safe_load(r.one("RayService")["spec"]["serveConfigV2"])
    (app,) = cfg["applications"]
    assert app["import_path"] == "serve_apps.app:build_app"
    catalog = dict(app["args"]["catalog"])
    if r.values["serving"]["apiKeys"]["existingSecret"]:
        assert catalog.pop("auth") == {
            "enabled": True,
            "api_keys_file": "/etc/kuberay-llm/api-keys/keys",
            "api_keys_env": None,
        }
    assert catalog == r.values["serving"]["catalog"]
    assert cfg["http_options"]["port"] == 8000


def test_openai_service(scenarios):
    svc = scenarios["eks-a10g"].one("RayService")["spec"]["serveService"]
    assert svc["metadata"]["name"].endswith("-openai")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert svc["spec"]["ports"] == [{"name": "serve", "port": 8000, "targetPort": 8000, "protocol": "TCP"}]


def test_hf_token_from_existing_secret_as_file(scenarios):
    svc = scenarios["gke-l4"].one("RayService")
    for _, tpl in pod_templates(svc):
        vols = {v["name"]: v for v in tpl["spec"]["volumes"]}
        assert vols["hf-token"]["secret"]["secretName"] == "hf-token"
        env = {e["name"]: e for e in tpl["spec"]["containers"][0]["env"]}
        assert env["HF_TOKEN_PATH"]["value"] == "/etc/kuberay-llm/hf-token/token"
        assert "HF_TOKEN" not in env


def test_image_digest_and_tag(scenarios):
    head = cluster_spec(scenarios["eks-a10g"].one("RayService"))["headGroupSpec"]["template"]["spec"]
    assert head["containers"][0]["image"].endswith("@sha256:" + "0" * 64)
    cpu = cluster_spec(scenarios["cpu-local"].one("RayService"))["headGroupSpec"]["template"]["spec"]
    assert cpu["containers"][0]["image"] == "ghcr.io/kuberay-llm/kuberay-llm:0.1.0-cpu"


def test_no_chart_label_in_selectors(all_rendered):
    for r in all_rendered.values():
        for d in r.docs:
            for sel in _selectors(d):
                assert "helm.sh/chart" not in sel, (r.name, d["kind"])


def _selectors(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("selector", "podSelector", "matchLabels") and isinstance(v, dict):
                yield v.get("matchLabels", v)
            yield from _selectors(v)
    elif isinstance(node, list):
        for v in node:
            yield from _selectors(v)
