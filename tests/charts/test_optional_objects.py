"""templates/ingress.yaml, httproute.yaml, pvc.yaml, networkpolicy.yaml, service-metrics.yaml,
servicemonitor.yaml, podmonitor.yaml: rendered when asked for, pointing at the right things."""

import pytest

pytestmark = pytest.mark.charts


def test_ingress_routes_to_the_openai_service(scenarios):
    ing = scenarios["gke-l4"].one("Ingress")
    assert ing["spec"]["ingressClassName"] == "gce"
    (rule,) = ing["spec"]["rules"]
    assert rule["host"] == "llm.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "llm-kuberay-llm-openai", "port": {"number": 8000}}


def test_httproute_routes_to_the_openai_service(scenarios):
    route = scenarios["multi-pool-h100-l4"].one("HTTPRoute")
    assert route["spec"]["parentRefs"] == [{"name": "llm-gateway", "namespace": "gateways"}]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": "llm-kuberay-llm-openai", "port": 8000}]


def test_model_cache_claim(scenarios):
    pvc = scenarios["gke-l4"].one("PersistentVolumeClaim")
    assert pvc["spec"]["storageClassName"] == "standard-rwx"
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    # An existing claim is used as is, and none is created.
    assert not scenarios["eks-a10g"].kind("PersistentVolumeClaim")
    head = scenarios["eks-a10g"].one("RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    (vol,) = [v for v in head["volumes"] if v["name"] == "model-cache"]
    assert vol["persistentVolumeClaim"]["claimName"] == "models-efs"


def _env(pod_spec):
    return {e["name"]: e.get("value") for c in pod_spec["containers"] for e in c.get("env", [])}


@pytest.mark.parametrize(
    ("scenario", "cache_root"), [("gke-l4", "/cache/vllm"), ("eks-a10g", "/cache/vllm"), ("default", None)]
)
def test_compile_caches_live_on_the_model_cache_volume(scenarios, scenario, cache_root):
    r = scenarios[scenario]
    for cr in r.kind("RayService") + r.kind("RayJob"):
        spec = cr["spec"]["rayClusterConfig"] if cr["kind"] == "RayService" else cr["spec"]["rayClusterSpec"]
        pods = [spec["headGroupSpec"]["template"]["spec"]] + [g["template"]["spec"] for g in spec["workerGroupSpecs"]]
        for pod in pods:
            env = _env(pod)
            want = cache_root or "/home/ray/.cache/vllm"
            assert env["VLLM_CACHE_ROOT"] == want
            assert env["TRITON_CACHE_DIR"] == want.replace("/vllm", "/triton")


def test_compile_cache_can_stay_pod_local(render):
    proc = render(sets=["kuberay-operator.enabled=false", "modelCache.enabled=true", "modelCache.compileCache=false"])
    assert proc.returncode == 0, proc.stderr
    assert 'value: "/home/ray/.cache/vllm"' in proc.stdout and 'value: "/cache/vllm"' not in proc.stdout


def test_network_policy(scenarios):
    np = scenarios["eks-a10g"].one("NetworkPolicy")
    assert np["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "kuberay-llm",
        "app.kubernetes.io/instance": "llm",
    }
    ports = [p["port"] for rule in np["spec"]["ingress"] for p in rule.get("ports", [])]
    assert 8000 in ports and 8265 in ports and 8080 in ports  # podMonitor is on: metrics open


def test_monitors(scenarios):
    sm = scenarios["multi-pool-h100-l4"].one("ServiceMonitor")
    svc = scenarios["multi-pool-h100-l4"].one("Service")
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "ray-head"
    assert all(svc["metadata"]["labels"][k] == v for k, v in sm["spec"]["selector"]["matchLabels"].items())
    pm = scenarios["eks-a10g"].one("PodMonitor")
    assert pm["metadata"]["labels"]["release"] == "prometheus"
    assert pm["spec"]["podMetricsEndpoints"] == [{"port": "metrics", "interval": "30s"}]


def test_nothing_optional_by_default(scenarios):
    kinds = {d["kind"] for d in scenarios["default"].docs}
    assert kinds == {"RayService", "NetworkPolicy"}


def test_serve_ingress_settings(scenarios, render):
    env = _env(scenarios["default"].one("RayService")["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"])
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1" and env["RAY_SERVE_HAPROXY_MAXCONN"] == "20000"
    assert "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING" not in env
    proc = render(sets=["kuberay-operator.enabled=false", "serving.directStreaming=true"])
    assert proc.returncode == 0, proc.stderr
    assert "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING" in proc.stdout
    proc = render(sets=["kuberay-operator.enabled=false", "serving.haproxy.enabled=false"])
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in proc.stdout
