"""The rendered objects, run for real on local Ray with SmolLM2 on CPU.

- The cpu-local scenario's serveConfigV2 is loaded with Ray's Serve config schema and deployed on local
  Ray exactly as KubeRay would (its import_path with its args), on a free loopback port instead of
  0.0.0.0:8000; an OpenAI chat request through the openai client gets an answer.
- Every rendered RayJob (all scenarios and manifests/) runs its entrypoint with its job spec from its
  ConfigMap, with local overrides appended as `--set` (CPU, bundled sample input, 1 row, 8 tokens,
  a temporary output folder). To keep to ONE engine start-up on this small machine, the jobs send their
  rows to the Serve deployment above (engine.kind=http, engine.http.url=...) and share its Ray cluster;
  the jobs' in-process vLLM path is covered by tests/local. One Python process runs the entrypoints in
  turn, each as `python -m jobs` does (`jobs.__main__.main(args)`), paying imports and Ray workers once.
"""

from __future__ import annotations

import importlib
import json
import os
import shlex
import subprocess
import sys

import pytest
import yaml

from tests.support import free_port

pytestmark = [pytest.mark.charts, pytest.mark.local]


@pytest.fixture(scope="module")
def served(scenarios):
    import ray
    from ray import serve
    from ray.serve.schema import ServeDeploySchema

    svc = scenarios["cpu-local"].one("RayService")
    cfg = ServeDeploySchema.model_validate(yaml.safe_load(svc["spec"]["serveConfigV2"]))
    (app,) = cfg.applications
    module, attr = app.import_path.split(":")
    builder = getattr(importlib.import_module(module), attr)
    for key, value in {"HF_HUB_OFFLINE": "1", "RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1"}.items():
        os.environ.setdefault(key, value)
    ray.init(address="local", num_cpus=6, include_dashboard=False, log_to_driver=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(builder(app.args), name=app.name, route_prefix=app.route_prefix)
        model = app.args["catalog"]["models"][0]["model_loading_config"]["model_id"]
        yield {"url": f"http://127.0.0.1:{port}/v1", "model": model, "address": ray.get_runtime_context().gcs_address}
    finally:
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def test_rendered_serve_config_answers_an_openai_chat_request(served):
    from openai import OpenAI

    client = OpenAI(base_url=served["url"], api_key="unused", max_retries=0, timeout=300)
    out = client.chat.completions.create(
        model=served["model"],
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=8,
        temperature=0,
    )
    assert out.choices[0].message.content.strip()
    assert out.usage.completion_tokens > 0
    assert [m.id for m in client.models.list().data] == [served["model"]]


def _rendered_jobs(all_rendered):
    for name, r in all_rendered.items():
        for job in r.kind("RayJob"):
            job_name = job["metadata"]["labels"]["kuberay-llm/job"]
            (cm,) = [c for c in r.kind("ConfigMap") if c["metadata"]["labels"].get("kuberay-llm/job") == job_name]
            yield f"{name}:{job_name}", job, cm


# `python -m jobs ARGS` is `sys.exit(jobs.__main__.main(ARGS))`: one process runs every rendered entrypoint
# that way, in turn, so the imports, the Ray connection and Ray's worker processes are paid once, not per job.
_RUN_ENTRYPOINTS = """
import json, sys, traceback
from jobs.__main__ import main

results = []
for label, args in json.loads(sys.argv[1]):
    print(f"=== {label}", file=sys.stderr, flush=True)
    try:
        rc = main(args)
    except SystemExit as e:
        rc = e.code
    except Exception:
        rc = traceback.format_exc()
    results.append(rc)
with open(sys.argv[2], "w") as f:
    json.dump(results, f)
"""


def test_every_rendered_job_runs(served, all_rendered, tmp_path):
    runs = []
    for label, job, cm in _rendered_jobs(all_rendered):
        work = tmp_path / label.replace("/", "_").replace(":", "_")
        work.mkdir()
        spec_file = work / "job.yaml"
        spec_file.write_text(cm["data"]["job.yaml"])
        argv = shlex.split(job["spec"]["entrypoint"])
        assert argv[:3] == ["python", "-m", "jobs"]
        argv[argv.index("/etc/kuberay-llm/job.yaml")] = str(spec_file)
        local = [
            "engine.kind=http",
            f"engine.http.url={served['url']}",
            f"engine.http.model={served['model']}",
            "engine.device=cpu",
            "engine.accelerator_type=null",
            "engine.concurrency=1",
            "engine.engines_per_gpu=1",
            "engine.engine_kwargs={}",
            "input.path=null",
            "input.format=auto",
            "input.limit=1",
            "sampling.max_tokens=8",
            f"output.path={work / 'out'}",
            "resume.mode=overwrite",
        ]
        for item in local:
            argv += ["--set", item]
        runs.append((label, argv, work))
    assert len(runs) >= 7, [label for label, _, _ in runs]

    results = tmp_path / "results.json"
    todo = json.dumps([(label, argv[3:]) for label, argv, _ in runs])
    env = {**os.environ, "RAY_ADDRESS": served["address"]}
    proc = subprocess.run(
        [sys.executable, "-c", _RUN_ENTRYPOINTS, todo, str(results)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0 and results.exists(), f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    codes = json.loads(results.read_text())
    failed = [f"{label}: {shlex.join(argv)}\n{rc}" for (label, argv, _), rc in zip(runs, codes, strict=True) if rc != 0]
    assert not failed, "\n".join(failed) + f"\n{proc.stderr[-5000:]}"
    for label, _, work in runs:
        json.loads((work / "out" / "summary.json").read_text())
        assert (work / "out" / "_SUCCESS").exists(), label
        assert list((work / "out" / "data").iterdir()), f"{label}: no output parts"
