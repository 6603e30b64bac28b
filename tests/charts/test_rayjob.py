"""templates/rayjob.yaml and templates/configmap-job.yaml: one RayJob and one job-spec ConfigMap per batch job."""

import shlex

import pytest
import yaml
from chart_helpers import cluster_spec, pod_templates
from semantics import (
    assert_cpu_group,
    assert_gpu_group,
    assert_head_has_no_gpu,
    assert_no_inline_secret,
    assert_pod_security,
)

from jobs.spec import JobSpec
from llmkit.accelerators import gpus_per_engine

pytestmark = pytest.mark.charts

JOBS = [
    ("eks-a10g", "sentiment"),
    ("multi-pool-h100-l4", "summarize"),
    ("cpu-local", "questions"),
    ("multi-gpu-nodes", "questions"),
    ("multi-gpu-nodes", "summaries"),
]


def _job(r, name):
    (job,) = [d for d in r.kind("RayJob") if d["metadata"]["labels"]["kuberay-llm/job"] == name]
    (cm,) = [d for d in r.kind("ConfigMap") if d["metadata"]["labels"]["kuberay-llm/job"] == name]
    return job, cm


@pytest.mark.parametrize(("scenario", "name"), JOBS)
def test_job_spec_configmap_and_entrypoint(scenarios, scenario, name):
    r = scenarios[scenario]
    job, cm = _job(r, name)
    entry = r.values["batchJobs"][name]
    spec = yaml.safe_load(cm["data"]["job.yaml"])
    assert spec == entry["spec"]
    JobSpec.from_dict(spec)  # the jobs CLI accepts it
    argv = shlex.split(job["spec"]["entrypoint"])
    assert argv[:6] == ["python", "-m", "jobs", "run", "--config", "/etc/kuberay-llm/job.yaml"]
    assert argv[6:] == [x for o in entry.get("overrides", []) for x in ("--set", o)]
    head = cluster_spec(job)["headGroupSpec"]["template"]["spec"]
    vols = {v["name"]: v for v in head["volumes"]}
    assert vols["job-spec"]["configMap"]["name"] == cm["metadata"]["name"]
    mounts = {m["name"]: m for m in head["containers"][0]["volumeMounts"]}
    assert mounts["job-spec"]["mountPath"] == "/etc/kuberay-llm"


def test_job_lifecycle_takes_jobdefaults_unless_the_job_sets_its_own(render):
    """Concrete numbers in, concrete numbers out: jobDefaults for a job that sets nothing, the job's own
    value where it sets one."""
    job_spec = {"name": "x", "model": {"source": "Qwen/Qwen2.5-0.5B-Instruct"}, "engine": {"device": "cpu"}}
    job_spec["output"] = {"path": "s3://b/out"}
    values = {
        "kuberay-operator": {"enabled": False},
        "serving": {"enabled": False},
        "jobDefaults": {
            "activeDeadlineSeconds": 111,
            "backoffLimit": 2,
            "ttlSecondsAfterFinished": 333,
            "shutdownAfterJobFinishes": False,
            "submitterBackoffLimit": 4,
        },
        "batchJobs": {
            "plain": {"spec": {**job_spec, "name": "plain"}},
            "own": {"spec": {**job_spec, "name": "own"}, "activeDeadlineSeconds": 999, "backoffLimit": 0},
        },
    }
    proc = render(values=values)
    assert proc.returncode == 0, proc.stderr
    jobs = {
        d["metadata"]["labels"]["kuberay-llm/job"]: d["spec"]
        for d in yaml.safe_load_all(proc.stdout)
        if d and d["kind"] == "RayJob"
    }
    for name, deadline, retries in (("plain", 111, 2), ("own", 999, 0)):
        s = jobs[name]
        assert s["submissionMode"] == "K8sJobMode"
        assert (s["activeDeadlineSeconds"], s["backoffLimit"]) == (deadline, retries)
        assert (s["ttlSecondsAfterFinished"], s["shutdownAfterJobFinishes"]) == (333, False)
        assert s["submitterConfig"]["backoffLimit"] == 4


