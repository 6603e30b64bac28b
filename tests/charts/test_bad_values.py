"""Bad values fail `helm template` with a message that names the problem."""

import pytest
import yaml
from chart_helpers import CHART

from tests.support import llm_entry

pytestmark = pytest.mark.charts

CPU = CHART / "ci" / "cpu-local-values.yaml"
L4_MODEL = llm_entry("m", "org/m", accelerator_type="L4")


def _fails(render, values=None, files=(), sets=()):
    proc = render(values=values, files=list(files), sets=["kuberay-operator.enabled=false", *sets])
    assert proc.returncode != 0, f"expected helm template to fail, it rendered:\n{proc.stdout[:500]}"
    return proc.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"imagee": {"tag": "x"}}, "additional properties 'imagee' not allowed"),
        ({"image": {"tagg": "x"}}, "additional properties 'tagg' not allowed"),
        (
            {"serving": {"catalog": {"models": [llm_entry("m", sourcee="x")]}}},
            "additional properties 'sourcee' not allowed",
        ),
        (
            {"serving": {"catalog": {"models": [{"model_loading_config": {"model_id": "m", "source": "x"}}]}}},
            "additional properties 'source' not allowed",
        ),
        (
            {"batchJobs": {"a": {"spec": {"output": {"path": "/o"}}, "workerz": {}}}},
            "additional properties 'workerz' not allowed",
        ),
        (
            {"batchJobs": {"a": {"spec": {"output": {"path": "/o"}, "modle": {}}}}},
            "additional properties 'modle' not allowed",
        ),
    ],
)
def test_unknown_key(render, values, message):
    assert message in _fails(render, values)


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (
            {
                "serving": {
                    "catalog": {
                        "models": [{**L4_MODEL, "deployment_config": {"autoscaling_config": {"min_replicas": -1}}}]
                    }
                }
            },
            "min_replicas",
        ),
        (
            {"serving": {"catalog": {"models": [{**L4_MODEL, "deployment_config": {"num_replicas": 0}}]}}},
            "num_replicas",
        ),
        ({"serving": {"workerGroups": {"L4": {"minReplicas": -2}}}}, "minReplicas"),
        (
            {
                "batchJobs": {
                    "a": {"spec": {"output": {"path": "/o"}, "engine": {"device": "cpu"}}, "workers": {"replicas": -1}}
                }
            },
            "replicas",
        ),
        ({"serving": {"workerGroups": {"L4": {"maxReplicas": 0}}}}, "maxReplicas"),
    ],
)
def test_negative_replicas(render, values, where):
    err = _fails(render, values)
    assert where in err and ("minimum" in err or "must be >=" in err), err


def test_num_replicas_auto_needs_a_maximum(render):
    model = {**L4_MODEL, "deployment_config": {"num_replicas": "auto"}}
    err = _fails(render, {"serving": {"catalog": {"models": [model]}}})
    assert "num_replicas auto needs autoscaling_config.max_replicas" in err
    model["deployment_config"]["autoscaling_config"] = {"max_replicas": 3}
    proc = render(values={"serving": {"catalog": {"models": [model]}}}, sets=["kuberay-operator.enabled=false"])
    assert proc.returncode == 0, proc.stderr
    (group,) = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "RayService"][0]["spec"][
        "rayClusterConfig"
    ]["workerGroupSpecs"]
    assert (group["minReplicas"], group["maxReplicas"]) == (1, 3)


def test_min_above_max(render):
    err = _fails(render, {"serving": {"workerGroups": {"L4": {"minReplicas": 5, "maxReplicas": 2}}}})
    assert "minReplicas (5) > maxReplicas (2)" in err


@pytest.mark.parametrize(
    "values",
    [
        {"serving": {"catalog": {"models": [llm_entry(accelerator_type="TPU-v9")]}}},
        {"accelerators": {"pools": {"TPU-v9": {"gpus": 1}}}},
        {"serving": {"workerGroups": {"TPU-v9": {"minReplicas": 1}}}},
        {"batchJobs": {"a": {"spec": {"output": {"path": "/o"}, "engine": {"accelerator_type": "TPU-v9"}}}}},
    ],
)
def test_unknown_accelerator_type_fails_the_schema(render, values):
    err = _fails(render, values)
    assert "TPU-v9" in err or "propertyNames" in err or "must be one of" in err, err
    assert "L4" in err, "the message lists the known types"


