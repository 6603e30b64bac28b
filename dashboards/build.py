"""Generate the Grafana dashboards (dashboards/*.json) from the panel lists below.

    python dashboards/build.py          # rewrite the JSON files (make dashboards)
    python dashboards/build.py --check  # fail if they are out of date (tests/images/test_dashboards.py)

Metric names are the ones Ray's Prometheus endpoint exports (every name gets the `ray_` prefix;
counters end in `_total`, histograms give `_bucket`/`_sum`/`_count`):
- Ray Serve (ray/serve/_private/request_ingress_metrics.py, replica.py, router.py):
  ray_serve_num_http_requests_total, ray_serve_http_request_latency_ms_bucket, ...
- vLLM's engine metrics, re-exported through Ray by Ray Serve LLM and Ray Data LLM
  (vllm/v1/metrics/ray_wrappers.py turns `vllm:x` into `vllm_x`): ray_vllm_time_to_first_token_seconds_bucket, ...
  Serving engines carry a `ReplicaId` label; batch (Ray Data LLM) engines carry ReplicaId="".
- The batch job's own counters (jobs/report.py): ray_krllm_batch_rows_total{job,status}, ...
tests/images/test_dashboards.py checks every name against those sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def _var_datasource() -> dict:
    return {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus", "current": {}}


def _var_query(name: str, label: str, query: str) -> dict:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"query": query, "refId": f"var-{name}"},
        "definition": query,
        "refresh": 2,
        "includeAll": True,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def _quantiles(metric: str, by: str, sel: str, scale: str = "") -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}{{{sel}}}[{RATE}]))){scale}",
            f"p{int(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


def _panel(title: str, description: str, targets: list[tuple[str, str]], unit: str, kind: str = "timeseries") -> dict:
    panel = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }
    if kind == "timeseries":
        panel["options"] = {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}}
        panel["fieldConfig"]["defaults"]["custom"] = {"fillOpacity": 10, "lineWidth": 1}
    else:
        panel["options"] = {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}}
    return panel


def _layout(panels: list[dict]) -> list[dict]:
    """Two panels per row; stat panels are shorter."""
    x = y = 0
    row_h = 0
    for i, p in enumerate(panels, 1):
        h = 5 if p["type"] == "stat" else 8
        p["id"] = i
        p["gridPos"] = {"h": h, "w": 12, "x": x, "y": y}
        row_h = max(row_h, h)
        if x == 0:
            x = 12
        else:
            x, y, row_h = 0, y + row_h, 0
    return panels


def _dashboard(uid: str, title: str, description: str, variables: list[dict], panels: list[dict]) -> dict:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": ["kuberay-llm", "ray", "vllm"],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "timezone": "utc",
        "templating": {"list": [_var_datasource(), *variables]},
        "annotations": {"list": []},
        "panels": _layout(panels),
    }


def serving() -> dict:
    app = 'application=~"$application", namespace=~"$namespace"'
    eng = 'model_name=~"$model", ReplicaId!="", namespace=~"$namespace"'
    dep = 'application=~"$application", namespace=~"$namespace"'
    panels = [
        _panel(
            "Requests per second",
            "HTTP requests the Serve proxy answered, by application and status code (ray_serve_num_http_requests_total).",
            [
                (
                    f"sum by (application, status_code) (rate(ray_serve_num_http_requests_total{{{app}}}[{RATE}]))",
                    "{{application}} {{status_code}}",
                )
            ],
            "reqps",
        ),
        _panel(
            "Errors per second",
            "HTTP error responses, by application and error code (ray_serve_num_http_error_requests_total).",
            [
                (
                    f"sum by (application, error_code) (rate(ray_serve_num_http_error_requests_total{{{app}}}[{RATE}]))",
                    "{{application}} {{error_code}}",
                )
            ],
            "reqps",
        ),
        _panel(
            "Request latency (end to end, at the proxy)",
            "End-to-end HTTP latency measured by the Serve proxy, p50/p95/p99 (ray_serve_http_request_latency_ms).",
            _quantiles("ray_serve_http_request_latency_ms_bucket", "application", app),
            "ms",
        ),
        _panel(
            "Time to first token",
            "vLLM time to first token per model, p50/p95/p99 (ray_vllm_time_to_first_token_seconds).",
            _quantiles("ray_vllm_time_to_first_token_seconds_bucket", "model_name", eng),
            "s",
        ),
        _panel(
            "Inter-token latency",
            "vLLM time between output tokens per model, p50/p95/p99 (ray_vllm_inter_token_latency_seconds).",
            _quantiles("ray_vllm_inter_token_latency_seconds_bucket", "model_name", eng),
            "s",
        ),
        _panel(
            "Engine request latency",
            "vLLM end-to-end request latency per model, p50/p95/p99 (ray_vllm_e2e_request_latency_seconds).",
            _quantiles("ray_vllm_e2e_request_latency_seconds_bucket", "model_name", eng),
            "s",
        ),
        _panel(
            "Tokens per second",
            "Generated and prompt tokens per second per model (ray_vllm_generation_tokens_total, ray_vllm_prompt_tokens_total).",
            [
                (
                    f"sum by (model_name) (rate(ray_vllm_generation_tokens_total{{{eng}}}[{RATE}]))",
                    "generated {{model_name}}",
                ),
                (f"sum by (model_name) (rate(ray_vllm_prompt_tokens_total{{{eng}}}[{RATE}]))", "prompt {{model_name}}"),
            ],
            "short",
        ),
        _panel(
            "Queue depth",
            "Requests waiting in vLLM's scheduler and running in its batch per model, requests queued at the Serve "
            "router per deployment, and requests in flight at the proxies.",
            [
                (f"sum by (model_name) (ray_vllm_num_requests_waiting{{{eng}}})", "waiting (engine) {{model_name}}"),
                (f"sum by (model_name) (ray_vllm_num_requests_running{{{eng}}})", "running (engine) {{model_name}}"),
                (
                    f"sum by (deployment) (ray_serve_deployment_queued_queries{{{dep}}})",
                    "queued (router) {{deployment}}",
                ),
                ('sum(ray_serve_num_ongoing_http_requests{namespace=~"$namespace"})', "in flight (proxies)"),
            ],
            "short",
        ),
        _panel(
            "Engine queue time",
            "Time requests wait in vLLM's scheduler before running, p50/p95/p99 (ray_vllm_request_queue_time_seconds).",
            _quantiles("ray_vllm_request_queue_time_seconds_bucket", "model_name", eng),
            "s",
        ),
        _panel(
            "KV cache usage",
            "Fraction of the KV cache in use per replica (ray_vllm_kv_cache_usage_perc); near 1 means preemptions.",
            [
                (
                    f"max by (model_name, ReplicaId) (ray_vllm_kv_cache_usage_perc{{{eng}}})",
                    "{{model_name}} {{ReplicaId}}",
                )
            ],
            "percentunit",
        ),
        _panel(
            "Healthy replicas",
            "Healthy Serve replicas per deployment (ray_serve_deployment_replica_healthy).",
            [(f"sum by (deployment) (ray_serve_deployment_replica_healthy{{{dep}}})", "{{deployment}}")],
            "short",
        ),
        _panel(
            "Replica processing latency",
            "Time a replica spends on a request, p50/p95/p99 (ray_serve_deployment_processing_latency_ms).",
            _quantiles("ray_serve_deployment_processing_latency_ms_bucket", "deployment", dep),
            "ms",
        ),
    ]
    variables = [
        _var_query("namespace", "Namespace", "label_values(ray_serve_num_http_requests_total, namespace)"),
        _var_query("application", "Serve application", "label_values(ray_serve_num_http_requests_total, application)"),
        _var_query("model", "Model", 'label_values(ray_vllm_num_requests_running{ReplicaId!=""}, model_name)'),
    ]
    return _dashboard(
        "kuberay-llm-serving",
        "kuberay-llm / Serving (Ray Serve LLM)",
        "OpenAI-compatible serving on a RayService: request rate, errors, latency, TTFT, tokens/s, queue depth. "
        "Generated by dashboards/build.py.",
        variables,
        panels,
    )


def batch() -> dict:
    job = 'job=~"$job", namespace=~"$namespace"'
    eng = 'model_name=~"$model", ReplicaId="", namespace=~"$namespace"'
    panels = [
        _panel(
            "Rows done",
            "Rows finished so far, by status (ray_krllm_batch_rows_total).",
            [(f"sum by (job, status) (ray_krllm_batch_rows_total{{{job}}})", "{{job}} {{status}}")],
            "short",
            kind="stat",
        ),
        _panel(
            "Rows finished",
            "Rows finished so far, by status (ray_krllm_batch_rows_total). The job does not count its input "
            "ahead of time (its driver reads no rows), so there is no pending count.",
            [(f"sum by (job, status) (ray_krllm_batch_rows_total{{{job}}})", "{{job}} {{status}}")],
            "short",
            kind="stat",
        ),
        _panel(
            "Rows per second",
            "Rows finished per second, by status (ray_krllm_batch_rows_total).",
            [(f"sum by (job, status) (rate(ray_krllm_batch_rows_total{{{job}}}[{RATE}]))", "{{job}} {{status}}")],
            "short",
        ),
        _panel(
            "Tokens per second (job)",
            "Output and input tokens per second as the job counts them (ray_krllm_batch_output_tokens_total, "
            "ray_krllm_batch_input_tokens_total).",
            [
                (f"sum by (job) (rate(ray_krllm_batch_output_tokens_total{{{job}}}[{RATE}]))", "output {{job}}"),
                (f"sum by (job) (rate(ray_krllm_batch_input_tokens_total{{{job}}}[{RATE}]))", "input {{job}}"),
            ],
            "short",
        ),
        _panel(
            "Failed rows ratio",
            'Failed rows over all finished rows (ray_krllm_batch_rows_total{status="failed"}).',
            [
                (
                    f'sum by (job) (ray_krllm_batch_rows_total{{status="failed", {job}}}) / '
                    f"sum by (job) (ray_krllm_batch_rows_total{{{job}}})",
                    "{{job}}",
                )
            ],
            "percentunit",
        ),
        _panel(
            "Engine tokens per second (Ray Data LLM)",
            "Generated and prompt tokens per second of the job's vLLM engines (ray_vllm_generation_tokens_total, "
            'ray_vllm_prompt_tokens_total with ReplicaId="", as Ray Data LLM exports them).',
            [
                (
                    f"sum by (model_name) (rate(ray_vllm_generation_tokens_total{{{eng}}}[{RATE}]))",
                    "generated {{model_name}}",
                ),
                (f"sum by (model_name) (rate(ray_vllm_prompt_tokens_total{{{eng}}}[{RATE}]))", "prompt {{model_name}}"),
            ],
            "short",
        ),
        _panel(
            "Engine queue",
            "Requests waiting and running in the job's vLLM engines (ray_vllm_num_requests_waiting/running).",
            [
                (f"sum by (model_name) (ray_vllm_num_requests_waiting{{{eng}}})", "waiting {{model_name}}"),
                (f"sum by (model_name) (ray_vllm_num_requests_running{{{eng}}})", "running {{model_name}}"),
            ],
            "short",
        ),
        _panel(
            "Engine KV cache usage",
            "Fraction of each batch engine's KV cache in use (ray_vllm_kv_cache_usage_perc).",
            [(f"max by (model_name, WorkerId) (ray_vllm_kv_cache_usage_perc{{{eng}}})", "{{model_name}} {{WorkerId}}")],
            "percentunit",
        ),
        _panel(
            "Engine request latency",
            "vLLM end-to-end latency of the job's requests, p50/p95/p99 (ray_vllm_e2e_request_latency_seconds).",
            _quantiles("ray_vllm_e2e_request_latency_seconds_bucket", "model_name", eng),
            "s",
        ),
        _panel(
            "Ray Data rows out per operator",
            "Rows each Ray Data operator of the pipeline produced per second (ray_data_output_rows).",
            [
                (
                    f'sum by (dataset, operator) (rate(ray_data_output_rows{{namespace=~"$namespace"}}[{RATE}]))',
                    "{{operator}}",
                )
            ],
            "short",
        ),
    ]
    variables = [
        _var_query("namespace", "Namespace", "label_values(ray_krllm_batch_rows_total, namespace)"),
        _var_query("job", "Job", "label_values(ray_krllm_batch_rows_total, job)"),
        _var_query("model", "Model", 'label_values(ray_vllm_num_requests_running{ReplicaId=""}, model_name)'),
    ]
    return _dashboard(
        "kuberay-llm-batch",
        "kuberay-llm / Batch jobs (Ray Data LLM)",
        "Batch inference RayJobs: rows done and failed, progress, tokens/s, and the vLLM engines of the job. "
        "Generated by dashboards/build.py.",
        variables,
        panels,
    )


DASHBOARDS = {"serving.json": serving, "batch.json": batch}


def render(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a dashboard file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for name in DASHBOARDS:
        path = HERE / name
        text = render(name)
        if args.check:
            if not path.is_file() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print("out of date (run `make dashboards`): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
