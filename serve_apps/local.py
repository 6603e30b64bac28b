"""Run the serving app on local Ray (``make serve``) and query it (``make query``)."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from serve_apps.app import AppArgs, build_app

logger = logging.getLogger(__name__)

APP_NAME = "llm"
DEFAULT_CATALOG = Path(__file__).with_name("examples") / "local-cpu.yaml"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# Offline by default: the builtin model needs no network, and nothing else should try.
# RAY_SERVE_THROUGHPUT_OPTIMIZED: measured on an H100, 0.61x -> 0.95x of a bare vLLM server's
# throughput and 1.90x -> 0.78x its median TTFT (bench/README.md); the chart sets it too.
LOCAL_ENV = {
    "HF_HUB_OFFLINE": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "VLLM_NO_USAGE_STATS": "1",
    "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1",
}


def start(
    args: dict[str, Any] | AppArgs,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    num_cpus: int | None = None,
) -> str:
    """Deploy the app and wait until it serves; returns the /v1 base URL. Ray: the cluster ``RAY_ADDRESS``
    names, else the one this process is connected to, else a fresh private local one."""
    import ray
    from ray import serve

    for key, value in LOCAL_ENV.items():
        os.environ.setdefault(key, value)
    app_args = args if isinstance(args, AppArgs) else AppArgs.from_dict(dict(args), source="app args")
    catalog = app_args.load_catalog()
    batches = app_args.batches
    if batches.enabled and batches.runner == "local" and not batches.local.http_url:
        # Batch jobs (engine http) send their requests to this very endpoint.
        reach = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        batches.local.http_url = f"http://{reach}:{port}/v1"
    if not ray.is_initialized() and os.environ.get("RAY_ADDRESS"):
        # A cluster the user names (as `python -m jobs` does): deploy there.
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
    if not ray.is_initialized():
        # Logical CPUs: each CPU-mode model takes a 2-CPU placement group (replica + engine);
        # these are scheduling tokens, not cores, so a small machine can still hold two models.
        # One more for a batch job's light Ray Data stages when the Batch API is on.
        cpus = num_cpus or max(os.cpu_count() or 1, 2 * len(catalog.models) + 1 + int(batches.enabled))
        # address="local": a private cluster, not another `ray start` found on this machine.
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    elif catalog.device == "cpu" and ray.cluster_resources().get("CPU", 0) < 2 * len(catalog.models):
        logger.warning(
            "the running Ray cluster has %s CPUs; %d CPU-mode models need %d: replicas may never start",
            ray.cluster_resources().get("CPU", 0),
            len(catalog.models),
            2 * len(catalog.models),
        )
    serve.start(http_options={"host": host, "port": port})
    t0 = time.monotonic()
    serve.run(build_app(app_args), name=APP_NAME, route_prefix="/")
    logger.info("app %r running after %.0f s", APP_NAME, time.monotonic() - t0)
    return f"http://{host}:{port}/v1"


def stop() -> None:
    import ray
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()


DEFAULT_BATCHES_ROOT = ".cache/batches"


def serve_forever(catalog_path: str, host: str, port: int, batches_root: str | None = DEFAULT_BATCHES_ROOT) -> int:
    """``make serve``: the catalog, with the Batch API on (files and state under ``batches_root``)."""
    args: dict[str, Any] = {"catalog_path": catalog_path}
    if batches_root:
        args["batches"] = {"enabled": True, "runner": "local", "storage_root": batches_root}
    base_url = start(args, host=host, port=port)
    print(f"\nServing {catalog_path} at {base_url} (Ctrl-C to stop). Try: make query", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    print("stopping...", flush=True)
    stop()
    return 0


def default_api_key() -> str:
    """The key ``make query`` sends: KRLLM_API_KEY, else the first of KRLLM_API_KEYS, else a dummy."""
    key = os.environ.get("KRLLM_API_KEY")
    if not key:
        key = os.environ.get("KRLLM_API_KEYS", "").split(",")[0].strip()
    return key or "no-key"


def query(
    base_url: str, prompt: str, model: str | None, api_key: str | None, max_tokens: int, temperature: float = 0.0
) -> int:
    """Stream one chat completion with the stock openai client (the seed's example)."""
    from openai import OpenAI

    client = OpenAI(base_url=base_url, api_key=api_key or default_api_key())
    model = model or client.models.list().data[0].id
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        max_tokens=max_tokens,
        temperature=temperature,
    )
    print(f"[{model}] ", end="", flush=True)
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            print(chunk.choices[0].delta.content, end="", flush=True)
    print()
    return 0
