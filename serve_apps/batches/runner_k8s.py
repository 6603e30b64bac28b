"""Kubernetes mode: each batch is a KubeRay RayJob, created in-cluster with the kubernetes client.

The RayJob runs ``python -m jobs run`` with vLLM inside the job, on a GPU worker group of the
model's accelerator pool (or ``kubernetes.accelerator_type``): the pool's node labels and
tolerations from the accelerator catalog, ``nvidia.com/gpu`` limits and the Ray resource
``accelerator_type:<TYPE>``. The job spec travels in a ConfigMap ``<run>-spec`` mounted on the head.
Cancel deletes the RayJob; the service then assembles the partial output from what the job wrote.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from llmkit.accelerators import GPU_RESOURCE, load_catalog, ray_resource
from serve_apps.batches.config import KubernetesRunner
from serve_apps.batches.models import Batch
from serve_apps.batches.runner import BatchRunner, RunState
from serve_apps.batches.store import LABEL_PART_OF
from serve_apps.catalog import ModelEntry

logger = logging.getLogger(__name__)

GROUP, VERSION, PLURAL = "ray.io", "v1", "rayjobs"
SPEC_DIR = "/etc/kuberay-llm/batch"
SA_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
LABEL_BATCH = "kuberay-llm/batch-id"

# What the service's ServiceAccount needs in its namespace (the chart's Role renders these rules):
# RayJobs to run batches, ConfigMaps for batch and file records and for each job's spec.
RBAC_RULES: list[dict[str, list[str]]] = [
    {"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list", "watch", "delete"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "get", "list", "update", "delete"]},
]


def current_namespace(configured: str | None) -> str:
    if configured:
        return configured
    try:
        return SA_NAMESPACE_FILE.read_text().strip()
    except OSError:
        return "default"


def kube_clients() -> tuple[Any, Any]:
    """(CoreV1Api, CustomObjectsApi) from the pod's service account (or the local kubeconfig)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.CoreV1Api(), client.CustomObjectsApi()


def pool_of(cfg: KubernetesRunner, entry: ModelEntry) -> str:
    pool = cfg.accelerator_type or entry.accelerator
    if not pool:
        raise ValueError(
            f"model {entry.model_id!r} has no accelerator_type: set batches.kubernetes.accelerator_type "
            "to pick the GPU pool of its batch jobs"
        )
    return pool


def _container(name: str, cfg: KubernetesRunner, resources: dict[str, Any], mounts: list[dict[str, Any]]):
    env = [{"name": k, "value": v} for k, v in sorted(cfg.env.items())]
    container: dict[str, Any] = {
        "name": name,
        "image": cfg.image,
        "imagePullPolicy": cfg.image_pull_policy,
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "volumeMounts": mounts,
    }
    if env:
        container["env"] = env
    if cfg.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in cfg.env_from_secrets]
    if cfg.security_context:
        container["securityContext"] = dict(cfg.security_context)
    return container


def render_rayjob(
    batch: Batch, spec_configmap: str, namespace: str, cfg: KubernetesRunner, entry: ModelEntry, storage_root: str
) -> dict[str, Any]:
    """The RayJob (ray.io/v1) for one batch."""
    pool = pool_of(cfg, entry)
    acc = load_catalog().get(pool)
    gpus = entry.gpus_per_replica
    labels = {
        **cfg.extra_labels,
        LABEL_PART_OF: "kuberay-llm",
        "app.kubernetes.io/component": "batch-api",
        LABEL_BATCH: batch.id.replace("_", "-")[:63],
    }
    spec_volume = {"name": "batch-spec", "configMap": {"name": spec_configmap}}
    spec_mount = {"name": "batch-spec", "mountPath": SPEC_DIR, "readOnly": True}
    volumes: list[dict[str, Any]] = [{"name": "shm", "emptyDir": {"medium": "Memory"}}]
    mounts: list[dict[str, Any]] = [{"name": "shm", "mountPath": "/dev/shm"}]
    if cfg.storage_pvc and "://" not in storage_root:
        volumes.append({"name": "batch-storage", "persistentVolumeClaim": {"claimName": cfg.storage_pvc}})
        mounts.append({"name": "batch-storage", "mountPath": storage_root})
    head_pod: dict[str, Any] = {
        "containers": [
            _container("ray-head", cfg, {"cpu": cfg.head.cpu, "memory": cfg.head.memory}, [*mounts, spec_mount])
        ],
        "volumes": [*volumes, spec_volume],
    }
    worker_res = {"cpu": cfg.worker.cpu, "memory": cfg.worker.memory, GPU_RESOURCE: str(gpus)}
    worker_pod: dict[str, Any] = {
        "containers": [_container("ray-worker", cfg, worker_res, mounts)],
        "volumes": volumes,
        "nodeSelector": dict(acc.nodeSelectors.get(cfg.node_selector_preset, {})),
        "tolerations": [t.model_dump(exclude_none=True) for t in acc.tolerations],
    }
    for pod in (head_pod, worker_pod):
        if cfg.service_account:
            pod["serviceAccountName"] = cfg.service_account
        if cfg.pod_security_context:
            pod["securityContext"] = dict(cfg.pod_security_context)
        if cfg.image_pull_secrets:
            pod["imagePullSecrets"] = [{"name": n} for n in cfg.image_pull_secrets]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "RayJob",
        "metadata": {"name": batch.run_name, "namespace": namespace, "labels": labels},
        "spec": {
            "entrypoint": f"python -m jobs run --config {SPEC_DIR}/spec.yaml --show 0",
            "submissionMode": "K8sJobMode",
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": cfg.ttl_seconds_after_finished,
            "activeDeadlineSeconds": cfg.active_deadline_seconds,
            "backoffLimit": 0,
            "rayClusterSpec": {
                "rayVersion": cfg.ray_version,
                "headGroupSpec": {
                    "rayStartParams": {"num-cpus": "0", "num-gpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": {"metadata": {"labels": dict(labels)}, "spec": head_pod},
                },
                "workerGroupSpecs": [
                    {
                        "groupName": f"gpu-{pool.lower()}"[:63],
                        "replicas": 1,
                        "minReplicas": 1,
                        "maxReplicas": 1,
                        # KubeRay's first-class Ray resources (the operator turns them into ray start flags).
                        "rayStartParams": {},
                        "resources": {"GPU": str(gpus), ray_resource(pool): "1"},
                        "template": {"metadata": {"labels": dict(labels)}, "spec": worker_pod},
                    }
                ],
            },
        },
    }