@pytest.mark.parametrize(("scenario", "name"), JOBS)
def test_job_worker_group_on_its_pool(scenarios, scenario, name):
    r = scenarios[scenario]
    job, _ = _job(r, name)
    spec = cluster_spec(job)
    assert_head_has_no_gpu(spec)
    (group,) = spec["workerGroupSpecs"]
    engine = r.values["batchJobs"][name]["spec"]["engine"]
    workers = r.values["batchJobs"][name].get("workers", {})
    if engine.get("accelerator_type"):
        kw = engine.get("engine_kwargs", {})
        gpus = gpus_per_engine(kw)  # one engine per pod
        assert_gpu_group(group, engine["accelerator_type"], r.values, gpus)
    else:
        assert_cpu_group(group, r.values)
    c = engine.get("concurrency", 1)
    lo, hi = (c, c) if isinstance(c, int) else c
    assert group["minReplicas"] == workers.get("minReplicas", lo)
    assert group["maxReplicas"] == workers.get("maxReplicas", hi)
    for _, tpl in pod_templates(job):
        assert_pod_security(tpl["spec"])
    assert_no_inline_secret(r.text, r.docs)


def test_seed_manifests_are_the_jobs_examples(manifests):
    from hack.chartgen.manifests import ROOT, SEED_JOBS

    for name, example in SEED_JOBS.items():
        r = manifests[f"rayjob-{name}.yaml"]
        job, cm = _job(r, name)
        spec = yaml.safe_load(cm["data"]["job.yaml"])
        source = yaml.safe_load((ROOT / "jobs" / "examples" / f"{example}.yaml").read_text())
        assert spec["workload"] == source["workload"]
        assert spec["sampling"] == source["sampling"]
        assert spec["engine"]["accelerator_type"] == "L4"
        (group,) = cluster_spec(job)["workerGroupSpecs"]
        assert_gpu_group(group, "L4", {"accelerators": {"nodeSelectorPreset": "gfd"}}, 1)


def test_seed_jobs_run_a_model_a_gpu_pod_can_load(manifests):
    """The GPU image bakes no model: the seeds run the chart's default HF model, downloaded in the pod."""
    from hack.chartgen.manifests import default_gpu_model

    model = default_gpu_model()["model_loading_config"]
    assert not model["model_source"].startswith("builtin:")
    for name, r in manifests.items():
        for job in r.kind("RayJob"):
            _, cm = _job(r, job["metadata"]["labels"]["kuberay-llm/job"])
            spec = yaml.safe_load(cm["data"]["job.yaml"])
            assert spec["model"] == {"source": model["model_source"], "served_name": model["model_id"]}, name


def _claim_holding(pod_spec, path):
    """The claim of the volume mounted over `path` in the pod, or None (no volume, or an emptyDir)."""
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for c in pod_spec["containers"]:
        for m in c.get("volumeMounts", []):
            if path.startswith(m["mountPath"].rstrip("/") + "/"):
                return volumes[m["name"]].get("persistentVolumeClaim", {}).get("claimName")
    return None


def test_sample_jobs_write_results_to_a_volume_that_outlives_the_cluster(all_rendered):
    """Every rendered job writes to a bucket or to a claim mounted in its head and workers, never a pod's /tmp."""
    checked = 0
    for name, r in all_rendered.items():
        for job in r.kind("RayJob"):
            _, cm = _job(r, job["metadata"]["labels"]["kuberay-llm/job"])
            path = yaml.safe_load(cm["data"]["job.yaml"])["output"]["path"]
            if "://" not in path:
                for role, tpl in pod_templates(job):
                    if role != "submitter":
                        assert _claim_holding(tpl["spec"], path), f"{name}: {role} keeps {path} in the pod"
            checked += 1
    assert checked >= 9
