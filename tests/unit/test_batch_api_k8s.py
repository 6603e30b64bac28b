"""Kubernetes mode without a cluster: the RayJob the service creates, strictly against the KubeRay 1.7.0 CRD,
and the service's Kubernetes client code (ConfigMap state, RayJob runner) against a fake API server that
speaks the client's types and errors and checks every call against the Role's rules."""

from __future__ import annotations

import copy
import functools
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from kubernetes.client import V1ConfigMap, V1ConfigMapList, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

sys.path.insert(0, str(Path(__file__).parent))
from test_batch_api_helpers import MODEL, line, write_job_output  # noqa: E402

from serve_apps.batches.config import BatchesConfig, KubernetesRunner  # noqa: E402
from serve_apps.batches.runner_k8s import RBAC_RULES, KubeRayRunner, render_rayjob  # noqa: E402
from serve_apps.batches.service import BatchService, owner_of  # noqa: E402
from serve_apps.batches.store import Blobs, ConfigMapState  # noqa: E402
from serve_apps.catalog import ModelEntry  # noqa: E402
from tests.support import fake_batch, llm_entry  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CRDS = Path(os.environ.get("KUBERAY_CRDS_DIR", ROOT.parent / "shared" / "kuberay-crds" / "v1.7.0"))
NS = "llm"
ALICE, BOB = owner_of("key-a"), owner_of("key-b")


def _closed(schema: dict) -> dict:
    """The CRD schema with unknown fields refused, and `required` entries that have defaults dropped."""
    schema = copy.deepcopy(schema)
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        props = node.get("properties")
        if isinstance(props, dict):
            if not node.get("x-kubernetes-preserve-unknown-fields"):
                node.setdefault("additionalProperties", False)
            if "required" in node:
                node["required"] = [r for r in node["required"] if "default" not in props.get(r, {})] or None
                if node["required"] is None:
                    del node["required"]
        stack.extend(node.values())
    return schema


@functools.cache
def rayjob_validator() -> jsonschema.Draft7Validator:
    path = CRDS / "ray.io_rayjobs.yaml"
    if not path.exists():
        pytest.fail(f"{path} is missing (set KUBERAY_CRDS_DIR)", pytrace=False)
    crd = yaml.safe_load(path.read_text())
    (v1,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return jsonschema.Draft7Validator(_closed(v1["schema"]["openAPIV3Schema"]))


def crd_errors(doc: dict) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in rayjob_validator().iter_errors(doc)]


def entry(**engine_kwargs: Any) -> ModelEntry:
    return ModelEntry(**llm_entry(MODEL, "s3://models/llama", accelerator_type="L4", engine_kwargs=engine_kwargs))


@pytest.mark.parametrize(
    ("cfg", "model"),
    [
        ({}, {}),
        (
            {"accelerator_type": "H100", "node_selector_preset": "gfd", "service_account": "sa"},
            {"tensor_parallel_size": 4},
        ),
        ({"storage_pvc": "batch-files", "env": {"A": "1"}, "env_from_secrets": ["s3-creds"]}, {}),
        (
            {
                "image_pull_secrets": ["regcred"],
                "pod_security_context": {"runAsNonRoot": True, "runAsUser": 1000, "fsGroup": 100},
                "security_context": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
            },
            {},
        ),
    ],
)
def test_rendered_rayjob_matches_the_kuberay_crd_strictly(cfg: dict, model: dict) -> None:
    k8s = KubernetesRunner(image="registry/kuberay-llm:1", **cfg)
    doc = render_rayjob(fake_batch(), "llm-batch-0123456789abcdef-spec", NS, k8s, entry(**model), "/data/batches")
    assert crd_errors(doc) == []
    spec = doc["spec"]
    assert spec["entrypoint"].startswith("python -m jobs run --config /etc/kuberay-llm/batch/spec.yaml")
    (group,) = spec["rayClusterSpec"]["workerGroupSpecs"]
    pool = cfg.get("accelerator_type", "L4")
    gpus = str(model.get("tensor_parallel_size", 1))
    assert group["resources"] == {"GPU": gpus, f"accelerator_type:{pool}": "1"}
    assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == gpus
    assert group["template"]["spec"]["nodeSelector"]  # the pool's labels from the accelerator catalog
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "batch-spec", "configMap": {"name": "llm-batch-0123456789abcdef-spec"}} in head["volumes"]
    if "storage_pvc" in cfg:
        assert {"name": "batch-storage", "persistentVolumeClaim": {"claimName": "batch-files"}} in head["volumes"]


def test_the_strict_check_catches_a_typo() -> None:
    doc = render_rayjob(fake_batch(), "cm", NS, KubernetesRunner(), entry(), "s3://b")
    doc["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replica"] = 1
    assert crd_errors(doc)


