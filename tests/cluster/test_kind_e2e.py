"""The cluster quickstart: kind-up -> image -> kind-load -> install -> batch-submit -> serve-deploy -> query.

The end-to-end test needs a Docker engine and network access to pull kind's node image, the
KubeRay chart and the image bases. It runs where those exist (users' CI:
.github/workflows/kind-e2e.yaml, with KRLLM_E2E=1) and is skipped elsewhere with the reason.

What can be checked without a cluster runs everywhere: every target of the flow is wired up
(`make -n`), `make batch-render` produces the RayJob that `batch-submit` applies, with the
image from the one image value, and the kind config carries the fake accelerator pools.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FLOW = ["kind-up", "image", "kind-load", "install", "batch-submit NAME=questions", "serve-deploy", "cluster-query"]
HELM = ROOT / "bin/helm"


def make(*args: str, timeout: int = 120, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    res = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check:
        assert res.returncode == 0, f"make {' '.join(args)} failed:\n{res.stdout[-4000:]}\n{res.stderr[-4000:]}"
    return res


def _image_version() -> str:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


# --------------------------------------------------------------------------- runs here
@pytest.mark.parametrize("target", FLOW + ["port-forward", "logs NAME=questions", "uninstall", "down"])
def test_flow_targets_are_wired(target):
    """Each step of the quickstart is a make target that expands (dry run: nothing is executed)."""
    res = make("-n", *target.split())
    assert res.stdout.strip()


def test_help_lists_the_cluster_and_image_targets():
    out = re.sub(r"\x1b\[[0-9;]*m", "", make("help").stdout)
    for target in ["kind-up", "kind-load", "install", "batch-submit", "serve-deploy", "port-forward",
                   "cluster-query", "logs", "down", "image", "image-cpu", "image-gpu", "hadolint"]:  # fmt: skip
        assert re.search(rf"^\s+{re.escape(target)}\s", out, re.M), target


def test_tool_versions_are_pinned():
    mk = (ROOT / "mk/cluster.mk").read_text()
    assert re.search(r"^KIND_VERSION \?= v\d+\.\d+\.\d+$", mk, re.M)
    assert re.search(r"^KUBECTL_VERSION \?= v\d+\.\d+\.\d+$", mk, re.M)
    assert re.search(r"^KIND_NODE_IMAGE \?= kindest/node:v[\d.]+@sha256:[0-9a-f]{64}$", mk, re.M)
    assert "sha256sum -c" in mk, "downloaded tools are checked against their published checksums"


def _render(name: str, job_spec: str | None = None) -> list[dict]:
    if not HELM.is_file():
        pytest.fail("bin/helm is missing: run `make tools`")
    from hack.chartgen.helm import offline_chart

    with offline_chart() as chart:
        args = ["-s", "batch-render", f"NAME={name}", f"CHART_DIR={chart}"]
        if job_spec:
            args.append(f"JOB_SPEC={job_spec}")
        out = make(*args).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.mark.parametrize(
    ("name", "job_spec"), [("questions", None), ("sentiment", "jobs/examples/sentiment.yaml")], ids=["values", "file"]
)
def test_batch_render_gives_one_rayjob_on_the_cpu_image(name, job_spec):
    docs = _render(name, job_spec)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "RayJob"], kinds
    for d in docs:
        assert d["metadata"]["labels"]["kuberay-llm/job"] == name
    rayjob = next(d for d in docs if d["kind"] == "RayJob")
    images = re.findall(r"image: (\S+)", yaml.safe_dump(rayjob))
    assert images and set(images) == {f"ghcr.io/kuberay-llm/kuberay-llm:{_image_version()}-cpu"}
    spec = yaml.safe_load(next(d for d in docs if d["kind"] == "ConfigMap")["data"]["job.yaml"])
    # The CPU image's baked SmolLM2 (images/*/Dockerfile: /opt/kuberay-llm/models), not a download.
    assert spec["model"]["source"] == "/opt/kuberay-llm/models/smollm2-135m-instruct"
    assert spec["engine"]["device"] == "cpu"
    if job_spec:
        original = yaml.safe_load((ROOT / job_spec).read_text())
        assert spec["workload"] == original["workload"] and spec["name"] == original["name"]


def test_kind_config_poses_as_accelerator_pools():
    config = yaml.safe_load((ROOT / "manifests/kind-config.yaml").read_text())
    workers = [n for n in config["nodes"] if n["role"] == "worker"]
    pools = {n.get("labels", {}).get("kuberay-llm/pool") for n in workers}
    assert "cpu" in pools and pools - {"cpu"}, "a CPU worker and at least one fake accelerator pool"
    from llmkit.accelerators import load_catalog

    catalog = load_catalog()
    for node in workers:
        pool = node["labels"]["kuberay-llm/pool"]
        if pool == "cpu":
            continue
        for preset in ("gfd", "gke"):
            for key, value in catalog.get(pool).nodeSelectors[preset].items():
                assert node["labels"].get(key) == value, (pool, key)


# --------------------------------------------------------------------------- the real thing
def _why_no_cluster() -> str | None:
    if os.environ.get("KRLLM_E2E") != "1":
        return "the kind end-to-end flow runs only with KRLLM_E2E=1 (users' CI: .github/workflows/kind-e2e.yaml)"
    docker = shutil.which("docker")
    if not docker:
        return "no docker CLI on this machine: kind needs a Docker engine"
    res = subprocess.run([docker, "info"], capture_output=True, text=True)
    if res.returncode != 0:
        return f"no Docker engine reachable (`docker info`: {(res.stderr or res.stdout).strip().splitlines()[-1]})"
    return None


E2E_ENV = {
    "CONTAINER_TOOL": "docker",
    # Small requests, so the flow fits a 4-core, 16 GB CI runner.
    "HELM_ARGS": os.environ.get(
        "KRLLM_E2E_HELM_ARGS",
        "--set head.resources.requests.cpu=500m --set head.resources.requests.memory=3Gi "
        "--set head.resources.limits.memory=3Gi --set cpuPool.cpu=1500m --set cpuPool.memory=5Gi",
    ),
}


@pytest.fixture(scope="module")
def kind_cluster():
    reason = _why_no_cluster()
    if reason:
        pytest.skip(reason)
    make("kind-up", timeout=900, env=E2E_ENV)
    yield
    if os.environ.get("KRLLM_E2E_KEEP") != "1":
        make("down", timeout=300, check=False, env=E2E_ENV)


@pytest.mark.cluster
def test_kind_quickstart_end_to_end(kind_cluster):
    make("image", timeout=3600, env=E2E_ENV)
    make("kind-load", timeout=900, env=E2E_ENV)
    make("install", timeout=1200, env=E2E_ENV)

    batch = make("batch-submit", "NAME=questions", timeout=3600, env=E2E_ENV).stdout
    assert "Complete/SUCCEEDED" in batch
    m = re.search(r"== questions: (\d+) ok, (\d+) failed", batch)
    assert m and int(m.group(1)) > 0 and int(m.group(2)) == 0, batch[-3000:]

    make("serve-deploy", timeout=3600, env=E2E_ENV)
    out = make("cluster-query", timeout=300, env=E2E_ENV).stdout
    chat = json.loads(out.strip().splitlines()[-1])
    assert chat["choices"][0]["message"]["content"].strip()


def test_github_workflow_runs_this_test():
    workflow = ROOT / ".github/workflows/kind-e2e.yaml"
    checker = ROOT / "bin/tools-venv/bin/check-jsonschema"
    assert checker.is_file(), "check-jsonschema is missing: run `make tools`"
    res = subprocess.run(
        [str(checker), "--builtin-schema", "vendor.github-workflows", str(workflow)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr
    steps = yaml.safe_load(workflow.read_text())["jobs"]["kind-e2e"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "pytest tests/cluster -m cluster" in runs
    assert yaml.safe_load(workflow.read_text())["jobs"]["kind-e2e"]["env"]["KRLLM_E2E"] == "1"
