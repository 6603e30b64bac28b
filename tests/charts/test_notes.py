"""templates/NOTES.txt: tells the user how to reach the service and send a first OpenAI request.

`helm template` skips NOTES.txt and `helm install --dry-run` needs a cluster, so the test renders the
same text through `tpl` in a throwaway copy of the chart."""

import json
import shutil

import pytest
import yaml
from chart_helpers import CHART

from hack.chartgen import helm as chartgen

pytestmark = pytest.mark.charts


def _notes(chart, tmp_path, values_file):
    copy = tmp_path / "kuberay-llm"
    shutil.copytree(chart, copy)
    shutil.copy(copy / "templates" / "NOTES.txt", copy / "files" / "notes.txt")
    (copy / "templates" / "zz-notes.yaml").write_text(
        'kind: Notes\ntext: {{ tpl (.Files.Get "files/notes.txt") . | toJson }}\n'
    )
    proc = chartgen.helm_template(
        copy, values_files=[values_file], namespace="llm", sets=["kuberay-operator.enabled=false"]
    )
    assert proc.returncode == 0, proc.stderr
    (doc,) = [d for d in yaml.safe_load_all(proc.stdout) if d and d["kind"] == "Notes"]
    return doc["text"]


def test_notes_port_forward_and_first_request(chart, tmp_path):
    text = _notes(chart, tmp_path, CHART / "ci" / "eks-a10g-values.yaml")
    assert "kubectl -n llm port-forward svc/llm-kuberay-llm-openai 8000:8000" in text
    assert "kubectl -n llm get rayservice llm-kuberay-llm" in text
    (curl,) = [line for line in text.splitlines() if line.strip().startswith("-d '")]
    body = json.loads(curl.strip()[4:-1])
    assert body["model"] == "llama-3.1-8b-instruct"
    assert body["messages"][0]["role"] == "user"
    assert "Authorization: Bearer $API_KEY" in text  # apiKeys is set in this scenario
    assert "kubectl -n llm get rayjob llm-kuberay-llm-sentiment" in text
    assert "Every Ray pod runs 123456789012.dkr.ecr.us-west-2.amazonaws.com/kuberay-llm@sha256:" in text
    assert "results: s3://my-bucket/results/sentiment/" in text


def test_notes_without_serving(chart, tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"repository": "registry.example.com/kuberay-llm"},
                "serving": {"enabled": False},
                "batchJobs": {
                    "q": {
                        "spec": {
                            "model": {"source": "org/m"},
                            "output": {"path": "s3://b/o"},
                            "engine": {"device": "cpu"},
                        }
                    }
                },
            }
        )
    )
    text = _notes(chart, tmp_path, values)
    assert "port-forward svc/" not in text.split("Ray dashboard")[0]
    assert "get rayjob llm-kuberay-llm-q" in text