def test_a_model_without_a_pool_needs_one_configured() -> None:
    with pytest.raises(ValueError, match="accelerator_type"):
        render_rayjob(fake_batch(), "cm", NS, KubernetesRunner(), ModelEntry(**llm_entry()), "s3://b")
    doc = render_rayjob(
        fake_batch(), "cm", NS, KubernetesRunner(accelerator_type="A10G"), ModelEntry(**llm_entry()), "s3://b"
    )
    assert crd_errors(doc) == []


# --- a fake API server --------------------------------------------------------------------


def _allowed(group: str, resource: str, verb: str) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in RBAC_RULES)


class FakeKube:
    """CoreV1Api (config maps) and CustomObjectsApi (rayjobs), as the client behaves: typed objects for core
    kinds, dicts for custom objects, ApiException 404/409 - and every call checked against RBAC_RULES."""

    def __init__(self) -> None:
        self.configmaps: dict[str, dict] = {}
        self.rayjobs: dict[str, dict] = {}
        self.rv = 0
        self.calls: list[tuple[str, str, str]] = []

    def _check(self, group: str, resource: str, verb: str, namespace: str) -> None:
        assert namespace == NS
        assert _allowed(group, resource, verb), f"the Role does not allow {verb} {resource}"
        self.calls.append((group, resource, verb))

    def _cm(self, body: dict) -> V1ConfigMap:
        m = body["metadata"]
        meta = V1ObjectMeta(
            name=m["name"],
            namespace=m["namespace"],
            labels=m.get("labels"),
            annotations=m.get("annotations"),
            resource_version=m["resourceVersion"],
        )
        return V1ConfigMap(metadata=meta, data=dict(body.get("data") or {}))

    # CoreV1Api
    def create_namespaced_config_map(self, namespace: str, body: dict) -> V1ConfigMap:
        self._check("", "configmaps", "create", namespace)
        name = body["metadata"]["name"]
        if name in self.configmaps:
            raise ApiException(status=409)
        assert all(isinstance(v, str) for v in body["data"].values())
        self.rv += 1
        self.configmaps[name] = copy.deepcopy(body) | {
            "metadata": {**body["metadata"], "resourceVersion": str(self.rv)}
        }
        return self._cm(self.configmaps[name])

    def read_namespaced_config_map(self, name: str, namespace: str) -> V1ConfigMap:
        self._check("", "configmaps", "get", namespace)
        if name not in self.configmaps:
            raise ApiException(status=404)
        return self._cm(self.configmaps[name])

    def replace_namespaced_config_map(self, name: str, namespace: str, body: dict) -> V1ConfigMap:
        self._check("", "configmaps", "update", namespace)
        current = self.configmaps.get(name)
        if current is None:
            raise ApiException(status=404)
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise ApiException(status=409)
        self.rv += 1
        self.configmaps[name] = copy.deepcopy(body) | {
            "metadata": {**body["metadata"], "resourceVersion": str(self.rv)}
        }
        return self._cm(self.configmaps[name])

    def list_namespaced_config_map(self, namespace: str, label_selector: str = "") -> V1ConfigMapList:
        self._check("", "configmaps", "list", namespace)
        want = dict(term.split("=", 1) for term in label_selector.split(",") if term)
        items = [
            self._cm(cm)
            for cm in self.configmaps.values()
            if all((cm["metadata"].get("labels") or {}).get(k) == v for k, v in want.items())
        ]
        return V1ConfigMapList(items=items)

    def delete_namespaced_config_map(self, name: str, namespace: str) -> None:
        self._check("", "configmaps", "delete", namespace)
        if self.configmaps.pop(name, None) is None:
            raise ApiException(status=404)

    # CustomObjectsApi
    def create_namespaced_custom_object(self, group, version, namespace, plural, body) -> dict:
        self._check(group, plural, "create", namespace)
        assert (group, version, plural) == ("ray.io", "v1", "rayjobs")
        assert crd_errors(body) == []
        if body["metadata"]["name"] in self.rayjobs:
            raise ApiException(status=409)
        self.rayjobs[body["metadata"]["name"]] = copy.deepcopy(body)
        return body

    def get_namespaced_custom_object(self, group, version, namespace, plural, name) -> dict:
        self._check(group, plural, "get", namespace)
        if name not in self.rayjobs:
            raise ApiException(status=404)
        return copy.deepcopy(self.rayjobs[name])

    def delete_namespaced_custom_object(self, group, version, namespace, plural, name, propagation_policy=None):
        self._check(group, plural, "delete", namespace)
        if self.rayjobs.pop(name, None) is None:
            raise ApiException(status=404)


