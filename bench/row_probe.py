"""Probe (issue 11): what caps many short rows at ~1.2k rows/s on one H200 while the GPU idles.

Both pipelines of ``bench/scale_bench.py`` (our job and the anchor) feed one vLLM engine from Ray Data
LLM's engine stage: one actor whose asyncio loop sends each row to ``vllm.AsyncLLMEngine.generate`` (at
most ceil(1.1 x max_num_seqs) requests pending) and consumes its output stream. This probe takes Ray
and Ray Data out and runs vLLM alone on the same rows (the scale bench's 50-token prompts after the chat
template, 4 output tokens, ignore_eos) and the same engine settings (``jobs.engine.defaults_for``), each
case in its own process, one after the other, on one shared compile cache:

- ``llm``: ``vllm.LLM.generate`` over all rows at once (the offline engine: no asyncio per request);
- ``async``: ``vllm.AsyncLLMEngine``, one coroutine per row, a semaphore of ceil(1.1 x max_num_seqs)
  pending requests, as the engine stage does, without Ray.

If ``async`` runs near the pipelines' rate and ``llm`` far above it, the cap is vLLM's async front end
per request (one Python process per engine), not Ray Data's stages.

    python -m bench.row_probe --mode gpu --rows 100000 --case llm --case async --work W --out probe.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

T_PROCESS = time.time()


# -- one case, in its own process -----------------------------------------------------------
def child(a: argparse.Namespace) -> int:
    ids: list[list[int]] = json.loads(Path(a.ids).read_text())
    kw = json.loads(a.engine_kwargs)
    t0 = time.time()
    import vllm

    t_import = time.time() - t0
    params = vllm.SamplingParams(max_tokens=a.max_tokens, ignore_eos=True, temperature=0.0, seed=0)
    res: dict[str, Any] = {"case": a.child, "rows": len(ids), "import_s": round(t_import, 2)}
    if a.child == "llm":
        t0 = time.time()
        llm = vllm.LLM(model=a.model, seed=0, **kw)
        res["init_s"] = round(time.time() - t0, 2)
        t0 = time.time()
        outs = llm.generate([{"prompt_token_ids": x} for x in ids], params, use_tqdm=False)
        res["generate_s"] = round(time.time() - t0, 3)
        res["output_tokens"] = sum(len(o.outputs[0].token_ids) for o in outs)
    else:
        import asyncio

        async def run() -> None:
            t0 = time.time()
            engine = vllm.AsyncLLMEngine.from_engine_args(vllm.AsyncEngineArgs(model=a.model, seed=0, **kw))
            res["init_s"] = round(time.time() - t0, 2)
            pending = math.ceil(kw.get("max_num_seqs", 256) * 1.1)
            res["max_pending"] = pending
            sem = asyncio.Semaphore(pending)

            async def one(i: int, x: list[int]) -> int:
                async with sem:
                    async for out in engine.generate(
                        request_id=str(i), prompt={"prompt_token_ids": x}, sampling_params=params
                    ):
                        if out.finished:
                            return len(out.outputs[0].token_ids)
                return 0

            t0 = time.time()
            counts = await asyncio.gather(*(one(i, x) for i, x in enumerate(ids)))
            res["generate_s"] = round(time.time() - t0, 3)
            res["output_tokens"] = sum(counts)
            engine.shutdown()

        asyncio.run(run())
    res["rows_per_s"] = round(len(ids) / res["generate_s"], 1)
    res["inprocess_total_s"] = round(time.time() - T_PROCESS, 2)
    Path(a.out).write_text(json.dumps(res, indent=1))
    print(json.dumps(res), flush=True)
    return 0


# -- the harness -----------------------------------------------------------------------------
def make_ids(model_dir: str, n: int, k: int, seed: int, rows_per_file: int = 25_000) -> tuple[list[list[int]], float]:
    """Token ids of the scale bench's ``n`` rows (its GPU files: 25,000 rows each) after the chat template
    (one render, one batch tokenization; checked against the per-row path on the first 50)."""
    from bench.make_dummy_model import words
    from bench.prompts import load_tokenizer, templated_token_ids
    from bench.scale_bench import messages, row_line, shard_sizes

    t0 = time.time()
    tok = load_tokenizer(model_dir)
    vocab = words()
    texts: list[str] = []
    first = 0
    for size in shard_sizes(n, rows_per_file):  # the same rows as write_rows' files
        rng = random.Random(f"{seed}:{first}")
        texts += [json.loads(row_line(first + i, rng, vocab, k))["prompt"] for i in range(size)]
        first += size
    mark = "\x00MARK\x00"
    pre, post = tok.apply_chat_template(messages(mark), tokenize=False, add_generation_prompt=True).split(mark)
    ids = tok([pre + t + post for t in texts], add_special_tokens=False)["input_ids"]
    for t, x in zip(texts[:50], ids[:50], strict=True):
        assert x == templated_token_ids(tok, messages(t)), "batch tokenization differs from the per-row path"
    return ids, round(time.time() - t0, 1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("gpu", "cpu"), default="gpu")
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--case", action="append", choices=("llm", "async"))
    p.add_argument("--work", default="/tmp/row-probe")
    p.add_argument("--out", default="row-probe.json")
    p.add_argument("--end-by", type=float, default=0, help="Epoch s: no case goes past it")
    p.add_argument("--child", choices=("llm", "async"), help=argparse.SUPPRESS)
    p.add_argument("--ids", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--engine-kwargs", help=argparse.SUPPRESS)
    p.add_argument("--max-tokens", type=int, default=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        return child(a)

    from bench import common
    from bench.make_dummy_model import build as build_model
    from bench.scale_bench import PRESETS, engine_settings, plan_rows

    preset = dict(PRESETS[a.mode])
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    size = preset["model"].split(":", 1)[1]
    model_dir = str(build_model(work / f"model-{size}", size))
    k, lengths = plan_rows(model_dir, preset["input_tokens"])
    ids, prep_s = make_ids(model_dir, a.rows, k, 0)
    ids_path = work / f"ids-{a.rows}.json"
    ids_path.write_text(json.dumps(ids))
    kw = engine_settings(preset)["engine_kwargs"]
    result: dict[str, Any] = {
        "benchmark": "row-probe",
        "env": common.env_info(),
        "workload": {"rows": a.rows, "max_tokens": preset["max_tokens"], "model": preset["model"], **lengths},
        "engine_kwargs": kw,
        "ids_prepared_s": prep_s,
        "cases": {},
    }
    cache = {"VLLM_CACHE_ROOT": str(work / "vllm-cache")}
    cache |= {"TORCHINDUCTOR_CACHE_DIR": cache["VLLM_CACHE_ROOT"] + "/inductor"}
    cache |= {"TRITON_CACHE_DIR": cache["VLLM_CACHE_ROOT"] + "/triton"}
    if a.mode == "cpu":
        cache["VLLM_CPU_KVCACHE_SPACE"] = "1"
    for case in a.case or ["llm", "async"]:
        out = work / f"{case}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bench.row_probe", "--child", case, "--ids", str(ids_path)]
        cmd += ["--model", model_dir, "--engine-kwargs", json.dumps(kw), "--max-tokens", str(preset["max_tokens"])]
        cmd += ["--out", str(out)]
        timeout = max(30, a.end_by - time.time()) if a.end_by else None
        warm = (work / "vllm-cache").exists()
        print(f"[probe] {case}: start ({'warm' if warm else 'cold'} compile cache)", flush=True)
        with common.GpuSampler() as gpu:
            rc, wall = common.run_logged(cmd, work / f"{case}.log", common.child_env(cache), timeout=timeout)
        r: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"error": f"exit {rc}"}
        r |= {"rc": rc, "total_s": round(wall, 2), "compile_cache": "warm" if warm else "cold"}
        if rc != 0:
            r["log_tail"] = common.tail(work / f"{case}.log", 30)
        if gpu.samples:  # over the generate call: the last generate_s seconds before the engine's shutdown
            gen = r.get("generate_s") or wall
            during = [s[1] for s in gpu.samples if wall - gen - 3 <= s[0] <= wall - 2] or [s[1] for s in gpu.samples]
            r["gpu_util_mean_generating"] = round(sum(during) / len(during), 1)
            r["gpu_util_max"] = max(s[1] for s in gpu.samples)
        result["cases"][case] = r
        common.wait_gpu_free()
        shown = ("rc", "total_s", "init_s", "generate_s", "rows_per_s", "gpu_util_mean_generating", "error")
        print(f"[probe] {case}: {json.dumps({x: r.get(x) for x in shown})}", flush=True)
        common.write_json(a.out, result)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