def render_spec_configmap(name: str, namespace: str, spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "data": {"spec.yaml": yaml.safe_dump(spec, sort_keys=False)},
    }


class KubeRayRunner(BatchRunner):
    """Creates, reads and deletes RayJobs (and their spec ConfigMaps) in one namespace."""

    kind = "kubernetes"

    def __init__(self, cfg: KubernetesRunner, storage_root: str, core_api: Any = None, custom_api: Any = None):
        self.cfg = cfg
        self.storage_root = storage_root
        self.namespace = current_namespace(cfg.namespace)
        if core_api is None or custom_api is None:
            core_api, custom_api = kube_clients()
        self.core = core_api
        self.custom = custom_api

    def engine(self, model_id: str, entry: ModelEntry) -> dict[str, Any]:
        kwargs = entry.vllm_kwargs
        return {"kind": "vllm", "device": "gpu", "accelerator_type": pool_of(self.cfg, entry), "engine_kwargs": kwargs}

    def spec_configmap_name(self, batch: Batch) -> str:
        return f"{batch.run_name}-spec"[:63]

    def submit(self, batch: Batch, spec: dict[str, Any], entry: ModelEntry) -> None:
        from kubernetes.client.exceptions import ApiException

        labels = {**self.cfg.extra_labels, LABEL_PART_OF: "kuberay-llm", LABEL_BATCH: batch.id.replace("_", "-")}
        cm = render_spec_configmap(self.spec_configmap_name(batch), self.namespace, spec, labels)
        job = render_rayjob(batch, cm["metadata"]["name"], self.namespace, self.cfg, entry, self.storage_root)
        for create in (
            lambda: self.core.create_namespaced_config_map(self.namespace, cm),
            lambda: self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, job),
        ):
            try:
                create()
            except ApiException as e:
                if e.status != 409:
                    raise
        logger.info("batch %s: RayJob %s/%s created", batch.id, self.namespace, batch.run_name)

    def _get(self, batch: Batch) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL, batch.run_name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def status(self, batch: Batch) -> RunState:
        job = self._get(batch)
        if job is None or job.get("metadata", {}).get("deletionTimestamp"):
            return RunState("missing")
        status = job.get("status") or {}
        job_status = status.get("jobStatus") or ""
        deployment = status.get("jobDeploymentStatus") or ""
        message = status.get("message") or ""
        if job_status == "SUCCEEDED":
            return RunState("succeeded", 0, message)
        if job_status == "STOPPED":
            return RunState("stopped", None, message)
        if job_status == "FAILED" or deployment in ("Failed", "ValidationFailed"):
            return RunState("failed", None, message or f"RayJob {deployment or job_status}")
        if job_status == "RUNNING":
            return RunState("running", None, message)
        return RunState("pending", None, message)

    def cancel(self, batch: Batch) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, batch.run_name, propagation_policy="Background"
            )
        except ApiException as e:
            if e.status != 404:
                raise

    def cleanup(self, batch: Batch) -> None:
        """The batch is final, or about to run again: its RayJob (whose cluster KubeRay has shut down)
        and spec ConfigMap go; the outputs are in storage."""
        from kubernetes.client.exceptions import ApiException

        self.cancel(batch)
        try:
            self.core.delete_namespaced_config_map(self.spec_configmap_name(batch), self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
