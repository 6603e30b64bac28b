"""Everything generated from the catalogs and the chart is up to date, and the generators are right."""

import json

import pytest
import yaml
from chart_helpers import CHART, ROOT

from hack.chartgen.chart_lock import lock_digest
from hack.chartgen.generate import generated_files
from hack.chartgen.values_docs import values_docs
from llmkit.accelerators import load_catalog

pytestmark = pytest.mark.charts


@pytest.fixture(scope="module")
def generated(helm):
    return generated_files(include_manifests=True)


def test_no_drift(generated):
    stale = [str(p.relative_to(ROOT)) for p, text in generated.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"out of date, run `make generate`: {stale}"


def test_no_stray_manifests(generated):
    committed = set((ROOT / "manifests").glob("*.yaml"))
    assert committed == {p for p in generated if p.parent == ROOT / "manifests"}


def test_chart_catalog_is_the_llmkit_catalog():
    chart_copy = yaml.safe_load((CHART / "files" / "accelerators.yaml").read_text())
    assert chart_copy == load_catalog().model_dump(mode="json", exclude_none=True)


def test_every_value_is_documented():
    docs, missing = values_docs()
    assert not missing, f"values without a `# --` description: {missing}"
    assert len(docs) > 60
    assert all(d.description for d in docs)


def test_readme_lists_every_documented_value():
    text = (CHART / "README.md").read_text()
    for d in values_docs()[0]:
        assert f"| {d.path} |" in text


def _objects(schema, path=""):
    if isinstance(schema, dict):
        if schema.get("type") == "object" or "properties" in schema:
            yield path, schema
        for key, sub in schema.get("properties", {}).items():
            yield from _objects(sub, f"{path}.{key}".lstrip("."))
        for key in ("additionalProperties", "items"):
            if isinstance(schema.get(key), dict):
                yield from _objects(schema[key], f"{path}.*")
        for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for sub in schema.get(key, []):
                yield from _objects(sub, path)


# Objects that stay open on purpose: pass-through Kubernetes blocks and free-form maps of the catalogs.
OPEN_ON_PURPOSE = {
    "commonLabels",
    "kuberay-operator",
    "head.resources",
    "head.rayStartParams",
    "head.nodeSelector",
    "head.tolerations",
    "autoscaler.resources",
    "podSecurityContext",
    "securityContext",
    "extraEnv",
    "extraVolumes",
    "extraVolumeMounts",
    "podAnnotations",
    "podLabels",
    "imagePullSecrets",
    "cpuPool.nodeSelector",
    "cpuPool.tolerations",
    "accelerators.extraTolerations",
    "networkPolicy.extraIngress",
    "metrics.serviceMonitor.labels",
    "metrics.podMonitor.labels",
    "serving.service.annotations",
    "serving.ingress.annotations",
    "serving.ingress.tls",
    "serving.httpRoute.parentRefs",
    "serving.clusterUpgradeOptions",
    "modelCache.accessModes",
    "results.accessModes",
    "batchApi.storage.pvc.accessModes",
    "global",
    # A catalog entry's mappings that Ray's LLMConfig itself types as open (it validates some of them later,
    # deployment_config with Serve's own model) or leaves open (accelerator_config's kinds).
    "serving.catalog.models.*.engine_kwargs",
    "serving.catalog.models.*.runtime_env",
    "serving.catalog.models.*.accelerator_config",
    "serving.catalog.models.*.placement_group_config",
    "serving.catalog.models.*.deployment_config",
    "serving.catalog.models.*.experimental_configs",
    "serving.catalog.models.*.callback_config.callback_kwargs",
    "batchJobs.*.spec.engine.engine_kwargs",
    "batchJobs.*.spec.workload.options",
    "batchJobs.*.spec.sampling",
    "batchApi.job.engine.engine_kwargs",
    "batchApi.job.sampling",
}


def test_schema_is_closed():
    schema = json.loads((CHART / "values.schema.json").read_text())
    open_objects = []
    for path, node in _objects(schema):
        if path in OPEN_ON_PURPOSE or "additionalProperties" in node and node["additionalProperties"] is not True:
            continue
        if "properties" in node or node.get("additionalProperties") is True:
            open_objects.append(path)
    assert not open_objects, f"open objects in values.schema.json: {open_objects}"
    assert schema["additionalProperties"] is False


def test_schema_embeds_the_pydantic_models():
    schema = json.loads((CHART / "values.schema.json").read_text())
    catalog = schema["properties"]["serving"]["properties"]["catalog"]
    model = catalog["properties"]["models"]["items"]
    from ray.serve.llm import LLMConfig

    # A catalog entry is an LLMConfig: every field of Ray's model, and only those.
    assert set(model["properties"]) == set(LLMConfig.model_fields)
    assert model["additionalProperties"] is False
    spec = schema["properties"]["batchJobs"]["additionalProperties"]["properties"]["spec"]
    assert set(spec["properties"]) >= {"model", "engine", "workload", "sampling", "input", "output"}
    names = load_catalog().names()
    assert model["properties"]["accelerator_type"]["anyOf"][0]["enum"] == names
    assert spec["properties"]["engine"]["properties"]["accelerator_type"]["anyOf"][0]["enum"] == names


def test_chart_lock_digest_matches_helm():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    lock = yaml.safe_load((CHART / "Chart.lock").read_text())
    assert lock["dependencies"] == [
        {"name": "kuberay-operator", "repository": "https://ray-project.github.io/kuberay-helm/", "version": "1.7.0"}
    ]
    assert lock["digest"] == lock_digest(chart["dependencies"], lock["dependencies"])


def test_lock_digest_is_helms_hashreq():
    # helm's resolver.HashReq over a dependency with only name/version/repository (as `helm dependency update`
    # writes for a chart with one unconditioned dependency): json.Marshal([req, lock]) then sha256.
    dep = {"name": "a", "version": "1.0.0", "repository": "https://example.com/charts/"}
    import hashlib

    expected = hashlib.sha256(
        b'[[{"name":"a","version":"1.0.0","repository":"https://example.com/charts/"}],'
        b'[{"name":"a","version":"1.0.0","repository":"https://example.com/charts/"}]]'
    ).hexdigest()
    assert lock_digest([dep], [dep]) == "sha256:" + expected


def test_kind_config_labels_fake_pools():
    cfg = yaml.safe_load((ROOT / "manifests" / "kind-config.yaml").read_text())
    assert cfg["kind"] == "Cluster"
    labels = [n.get("labels", {}) for n in cfg["nodes"]]
    catalog = load_catalog()
    for t in ("L4", "H100"):
        assert any(all(lbl.get(k) == v for k, v in catalog.get(t).nodeSelectors["gfd"].items()) for lbl in labels), t


def test_each_value_carries_its_own_description():
    """The schema's description of a documented value is that value's `# --` comment. (Schema nodes built
    from shared dicts once took the first description given to any of them: every bool read "Install the
    upstream KubeRay operator chart".)"""
    schema = json.loads((CHART / "values.schema.json").read_text())
    wrong = []
    for d in values_docs()[0]:
        node = schema
        for part in d.path.split("."):
            node = node["properties"][part]
        if node.get("description") != d.description:
            wrong.append(d.path)
    assert not wrong
