"""Helpers of the chart tests: tool paths, rendered documents, pod templates of the custom resources."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from hack.chartgen.paths import CHART, HELM, ROOT  # noqa: F401 (HELM: re-exported for the tests)

BIN = ROOT / "bin"
TOOLS = BIN / "tools-venv" / "bin"
CRDS_DIR = Path(os.environ.get("KUBERAY_CRDS_DIR", ROOT.parent / "shared" / "kuberay-crds" / "v1.7.0"))
if not CRDS_DIR.is_absolute():
    CRDS_DIR = ROOT / CRDS_DIR
SCENARIOS = sorted(p.name.removesuffix("-values.yaml") for p in (CHART / "ci").glob("*-values.yaml"))
CR_KINDS = {"RayService", "RayJob", "RayCluster", "RayCronJob"}
# The chart names no default image (none is published under a default name); renders here name this one.
TEST_IMAGE_REPOSITORY = "registry.example.com/kuberay-llm"


def need_tool(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make tools`", pytrace=False)
    return path


@dataclass
class Rendered:
    name: str
    text: str
    values: dict[str, Any]
    docs: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.docs = [d for d in yaml.safe_load_all(self.text) if d]

    def kind(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str) -> dict[str, Any]:
        found = self.kind(kind)
        assert len(found) == 1, f"{self.name}: expected one {kind}, found {len(found)}"
        return found[0]


def load_values(*files: Path) -> dict[str, Any]:
    """The values helm sees: the chart defaults with each file merged over them."""
    merged = yaml.safe_load((CHART / "values.yaml").read_text())

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        for k, v in b.items():
            a[k] = merge(a.get(k) or {}, v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
        return a

    for f in files:
        merge(merged, yaml.safe_load(Path(f).read_text()) or {})
    return merged


def cluster_spec(cr: dict[str, Any]) -> dict[str, Any]:
    return cr["spec"]["rayClusterConfig"] if cr["kind"] == "RayService" else cr["spec"]["rayClusterSpec"]


def pod_templates(cr: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role, pod template) of every pod a RayService or RayJob will create."""
    spec = cluster_spec(cr)
    out = [("head", spec["headGroupSpec"]["template"])]
    out += [(f"worker-{g['groupName']}", g["template"]) for g in spec.get("workerGroupSpecs", [])]
    if cr["kind"] == "RayJob" and "submitterPodTemplate" in cr["spec"]:
        out.append(("submitter", cr["spec"]["submitterPodTemplate"]))
    return out


def lifted_pods(cr: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod templates inside a custom resource as standalone Pods, for core-schema and checkov checks."""
    pods = []
    for role, tpl in pod_templates(cr):
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": f"{cr['metadata']['name']}-{role}"[:63].rstrip("-"),
                    "namespace": "kuberay-llm",
                    "labels": tpl.get("metadata", {}).get("labels", {}),
                },
                "spec": tpl["spec"],
            }
        )
    return pods


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False, **kwargs)