def k8s_service(tmp_path: Path, kube: FakeKube) -> BatchService:
    cfg = BatchesConfig(
        enabled=True,
        runner="kubernetes",
        storage_root=str(tmp_path / "files"),
        kubernetes={"namespace": NS, "name_prefix": "llm", "storage_pvc": "batch-files"},
    )
    blobs = Blobs(cfg.storage_root)
    state = ConfigMapState(kube, NS, "llm")
    runner = KubeRayRunner(cfg.kubernetes, blobs.root, kube, kube)
    return BatchService(cfg, {MODEL: entry()}, state, blobs, runner)


def test_service_on_kubernetes_end_to_end(tmp_path: Path) -> None:
    kube = FakeKube()
    svc = k8s_service(tmp_path, kube)
    fid = svc.create_file(ALICE, "in.jsonl", "batch", io.BytesIO((line("a") + "\n" + line("b")).encode()))["id"]
    bid = svc.create_batch(
        ALICE, {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    )["id"]
    # every record is a labelled ConfigMap; listing by owner label
    assert svc.list_batches(BOB)["data"] == [] and len(svc.list_batches(ALICE)["data"]) == 1
    b = svc.reconcile(bid)
    assert b.status == "in_progress"
    (job,) = kube.rayjobs.values()
    assert job["metadata"]["name"] == b.run_name and job["metadata"]["namespace"] == NS
    spec = yaml.safe_load(kube.configmaps[f"{b.run_name}-spec"]["data"]["spec.yaml"])
    assert spec["engine"]["kind"] == "vllm" and spec["engine"]["accelerator_type"] == "L4"
    assert spec["model"] == {"source": "s3://models/llama", "served_name": MODEL}
    # a second replica (another service over the same API) sees the same batch, and does not resubmit
    svc2 = k8s_service(tmp_path, kube)
    kube.rayjobs[b.run_name]["status"] = {"jobStatus": "RUNNING", "jobDeploymentStatus": "Running"}
    assert svc2.reconcile(bid).status == "in_progress" and len(kube.rayjobs) == 1
    write_job_output(b.output_path, ["a", "b"], [])
    kube.rayjobs[b.run_name]["status"] = {"jobStatus": "SUCCEEDED", "jobDeploymentStatus": "Complete"}
    done = svc2.reconcile(bid)
    assert done.status == "completed" and done.request_counts.completed == 2
    assert svc.get_batch(ALICE, bid)["output_file_id"] == done.output_file_id
    assert f"{b.run_name}-spec" not in kube.configmaps  # cleaned up
    assert ("ray.io", "rayjobs", "create") in kube.calls


def test_cancel_on_kubernetes_deletes_the_rayjob_and_keeps_partial_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jobs.openai_files

    assembled: list[str] = []
    # The pods are gone without the job's own SIGTERM handling: the service assembles what was written.
    monkeypatch.setattr(jobs.openai_files, "assemble", lambda root: assembled.append(root))
    kube = FakeKube()
    svc = k8s_service(tmp_path, kube)
    fid = svc.create_file(ALICE, "in.jsonl", "batch", io.BytesIO("\n".join(line(f"r{i}") for i in range(3)).encode()))[
        "id"
    ]
    bid = svc.create_batch(
        ALICE, {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    )["id"]
    b = svc.reconcile(bid)
    kube.rayjobs[b.run_name]["status"] = {"jobStatus": "RUNNING"}
    write_job_output(b.output_path, ["r1"], [], success=False)  # what the job wrote before the cancel
    svc.cancel_batch(ALICE, bid)
    done = svc.reconcile(bid)  # RayJob deleted, then gone: the service assembles the partial output
    assert kube.rayjobs == {}
    assert done.status == "cancelled" and done.request_counts.completed == 1 and done.output_file_id
    assert assembled == [b.output_path]


def test_configmap_state_rejects_a_stale_update(tmp_path: Path) -> None:
    from serve_apps.batches.store import Conflict

    kube = FakeKube()
    state = ConfigMapState(kube, NS, "llm")
    state.create("batch", {"id": "batch_1", "owner": ALICE, "n": 0})
    record, version = state.get("batch", "batch_1")
    state.update("batch", {**record, "n": 1}, version)
    with pytest.raises(Conflict):
        state.update("batch", {**record, "n": 2}, version)
    assert state.get("file", "batch_1") is None  # kinds do not mix
    cm = kube.configmaps["llm-batch-1"]
    assert cm["metadata"]["labels"]["kuberay-llm/owner"] == ALICE and json.loads(cm["data"]["record.json"])["n"] == 1