def test_unknown_accelerator_type_fails_the_template_without_schema(chart, render, tmp_path):
    # Defence in depth: the template itself names the known types, e.g. for a chart whose schema was dropped.
    import shutil

    from hack.chartgen import helm as chartgen

    copy = tmp_path / "kuberay-llm"
    shutil.copytree(chart, copy)
    (copy / "values.schema.json").unlink()
    proc = chartgen.helm_template(
        copy,
        values={
            "kuberay-operator": {"enabled": False},
            "image": {"repository": "registry.example.com/kuberay-llm"},
            "serving": {"catalog": {"models": [llm_entry("m", "org/m", accelerator_type="TPU-v9")]}},
        },
    )
    assert proc.returncode != 0
    assert 'accelerator type "TPU-v9" is not in the accelerator catalog' in proc.stderr
    assert "known types: A100, A100-80G, A10G, H100, H200, L4, L40S, T4" in proc.stderr


def test_gpu_model_without_accelerator_type(render):
    err = _fails(render, {"serving": {"catalog": {"models": [llm_entry("m", "org/m")], "device": "gpu"}}})
    assert "needs an accelerator_type" in err


def test_job_without_pool(render):
    err = _fails(render, {"batchJobs": {"a": {"spec": {"model": {"source": "org/m"}, "output": {"path": "s3://b/o"}}}}})
    assert "set accelerator_type" in err


def test_secret_value_is_not_a_value(render):
    # There is no value for a token: only the name of an existing Secret.
    err = _fails(render, {"hfToken": {"token": "hf_abc"}})
    assert "additional properties 'token' not allowed" in err


def test_latest_tag_refused(render):
    assert "tag" in _fails(render, {"image": {"tag": "latest"}})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"serving": {"directStreaming": True, "haproxy": {"enabled": False}}}, "needs serving.haproxy.enabled"),
        (
            {
                "serving": {
                    "directStreaming": True,
                    "catalog": {"models": [llm_entry("a", "org/a"), llm_entry("b", "org/b")]},
                }
            },
            "serves exactly one model; serving.catalog.models has 2",
        ),
        (
            {"serving": {"directStreaming": True, "apiKeys": {"existingSecret": "keys"}}},
            "bypasses the router that checks API keys",
        ),
        ({"serving": {"haproxy": {"maxConnections": 0}}}, "maxConnections"),
    ],
)
def test_direct_streaming_and_haproxy_limits(render, values, message):
    assert message in _fails(render, values)


# --------------------------------------------------------------------------- what helm install gives a GPU user


def test_no_image_fails_at_template_time(render):
    """No default image exists in any registry: without one, helm fails before anything reaches the cluster."""
    for values in ({}, {"serving": {"enabled": False}}):
        proc = render(values=values, sets=["kuberay-operator.enabled=false"], image=False)
        assert proc.returncode != 0, proc.stdout[:300]
        assert "image.repository is required: build and push the image" in proc.stderr, proc.stderr
        (line,) = [x for x in proc.stderr.splitlines() if "image.repository" in x]  # one line
        assert "docs/quickstart.md#the-images" in line
    proc = render(values={"image": {"tag": "", "digest": ""}}, sets=["kuberay-operator.enabled=false"])
    assert proc.returncode != 0 and "image.tag (or image.digest) is required" in proc.stderr


def test_default_serving_model_loads_on_a_gpu_pod(scenarios):
    """The chart's defaults (with an image) serve a Hugging Face model, not a builtin the GPU image lacks."""
    cfg = yaml.safe_load(scenarios["default"].one("RayService")["spec"]["serveConfigV2"])
    (model,) = cfg["applications"][0]["args"]["catalog"]["models"]
    source = model["model_loading_config"]["model_source"]
    assert model["accelerator_type"] and "/" in source and not source.startswith("builtin:")


BUILTIN = "builtin:smollm2-135m-instruct"
GPU_JOB = {"engine": {"device": "gpu", "accelerator_type": "L4"}, "output": {"path": "s3://b/o"}}


