"""Bad values fail `helm template` with a message that names the problem."""

import pytest
from chart_helpers import CHART

pytestmark = pytest.mark.charts

CPU = CHART / "ci" / "cpu-local-values.yaml"
L4_MODEL = {"model_id": "m", "accelerator_type": "L4"}


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
            {"serving": {"catalog": {"models": [{"model_id": "m", "sourcee": "x"}]}}},
            "additional properties 'sourcee' not allowed",
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
        ({"serving": {"catalog": {"models": [{**L4_MODEL, "autoscaling": {"min_replicas": -1}}]}}}, "min_replicas"),
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


def test_min_above_max(render):
    err = _fails(render, {"serving": {"workerGroups": {"L4": {"minReplicas": 5, "maxReplicas": 2}}}})
    assert "minReplicas (5) > maxReplicas (2)" in err


@pytest.mark.parametrize(
    "values",
    [
        {"serving": {"catalog": {"models": [{"model_id": "m", "accelerator_type": "TPU-v9"}]}}},
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

    from llmkit import chartgen

    copy = tmp_path / "kuberay-llm"
    shutil.copytree(chart, copy)
    (copy / "values.schema.json").unlink()
    proc = chartgen.helm_template(
        copy,
        values={
            "kuberay-operator": {"enabled": False},
            "serving": {"catalog": {"models": [{"model_id": "m", "accelerator_type": "TPU-v9"}]}},
        },
    )
    assert proc.returncode != 0
    assert 'accelerator type "TPU-v9" is not in the accelerator catalog' in proc.stderr
    assert "known types: A100, A100-80G, A10G, H100, H200, L4, L40S, T4" in proc.stderr


def test_gpu_model_without_accelerator_type(render):
    err = _fails(render, {"serving": {"catalog": {"models": [{"model_id": "m"}], "device": "gpu"}}})
    assert "needs an accelerator_type" in err


def test_job_without_pool(render):
    err = _fails(render, {"batchJobs": {"a": {"spec": {"output": {"path": "/o"}}}}})
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
            {"serving": {"directStreaming": True, "catalog": {"models": [{"model_id": "a"}, {"model_id": "b"}]}}},
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
