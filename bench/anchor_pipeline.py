"""The anchor: a bare Ray Data LLM batch pipeline, written the way Ray's documentation shows one.

    read_json -> build_processor(vLLMEngineProcessorConfig(...)) -> write_parquet

Nothing else: no ids, no resume, no error policy, no report. ``bench/scale_bench.py`` runs it
beside our job on the same rows, and hands it the same engine settings (our job's defaults for
the device, ``jobs.engine.defaults_for``) as a JSON file:

    {"processor": {vLLMEngineProcessorConfig fields}, "map_kwargs": {...},
     "system_prompt": "...", "sampling_params": {...}, "io_num_cpus": null or CPUs per read/write task}

    python -m bench.anchor_pipeline --input DIR --output DIR --config anchor.json
"""

from __future__ import annotations

import argparse
import json


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--input", required=True, help="JSONL file or folder with rows {id, prompt}")
    p.add_argument("--output", required=True, help="Parquet output folder")
    p.add_argument("--config", required=True, help="JSON: processor config, map kwargs, system prompt, sampling")
    a = p.parse_args(argv)
    with open(a.config) as f:
        cfg = json.load(f)

    import ray
    from ray.data.llm import build_processor, vLLMEngineProcessorConfig

    system = cfg["system_prompt"]
    sampling_params = cfg["sampling_params"]
    config = vLLMEngineProcessorConfig(**cfg["processor"])
    processor = build_processor(
        config,
        preprocess=lambda row: dict(
            messages=([{"role": "system", "content": system}] if system else [])
            + [{"role": "user", "content": row["prompt"]}],
            sampling_params=sampling_params,
        ),
        postprocess=lambda row: dict(
            id=row["id"],
            prompt=row["prompt"],
            generated_text=row["generated_text"],
            num_input_tokens=row["num_input_tokens"],
            num_generated_tokens=row["num_generated_tokens"],
        ),
        preprocess_map_kwargs=cfg.get("map_kwargs") or None,
        postprocess_map_kwargs=cfg.get("map_kwargs") or None,
    )
    # Ray Data's read and write tasks take 1 CPU each by default; on a 2-core machine, beside the
    # engine's CPU, they would never be scheduled, so a CPU run gives them the light stages' share.
    io_cpus = cfg.get("io_num_cpus")
    ds = ray.data.read_json(a.input, **({"num_cpus": io_cpus} if io_cpus else {}))
    ds = processor(ds)
    ds.write_parquet(a.output, **({"ray_remote_args": {"num_cpus": io_cpus}} if io_cpus else {}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
