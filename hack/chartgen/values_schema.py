"""``values.schema.json``: closed, with the job spec's and the model catalog's own JSON schemas inside."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

from hack.chartgen.chart_files import accelerator_names
from hack.chartgen.values_docs import values_docs
from hack.chartgen.values_model import ChartValues


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


def _each_dict(node: Any) -> Iterator[dict[str, Any]]:
    """Every mapping in a JSON schema, outermost first; one may be changed before its children are visited."""
    if isinstance(node, dict):
        yield node
        for v in list(node.values()):
            yield from _each_dict(v)
    elif isinstance(node, list):
        for v in node:
            yield from _each_dict(v)


def _restrict_accelerators(schema: dict[str, Any], names: list[str]) -> None:
    for node in _each_dict(schema):
        props = node.get("properties")
        if isinstance(props, dict) and "accelerator_type" in props:
            old = props["accelerator_type"]
            props["accelerator_type"] = {
                "anyOf": [{"type": "string", "enum": names}, {"type": "null"}],
                "default": old.get("default"),
                "description": old.get("description", "") + " Must be a type of the accelerator catalog.",
            }


def _prefer_models(schema: dict[str, Any]) -> None:
    """Ray types some fields ``Union[dict, Model]`` (``model_loading_config``, ``lora_config``): keep the
    model's closed schema, since a plain mapping alternative would let any key through."""
    for node in _each_dict(schema):
        node.pop("discriminator", None)  # OpenAPI's, with refs into the dropped $defs; oneOf says the same
        alternatives = node.get("anyOf")
        if isinstance(alternatives, list) and any("properties" in a for a in alternatives):
            node["anyOf"] = [a for a in alternatives if a != {"additionalProperties": True, "type": "object"}]


def llm_config_schema() -> dict[str, Any]:
    """A catalog entry's schema: Ray Serve LLM's own ``LLMConfig`` (the installed Ray's), every field."""
    import warnings

    from ray.serve.llm import LLMConfig

    from serve_apps.catalog import ModelEntry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # callback_config's default is a class, which JSON can't hold
        s = _inline_refs(LLMConfig.model_json_schema())
    _prefer_models(s)
    s["description"] = " ".join(ModelEntry.__doc__.split())
    return s


def model_catalog_schema() -> dict[str, Any]:
    from serve_apps.catalog import ModelCatalog

    s = _inline_refs(ModelCatalog.model_json_schema())
    s["properties"]["models"]["items"] = llm_config_schema()
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


def _drop_keyword(schema: dict[str, Any], keyword: str) -> None:
    """Remove a JSON-schema keyword (``required``, ``default``) from every node."""
    for node in _each_dict(schema):
        node.pop(keyword, None)


def batch_job_schema() -> dict[str, Any]:
    """``JobSpec``'s schema with every field optional (``batches.job`` is merged over the service's spec),
    without the fields the Batch API sets for each batch."""
    s = job_spec_schema()
    _drop_keyword(s, "required")
    props = s["properties"]
    for key in BATCH_JOB_OWNED:
        props.pop(key)
    props["output"]["properties"].pop("path")
    engine = props["engine"]["properties"]
    for key in BATCH_ENGINE_OWNED:
        engine.pop(key)
    engine["engine_kwargs"]["propertyNames"] = {"not": {"enum": list(BATCH_ENGINE_KWARGS_OWNED)}}
    return s


def _base_schema(names: list[str]) -> dict[str, Any]:
    """``ChartValues``' schema, with what the catalogs decide filled in."""
    from llmkit.models import builtin_names

    schema = _inline_refs(ChartValues.model_json_schema(by_alias=True))
    _drop_keyword(schema, "default")  # defaults live in values.yaml; None only marks a field optional
    props = schema["properties"]
    props["global"]["description"] = "Helm's global values (passed to the operator subchart)."
    props["image"]["properties"]["bakedModels"]["items"] = {"enum": builtin_names()}
    props["accelerators"]["properties"]["pools"]["propertyNames"] = {"enum": names}
    serving = props["serving"]["properties"]
    serving["catalog"] = model_catalog_schema()
    serving["workerGroups"]["propertyNames"] = {"enum": [*names, "cpu"]}
    batch_api = props["batchApi"]["properties"]
    batch_api["acceleratorType"] = {"enum": ["", *names]}
    batch_api["job"] = batch_job_schema()
    props["batchJobs"]["propertyNames"] = {"pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 30}
    props["batchJobs"]["additionalProperties"]["properties"]["spec"] = job_spec_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


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
