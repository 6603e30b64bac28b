"""``values.schema.json``: closed, with the job spec's and the model catalog's own JSON schemas inside."""

from __future__ import annotations

import copy
import json
from typing import Any

from hack.chartgen.chart_files import accelerator_names
from hack.chartgen.values_docs import values_docs


def _inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    defs = schema.get("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                name = node["$ref"].split("/")[-1]
                merged = {**walk(copy.deepcopy(defs[name])), **{k: walk(v) for k, v in node.items() if k != "$ref"}}
                return merged
            return {k: walk(v) for k, v in node.items() if k not in ("$defs", "title")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(schema)


def _restrict_accelerators(node: Any, names: list[str]) -> None:
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and "accelerator_type" in props:
            old = props["accelerator_type"]
            props["accelerator_type"] = {
                "anyOf": [{"type": "string", "enum": names}, {"type": "null"}],
                "default": old.get("default"),
                "description": old.get("description", "") + " Must be a type of the accelerator catalog.",
            }
        for v in node.values():
            _restrict_accelerators(v, names)
    elif isinstance(node, list):
        for v in node:
            _restrict_accelerators(v, names)


def model_catalog_schema() -> dict[str, Any]:
    from serve_apps.catalog import ModelCatalog

    s = _inline_refs(ModelCatalog.model_json_schema())
    _restrict_accelerators(s, accelerator_names())
    return s


def job_spec_schema() -> dict[str, Any]:
    from jobs.spec import JobSpec

    s = _inline_refs(JobSpec.model_json_schema())
    _restrict_accelerators(s, accelerator_names())
    return s


# What the Batch API's service sets in each batch's job spec (serve_apps.batches.service.job_spec and the
# Kubernetes runner's engine, which sizes the one GPU worker of the batch's RayJob): `batchApi.job` may not.
BATCH_JOB_OWNED = ("name", "workload", "input", "model")
BATCH_ENGINE_OWNED = ("kind", "device", "accelerator_type", "concurrency", "http")
BATCH_ENGINE_KWARGS_OWNED = ("tensor_parallel_size", "pipeline_parallel_size")


def _drop_required(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("required", None)
        for v in node.values():
            _drop_required(v)
    elif isinstance(node, list):
        for v in node:
            _drop_required(v)


def batch_job_schema() -> dict[str, Any]:
    """``JobSpec``'s schema with every field optional (``batches.job`` is merged over the service's spec),
    without the fields the Batch API sets for each batch."""
    s = job_spec_schema()
    _drop_required(s)
    props = s["properties"]
    for key in BATCH_JOB_OWNED:
        props.pop(key)
    props["output"]["properties"].pop("path")
    engine = props["engine"]["properties"]
    for key in BATCH_ENGINE_OWNED:
        engine.pop(key)
    engine["engine_kwargs"]["propertyNames"] = {"not": {"enum": list(BATCH_ENGINE_KWARGS_OWNED)}}
    return s


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": props, **extra}


_STR = {"type": "string"}
_BOOL = {"type": "boolean"}
_QTY = {"anyOf": [{"type": "string", "pattern": r"^[0-9.]+[a-zA-Z]*$"}, {"type": "number", "minimum": 0}]}
_OPEN = {"type": "object"}
_LIST = {"type": "array"}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
# A PersistentVolumeClaim the chart mounts, and creates unless an existing one is named.
_CLAIM = {
    "enabled": _BOOL,
    "existingClaim": _STR,
    "size": _QTY,
    "storageClassName": _STR,
    "accessModes": {"type": "array", "items": {"type": "string"}},
    "mountPath": {"type": "string", "pattern": "^/"},
}


def _int(minimum: int | None = None) -> dict[str, Any]:
    return {"type": "integer"} | ({"minimum": minimum} if minimum is not None else {})


def _base_schema(names: list[str]) -> dict[str, Any]:
    from llmkit.models import builtin_names

    pool = _obj(
        {
            "gpusPerNode": _int(1),
            "cpu": _QTY,
            "memory": _QTY,
            "shmSize": _QTY,
            "nodeSelector": _LABELS,
            "tolerations": _LIST,
        }
    )
    workers = _obj({"replicas": _int(0), "minReplicas": _int(0), "maxReplicas": _int(1)})
    job_settings = {
        "activeDeadlineSeconds": _int(1),
        "backoffLimit": _int(0),
        "ttlSecondsAfterFinished": _int(0),
        "shutdownAfterJobFinishes": _BOOL,
        "submitterBackoffLimit": _int(0),
    }
    job = _obj(
        {
            "spec": job_spec_schema(),
            "overrides": {"type": "array", "items": {"type": "string", "pattern": r"^[A-Za-z0-9_][A-Za-z0-9_.]*=.*$"}},
            "workers": workers,
            "suspend": _BOOL,
            **job_settings,
        },
        required=["spec"],
    )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "global": {"type": "object", "description": "Helm's global values (passed to the operator subchart)."},
            "nameOverride": _STR,
            "fullnameOverride": _STR,
            "commonLabels": _LABELS,
            "kuberay-operator": {"type": "object", "properties": {"enabled": _BOOL}, "required": ["enabled"]},
            "image": _obj(
                {
                    # Empty passes the schema so that the template's `required` says what to do.
                    "repository": {"type": "string", "pattern": r"^([a-z0-9][^\s:@]*)?$"},
                    "tag": {"type": "string", "not": {"const": "latest"}},
                    "digest": {"type": "string", "pattern": r"^(sha256:[a-f0-9]{64})?$"},
                    "pullPolicy": {"enum": ["IfNotPresent", "Always", "Never"]},
                    "bakedModels": {"type": "array", "uniqueItems": True, "items": {"enum": builtin_names()}},
                },
                required=["repository", "tag"],
            ),
            "imagePullSecrets": {"type": "array", "items": {"type": "string"}},
            "rayVersion": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+\.[0-9]+$"},
            "accelerators": _obj(
                {
                    "nodeSelectorPreset": {"enum": ["gke", "gfd", "karpenter", "eks"]},
                    "extraTolerations": _LIST,
                    "pools": {"type": "object", "propertyNames": {"enum": names}, "additionalProperties": pool},
                    "defaults": _obj({"cpu": _QTY, "memory": _QTY, "shmSize": _QTY}),
                }
            ),
            "cpuPool": _obj(
                {"cpu": _QTY, "memory": _QTY, "shmSize": _QTY, "nodeSelector": _LABELS, "tolerations": _LIST}
            ),
            "head": _obj(
                {
                    "resources": _OPEN,
                    "rayStartParams": _LABELS,
                    "nodeSelector": _LABELS,
                    "tolerations": _LIST,
                    "shmSize": _QTY,
                }
            ),
            "autoscaler": _obj(
                {
                    "enabled": _BOOL,
                    "upscalingMode": {"enum": ["Default", "Conservative", "Aggressive"]},
                    "idleTimeoutSeconds": _int(0),
                    "resources": _OPEN,
                }
            ),
            "hfToken": _obj({"existingSecret": _STR, "key": {"type": "string", "minLength": 1}}),
            "modelCache": _obj({**_CLAIM, "compileCache": _BOOL}),
            "results": _obj(_CLAIM),
            "podSecurityContext": _OPEN,
            "securityContext": _OPEN,
            "extraEnv": _LIST,
            "extraVolumes": _LIST,
            "extraVolumeMounts": _LIST,
            "podAnnotations": _LABELS,
            "podLabels": _LABELS,
            "networkPolicy": _obj({"enabled": _BOOL, "extraIngress": _LIST}),
            "metrics": _obj(
                {
                    "serviceMonitor": _obj({"enabled": _BOOL, "interval": _STR, "labels": _LABELS}),
                    "podMonitor": _obj({"enabled": _BOOL, "interval": _STR, "labels": _LABELS}),
                }
            ),
            "serving": _obj(
                {
                    "enabled": _BOOL,
                    "catalog": model_catalog_schema(),
                    "appName": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+$"},
                    "routePrefix": {"type": "string", "pattern": "^/"},
                    "logEncoding": {"enum": ["JSON", "TEXT"]},
                    "haproxy": _obj({"enabled": _BOOL, "maxConnections": _int(1)}),
                    "directStreaming": _BOOL,
                    "workerGroups": {
                        "type": "object",
                        "propertyNames": {"enum": [*names, "cpu"]},
                        "additionalProperties": _obj(
                            {"replicas": _int(0), "minReplicas": _int(0), "maxReplicas": _int(1)}
                        ),
                    },
                    "upgradeStrategy": {"enum": ["NewCluster", "NewClusterWithIncrementalUpgrade", "None"]},
                    "clusterUpgradeOptions": _OPEN,
                    "deploymentUnhealthySecondThreshold": _int(1),
                    "serviceUnhealthySecondThreshold": _int(1),
                    "service": _obj(
                        {
                            "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "annotations": _LABELS,
                        }
                    ),
                    "ingress": _obj(
                        {"enabled": _BOOL, "className": _STR, "annotations": _LABELS, "host": _STR, "tls": _LIST}
                    ),
                    "httpRoute": _obj(
                        {"enabled": _BOOL, "parentRefs": _LIST, "hostnames": {"type": "array", "items": _STR}}
                    ),
                    "apiKeys": _obj({"existingSecret": _STR, "key": {"type": "string", "minLength": 1}}),
                }
            ),
            "batchApi": _obj(
                {
                    "enabled": _BOOL,
                    "storage": _obj(
                        {
                            "root": {"type": "string", "pattern": r"^((s3|gs)://[^/\s]+(/\S*)?)?$"},
                            "pvc": _obj(
                                {
                                    "create": _BOOL,
                                    "existingClaim": _STR,
                                    "size": _QTY,
                                    "storageClassName": _STR,
                                    "accessModes": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                    "mountPath": {"type": "string", "pattern": "^/[^:]*$"},
                                }
                            ),
                        }
                    ),
                    "envFromSecrets": {
                        "type": "array",
                        "uniqueItems": True,
                        "items": {"type": "string", "minLength": 1},
                    },
                    "maxRequestsPerFile": _int(1),
                    "maxFileBytes": _int(1),
                    "pollIntervalSeconds": {"type": "number", "exclusiveMinimum": 0},
                    "retryDelaySeconds": {"type": "number", "minimum": 0},
                    "acceleratorType": {"enum": ["", *names]},
                    "head": _obj({"cpu": _QTY, "memory": _QTY}),
                    "worker": _obj({"cpu": _QTY, "memory": _QTY}),
                    "ttlSecondsAfterFinished": _int(0),
                    "job": batch_job_schema(),
                }
            ),
            "jobDefaults": _obj(job_settings),
            "batchJobs": {
                "type": "object",
                "propertyNames": {"pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 30},
                "additionalProperties": job,
            },
        },
    }


def values_schema() -> dict[str, Any]:
    schema = _base_schema(accelerator_names())
    docs, _ = values_docs()
    for d in docs:
        node = schema
        for part in d.path.split("."):
            node = node.get("properties", {}).get(part)
            if node is None:
                raise KeyError(f"values.yaml key {d.path} is missing from the schema")
        if "description" not in node or d.path in ("serving.catalog", "batchApi.job"):
            node["description"] = d.description
    return schema


def schema_json() -> str:
    return json.dumps(values_schema(), indent=2) + "\n"
