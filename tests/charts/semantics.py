"""Semantic assertions shared by the RayService and RayJob tests: an independent oracle of what the
worker groups must be, computed from the values and the accelerator catalog."""

from __future__ import annotations

from typing import Any

from llmkit.accelerators import gpus_per_engine, load_catalog, ray_resource


def group_ray_resources(group: dict[str, Any]) -> dict[str, float]:
    """Custom Ray resources of a group: KubeRay's `resources` field without CPU, GPU and memory."""
    return {k: float(v) for k, v in group.get("resources", {}).items() if k not in ("CPU", "GPU", "memory")}


def assert_head_has_no_gpu(spec: dict[str, Any]) -> None:
    head = spec["headGroupSpec"]
    assert head["rayStartParams"]["num-gpus"] == "0"
    assert head["rayStartParams"]["num-cpus"] == "0"
    for c in head["template"]["spec"]["containers"]:
        for part in ("requests", "limits"):
            assert "nvidia.com/gpu" not in c.get("resources", {}).get(part, {}), c["name"]
    assert "nodeSelector" not in head["template"]["spec"] or not any(
        "gpu" in k for k in head["template"]["spec"]["nodeSelector"]
    )
    assert group_ray_resources(head) == {}


def assert_gpu_group(group: dict[str, Any], acc_type: str, values: dict[str, Any], gpus: int) -> None:
    acc = load_catalog().get(acc_type)
    preset = values["accelerators"]["nodeSelectorPreset"]
    pool = values["accelerators"].get("pools", {}).get(acc_type, {})
    pod = group["template"]["spec"]
    expected_selector = {**acc.nodeSelectors[preset], **pool.get("nodeSelector", {})}
    assert pod["nodeSelector"] == expected_selector
    tolerations = pod["tolerations"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
    for t in values["accelerators"].get("extraTolerations", []) + pool.get("tolerations", []):
        assert t in tolerations
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert container["resources"]["requests"]["nvidia.com/gpu"] == gpus
    assert group["resources"]["GPU"] == str(gpus)
    assert group_ray_resources(group) == {ray_resource(acc_type): 1}
    assert group["template"]["metadata"]["labels"]["kuberay-llm/accelerator-type"] == acc_type


def assert_cpu_group(group: dict[str, Any], values: dict[str, Any]) -> None:
    pod = group["template"]["spec"]
    (container,) = pod["containers"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]
    assert container["resources"]["limits"]["cpu"] == values["cpuPool"]["cpu"]
    assert group_ray_resources(group) == {}
    assert group["resources"]["GPU"] == "0"


def expected_serving_groups(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """group name -> pool, gpus per pod, min, max, from the catalog's models and the pool overrides: one
    group per accelerator type and GPUs per replica, one replica per pod."""
    catalog = values["serving"]["catalog"]
    out: dict[str, dict[str, Any]] = {}
    for m in catalog["models"]:
        pool = m.get("accelerator_type") or "cpu"
        gpus = 0 if pool == "cpu" else gpus_per_engine(m.get("engine_kwargs", {}))
        name = "cpu" if pool == "cpu" else f"{pool.lower()}-{gpus}gpu"
        # Ray Serve's reading of deployment_config: a fixed num_replicas, else autoscaling bounds (1, 1).
        deployment = m.get("deployment_config", {})
        fixed = deployment.get("num_replicas")
        a = deployment.get("autoscaling_config", {})
        low, high = (fixed, fixed) if isinstance(fixed, int) else (a.get("min_replicas", 1), a.get("max_replicas", 1))
        g = out.setdefault(name, {"pool": pool, "gpus": gpus, "min": 0, "max": 0})
        g["min"] += low
        g["max"] += high
    for g in out.values():
        o = values["serving"].get("workerGroups", {}).get(g["pool"], {})
        g["min"] = o.get("minReplicas", g["min"])
        g["max"] = o.get("maxReplicas", max(g["max"], 1))
    return out


def assert_pod_security(pod_spec: dict[str, Any]) -> None:
    psc = pod_spec["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    for c in pod_spec["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["runAsNonRoot"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, "Ray needs a writable /tmp (emptyDir)"
        assert c["resources"]["limits"]["memory"] and c["resources"]["limits"]["cpu"]


def assert_no_inline_secret(text: str, docs: list[dict[str, Any]]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"], "the chart must never render a Secret"
    for d in docs:
        for c in _containers(d):
            for env in c.get("env", []):
                if any(w in env["name"].upper() for w in ("TOKEN", "KEY", "PASSWORD", "SECRET")) and not env[
                    "name"
                ].endswith("_PATH"):
                    assert "value" not in env, f"{env['name']} carries an inline value"
    for needle in ("hf_", "sk-"):
        assert f": {needle}" not in text and f'"{needle}' not in text


def _containers(doc: dict[str, Any]):
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "containers" in node and isinstance(node["containers"], list):
                yield from node["containers"]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
