"""checkov over every rendered document of every scenario and manifest, with the pod templates inside
the custom resources lifted into Pods so that checkov's pod checks see them. Run once."""

import json

import pytest
import yaml
from chart_helpers import CR_KINDS, TOOLS, lifted_pods, need_tool, run

pytestmark = pytest.mark.charts

# Every skipped check, with the reason it does not apply.
SKIPS = {
    "CKV_K8S_8": "Liveness probes of Ray pods are injected by the KubeRay operator (Ray health checks); "
    "the job submitter is a run-to-completion pod.",
    "CKV_K8S_9": "Readiness probes of Ray pods are injected by the KubeRay operator; the submitter runs to completion.",
    "CKV_K8S_40": "The Ray images run as the 'ray' user, uid 1000, who owns /home/ray; a uid above 10000 breaks them.",
    "CKV_K8S_38": "Only the Ray head keeps its service account token: its autoscaler sidecar calls the Kubernetes API. "
    "Workers and the submitter set automountServiceAccountToken: false, except the RayService's pods with batchApi on, "
    "which run as the Batch API's own account: its ingress replica, on any of them, creates RayJobs and ConfigMaps "
    "(asserted in test_token_only_on_head).",
    "CKV_K8S_43": "The image is pinned by an exact tag (`latest` is refused by the schema); image.digest pins by "
    "digest when set (the eks-a10g scenario does).",
    "CKV_K8S_15": "IfNotPresent with pinned tags: GPU images are many GB, and pulling on every scale-up from zero "
    "costs minutes.",
    "CKV_K8S_21": "Objects carry no namespace on purpose: it is chosen at install (`helm install -n`, `kubectl apply -n`).",
}


# Skipped for some pods only, by checkov's own annotation on the lifted Pod: check -> (reason, which pods).
POD_SKIPS = {
    "CKV_K8S_35": (
        "batchApi.envFromSecrets: object-store credentials reach the Batch API's service as environment "
        "(envFrom), the only form the RayJobs it creates can take them in (KubernetesRunner.env_from_secrets), "
        "and the form S3 and GCS clients read; the Secrets are the user's, never values.",
        lambda pod: any("envFrom" in c for c in pod["spec"]["containers"]),
    ),
}


def test_every_skip_has_a_reason():
    assert all(len(reason) > 30 for reason in SKIPS.values())
    assert all(len(reason) > 30 for reason, _ in POD_SKIPS.values())


def _with_pod_skips(pod):
    skips = [f"{check}={reason}" for check, (reason, applies) in POD_SKIPS.items() if applies(pod)]
    if skips:
        annotations = pod["metadata"].setdefault("annotations", {})
        for i, skip in enumerate(skips, 1):
            annotations[f"checkov.io/skip{i}"] = skip
    return pod


def test_checkov(all_rendered, tmp_path):
    tool = need_tool(TOOLS / "checkov")
    for name, r in all_rendered.items():
        docs = []
        for d in r.docs:
            docs.append(d)
            if d["kind"] in CR_KINDS:
                docs += [_with_pod_skips(p) for p in lifted_pods(d)]
        (tmp_path / (name.replace("/", "_") + ".yaml")).write_text(yaml.safe_dump_all(docs))
    proc = run(
        [
            tool,
            "-d",
            tmp_path,
            "--framework",
            "kubernetes",
            "--skip-check",
            ",".join(SKIPS),
            "--quiet",
            "--compact",
            "-o",
            "json",
        ]
    )
    report = json.loads(proc.stdout)
    reports = report if isinstance(report, list) else [report]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for rep in reports
        for c in rep["results"]["failed_checks"]
    ]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    passed = sum(rep["summary"]["passed"] for rep in reports)
    assert passed > 500, f"checkov ran only {passed} checks"
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_token_only_on_head(all_rendered):
    batch_api_pods = 0
    for r in all_rendered.values():
        batch_sa = {sa["metadata"]["name"] for sa in r.kind("ServiceAccount")}
        for d in r.docs:
            if d["kind"] not in CR_KINDS:
                continue
            for pod in lifted_pods(d):
                sa = pod["spec"].get("serviceAccountName")
                if sa:
                    # Only the RayService's pods, as the Batch API's account (rendered beside them, with the Role).
                    assert d["kind"] == "RayService" and sa in batch_sa and sa.endswith("-batch-api"), pod
                    assert pod["spec"]["automountServiceAccountToken"] is True
                    batch_api_pods += 1
                    continue
                if pod["metadata"]["name"].endswith("-head"):
                    continue
                assert pod["spec"]["automountServiceAccountToken"] is False, pod["metadata"]["name"]
    assert batch_api_pods >= 5
