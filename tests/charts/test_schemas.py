"""Every rendered document against real schemas: custom resources strictly against the KubeRay v1.7.0
CRDs, core kinds (and the pod templates inside the custom resources, lifted into Pods) with
kubernetes-validate --strict."""

from __future__ import annotations

import copy
import functools

import jsonschema
import pytest
import yaml
from chart_helpers import CR_KINDS, CRDS_DIR, TOOLS, lifted_pods, need_tool, run

pytestmark = pytest.mark.charts

KUBERNETES_VERSION = "1.34.0"
# Kinds of other projects' CRDs, which have no schema offline; checked by their own tests instead.
NON_CORE = {"ServiceMonitor", "PodMonitor", "HTTPRoute"}
CRD_FILES = {"RayService": "rayservices", "RayJob": "rayjobs", "RayCluster": "rayclusters", "RayCronJob": "raycronjobs"}

try:
    _Loader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _Loader = yaml.SafeLoader


def strict(schema: dict) -> dict:
    """Close every object the CRD lists properties of (unless it preserves unknown fields), and drop
    `required` entries that have a default (the API server fills those in)."""
    schema = copy.deepcopy(schema)

    def walk(node):
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                if not node.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in node:
                    node["additionalProperties"] = False
                if "required" in node:
                    node["required"] = [r for r in node["required"] if "default" not in props.get(r, {})]
                    if not node["required"]:
                        del node["required"]
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    return schema


@functools.cache
def crd_validator(kind: str) -> jsonschema.Draft7Validator:
    path = CRDS_DIR / f"ray.io_{CRD_FILES[kind]}.yaml"
    if not path.exists():
        pytest.fail(f"{path} is missing: set KUBERAY_CRDS_DIR or run `make kuberay-crds`", pytrace=False)
    crd = yaml.load(path.read_text(), Loader=_Loader)
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))


def _custom_resources(all_rendered):
    return [(name, d) for name, r in all_rendered.items() for d in r.docs if d["kind"] in CR_KINDS]


def test_custom_resources_match_kuberay_crds_strictly(all_rendered):
    checked = 0
    for name, doc in _custom_resources(all_rendered):
        assert doc["apiVersion"] == "ray.io/v1"
        errors = sorted(crd_validator(doc["kind"]).iter_errors(doc), key=lambda e: list(e.absolute_path))
        assert not errors, f"{name} {doc['kind']}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:10]
        )
        checked += 1
    assert checked >= 12


def test_strict_crd_check_catches_a_typo(scenarios):
    doc = copy.deepcopy(scenarios["gke-l4"].one("RayService"))
    doc["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["minReplica"] = 1
    errors = list(crd_validator("RayService").iter_errors(doc))
    assert any("minReplica" in e.message for e in errors)
    doc = copy.deepcopy(scenarios["gke-l4"].one("RayService"))
    doc["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "x"
    assert list(crd_validator("RayService").iter_errors(doc))


def test_core_kinds_and_lifted_pods_with_kubernetes_validate(all_rendered, tmp_path):
    tool = need_tool(TOOLS / "kubernetes-validate")
    files, kinds = [], set()
    for name, r in all_rendered.items():
        docs = []
        for d in r.docs:
            if d["kind"] in CR_KINDS:
                docs += lifted_pods(d)
            elif d["kind"] not in NON_CORE:
                docs.append(d)
        kinds |= {d["kind"] for d in docs}
        path = tmp_path / (name.replace("/", "_") + ".yaml")
        path.write_text(yaml.safe_dump_all(docs))
        files.append(path)
    proc = run([tool, "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"Pod", "ConfigMap", "Ingress", "NetworkPolicy", "PersistentVolumeClaim", "Service"} <= kinds


def test_kubernetes_validate_rejects_a_bad_pod(tmp_path):
    tool = need_tool(TOOLS / "kubernetes-validate")
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "x"},
        "spec": {"containers": [{"name": "c", "imagee": "i"}]},
    }
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    proc = run([tool, "--strict", "--quiet", "-k", KUBERNETES_VERSION, tmp_path / "bad.yaml"])
    assert proc.returncode != 0


def test_non_core_kinds_are_well_formed(all_rendered):
    seen = set()
    for r in all_rendered.values():
        for d in r.docs:
            if d["kind"] == "HTTPRoute":
                assert d["apiVersion"] == "gateway.networking.k8s.io/v1"
                assert d["spec"]["parentRefs"] and d["spec"]["rules"][0]["backendRefs"][0]["name"].endswith("-openai")
            elif d["kind"] in ("ServiceMonitor", "PodMonitor"):
                assert d["apiVersion"] == "monitoring.coreos.com/v1"
                eps = d["spec"].get("endpoints") or d["spec"].get("podMetricsEndpoints")
                assert eps[0]["port"] == "metrics"
                assert d["spec"]["selector"]["matchLabels"]
            else:
                continue
            seen.add(d["kind"])
    assert seen == NON_CORE
