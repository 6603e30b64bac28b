"""The Grafana dashboards (dashboards/*.json): well formed, fresh, and querying only metrics that exist.

A metric name passes when the installed source defines it (Ray Serve and Ray Data's
ray.util.metrics objects, vLLM's engine metrics as Ray re-exports them, our batch job's counters in
jobs/), with the suffix its type gets on Ray's Prometheus endpoint, or when Ray's own bundled
Grafana panels query that exact name (Ray Data's operator metrics are named at run time).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "dashboards").glob("*.json"))
DEFINITION = re.compile(r"\b(Counter|Gauge|Histogram)\(\s*(?:name\s*=\s*)?f?[\"']([a-z_{}]+)[\"']")
VLLM_DEFINITION = re.compile(r"self\._(counter|gauge|histogram)_cls\(\s*name=\"vllm:([a-z_0-9]+)\"")
METRIC = re.compile(r"\b(ray_[a-z0-9_]+)")


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    assert spec and spec.submodule_search_locations, f"{name} is not installed"
    return Path(next(iter(spec.submodule_search_locations)))


def _exported(kind: str, name: str) -> set[str]:
    base = "ray_" + name
    if kind == "Counter":
        return {base if base.endswith("_total") else base + "_total"}
    if kind == "Histogram":
        return {base + "_bucket", base + "_sum", base + "_count"}
    return {base}


def _defined(files) -> dict[str, str]:
    out: dict[str, str] = {}
    for path in files:
        text = path.read_text(errors="replace")
        for kind, name in DEFINITION.findall(text):
            for expanded in {name.replace("{protocol_name}", p) for p in ("http", "grpc")}:
                if "{" not in expanded:
                    for exported in _exported(kind, expanded):
                        out[exported] = f"{path.name}: {kind}({expanded!r})"
    return out


@pytest.fixture(scope="module")
def known_metrics() -> dict[str, str]:
    ray = _package_dir("ray")
    known = _defined([*ray.glob("serve/**/*.py"), *ray.glob("data/**/*.py")])
    known.update(_defined((ROOT / "jobs").glob("**/*.py")))
    loggers = _package_dir("vllm") / "v1/metrics/loggers.py"
    for kind, name in VLLM_DEFINITION.findall(loggers.read_text()):
        for exported in _exported(kind.capitalize(), "vllm_" + name):
            known[exported] = f"vllm/v1/metrics/loggers.py: vllm:{name} ({kind})"
    for panels in (ray / "dashboard/modules/metrics/dashboards").glob("*.py"):
        for name in METRIC.findall(panels.read_text()):
            known.setdefault(name, f"Ray's bundled dashboard {panels.name}")
    return known


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _exprs(dashboard: dict) -> list[str]:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    return exprs


def test_serving_and_batch_dashboards_exist():
    assert {p.name for p in DASHBOARDS} == {"serving.json", "batch.json"}


def test_dashboards_are_generated_and_fresh():
    res = subprocess.run([sys.executable, str(ROOT / "dashboards/build.py"), "--check"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_panel_has_a_datasource_and_promql(path):
    dashboard = _load(path)
    assert dashboard["uid"] and dashboard["title"]
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert "datasource" in names
    assert len(set(names)) == len(names)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert expr.strip() and METRIC.search(expr), (panel["title"], expr)
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            assert target["datasource"] == panel["datasource"]
        for var in re.findall(r"\$(\w+)", json.dumps(panel["targets"])):
            assert var.startswith("__") or var in names, f"{panel['title']}: unknown variable ${var}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.stem)
def test_every_metric_is_exported_by_ray_vllm_or_our_job(path, known_metrics):
    used = {name for expr in _exprs(_load(path)) for name in METRIC.findall(expr)}
    unknown = sorted(used - set(known_metrics))
    assert not unknown, f"{path.name} queries metrics nothing exports: {unknown}"


def test_the_dashboards_show_the_serving_signals_and_every_batch_metric(known_metrics):
    serving = " ".join(_exprs(_load(ROOT / "dashboards/serving.json")))
    for needed in [
        "ray_serve_num_http_requests_total",  # request rate
        "ray_vllm_time_to_first_token_seconds_bucket",  # TTFT
        "ray_serve_http_request_latency_ms_bucket",  # latency
        "ray_vllm_generation_tokens_total",  # tokens/s
        "ray_vllm_num_requests_waiting",  # queue depth
    ]:
        assert needed in serving, needed
    batch = " ".join(_exprs(_load(ROOT / "dashboards/batch.json")))
    ours = sorted(n for n, src in known_metrics.items() if "krllm_batch" in n and not src.startswith("Ray's"))
    assert ours, "jobs/ defines no krllm_batch_* metrics"
    for name in ours:  # every metric the batch job exports is on its dashboard
        assert name in batch, name