@pytest.mark.parametrize(
    ("values", "where"),
    [
        (
            {"serving": {"catalog": {"models": [llm_entry("m", BUILTIN, accelerator_type="L4")]}}},
            "serving.catalog.models[0] (m)",
        ),
        # No model_source: as in Ray, the model id is the source, here a builtin one.
        ({"serving": {"catalog": {"models": [llm_entry(BUILTIN, accelerator_type="L4")]}}}, "serving.catalog"),
        ({"serving": {"enabled": False}, "batchJobs": {"a": {"spec": {**GPU_JOB, "model": {"source": BUILTIN}}}}}, "a"),
        ({"serving": {"enabled": False}, "batchJobs": {"a": {"spec": GPU_JOB}}}, "batchJobs.a.spec.model"),
    ],
)
def test_builtin_source_not_in_the_image_fails(render, values, where):
    err = _fails(render, values)
    assert f'source "{BUILTIN}" is not baked into the image (image.bakedModels: [])' in err, err
    assert where in err


def test_builtin_source_baked_into_the_image_renders(render):
    values = {
        "image": {"bakedModels": ["smollm2-135m-instruct"]},
        "serving": {"catalog": {"models": [llm_entry("m", BUILTIN, accelerator_type="L4")]}},
        "batchJobs": {"a": {"spec": {**GPU_JOB, "model": {"source": BUILTIN}}}},
    }
    proc = render(values=values, sets=["kuberay-operator.enabled=false"])
    assert proc.returncode == 0, proc.stderr


def test_baked_models_are_builtin_names(render):
    assert "bakedModels" in _fails(render, {"image": {"bakedModels": ["llama-3"]}})


@pytest.mark.parametrize("path", ["/tmp/kuberay-llm/out/q", "out/q", "file:///tmp/q", "/cache2/q"])
def test_job_output_inside_the_pods_fails(render, path):
    values = {"serving": {"enabled": False}, "batchJobs": {"q": {"spec": {**GPU_JOB, "model": {"source": "org/m"}}}}}
    values["batchJobs"]["q"]["spec"]["output"] = {"path": path}
    err = _fails(render, values, sets=["modelCache.enabled=true"])
    assert (
        f'batchJobs.q.spec.output.path: "{path}" is a folder inside the job\'s Ray pods, deleted with its Ray cluster'
        in err
    )


@pytest.mark.parametrize(
    ("sets", "path"),
    [
        (["results.enabled=true"], "/results/q"),
        (["modelCache.enabled=true"], "/cache/out/q"),
        (["extraVolumeMounts[0].name=out", "extraVolumeMounts[0].mountPath=/mnt/out"], "/mnt/out/q"),
        ([], "gs://b/q"),
    ],
)
def test_job_output_on_a_volume_or_bucket_renders(render, sets, path):
    spec = {**GPU_JOB, "model": {"source": "org/m"}, "output": {"path": path}}
    proc = render(
        values={"serving": {"enabled": False}, "batchJobs": {"q": {"spec": spec}}},
        sets=["kuberay-operator.enabled=false", *sets],
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(
    "override",
    [
        "engine.concurrency=4",
        "engine.engine_kwargs.tensor_parallel_size=2",
        "model.source=builtin:x",
        "output.path=/tmp/o",
    ],
)
def test_overrides_of_what_the_chart_reads_fail(render, override):
    spec = {**GPU_JOB, "model": {"source": "org/m"}}
    err = _fails(render, {"serving": {"enabled": False}, "batchJobs": {"q": {"spec": spec, "overrides": [override]}}})
    assert f'batchJobs.q.overrides: "{override.split("=")[0]}" sizes the worker group or is checked by the chart' in err


def test_engine_larger_than_a_node_fails(render):
    values = {
        "accelerators": {"pools": {"L4": {"gpusPerNode": 1}}},
        "serving": {
            "catalog": {
                "models": [llm_entry("m", "org/m", accelerator_type="L4", engine_kwargs={"tensor_parallel_size": 2})]
            }
        },
    }
    assert (
        "one engine needs 2 GPUs (tensor x pipeline parallel size) but accelerators.pools.L4.gpusPerNode is 1"
        in _fails(render, values)
    )


def test_gpus_per_pod_is_not_a_value(render):
    # Pods are sized by the engine; a per-pod GPU count could only request GPUs no engine uses.
    assert "additional properties 'gpus' not allowed" in _fails(
        render, {"accelerators": {"pools": {"L4": {"gpus": 4}}}}
    )
    spec = {**GPU_JOB, "model": {"source": "org/m"}}
    err = _fails(render, {"batchJobs": {"q": {"spec": spec, "workers": {"gpus": 4}}}})
    assert "additional properties 'gpus' not allowed" in err
