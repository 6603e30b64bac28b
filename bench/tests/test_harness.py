"""The GPU benchmark harness (bench/): it imports, and its CPU-side pieces work without vLLM or Ray.

The harness itself runs on GPUs through the device tool. These tests, and the vLLM dry run in
bench/tests/test_dry_run.py, check the bench, not the product: `make test-bench` runs them, CI does not.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
from pathlib import Path

import pytest

from bench import batch_bench, common, report, scale_bench, serve_bench
from bench.make_dummy_model import build
from bench.prompts import load_tokenizer, make_rows, templated_token_ids


# The modules this file does not import already (they run on the GPU machine; here they must import).
@pytest.mark.parametrize("module", ["bench.raw_vllm", "bench.serve_ours", "bench.anchor_pipeline", "bench.row_probe"])
def test_modules_import(module):
    importlib.import_module(module)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return build(tmp_path_factory.mktemp("model") / "tiny", "tiny")


def test_dummy_models_have_the_llama3_8b_shape(tmp_path):
    cfg = json.loads((build(tmp_path / "m8b", "8b") / "config.json").read_text())
    assert (
        cfg["hidden_size"],
        cfg["num_hidden_layers"],
        cfg["num_attention_heads"],
        cfg["num_key_value_heads"],
        cfg["intermediate_size"],
        cfg["vocab_size"],
        cfg["max_position_embeddings"],
        cfg["torch_dtype"],
    ) == (4096, 32, 32, 8, 14336, 128256, 8192, "bfloat16")
    tok = load_tokenizer(tmp_path / "m8b")
    assert len(tok) == 128256  # every id the random model emits decodes
    assert tok.decode([127999, 128000]) and not list((tmp_path / "m8b").glob("*.safetensors"))


def test_prompts_are_exact_and_deterministic(tiny_model):
    tok = load_tokenizer(tiny_model)
    a = make_rows(tok, 12, input_tokens=200, seed=0)
    b = make_rows(tok, 12, input_tokens=200, seed=0)
    assert a == b
    assert {len(templated_token_ids(tok, r["messages"])) for r in a} == {200}
    assert len({r["messages"][1]["content"] for r in a}) == 12
    assert cfg_head_dim(tiny_model) >= 32


def cfg_head_dim(model: Path) -> int:
    return json.loads((model / "config.json").read_text())["head_dim"]


def test_job_spec_is_valid_for_the_jobs_package(tiny_model, tmp_path):
    from jobs.spec import JobSpec
    from llmkit.config import apply_overrides

    spec = batch_bench.job_spec(
        "job-tuned", str(tiny_model), tmp_path / "p.jsonl", batch_bench.PRESETS["gpu"], tmp_path / "out"
    )
    for _name, (_kind, sets) in batch_bench.NAMED_CASES.items():
        JobSpec.from_dict(apply_overrides(json.loads(json.dumps(spec)), sets))
    parsed = JobSpec.from_dict(apply_overrides(spec, batch_bench.TUNED_SETS))
    assert (
        parsed.engine.batch_size == 128
        and parsed.engine.max_concurrent_batches == 16
        and parsed.engine.engine_kwargs["max_num_seqs"] == 1024
    )
    assert parsed.sampling.model_extra == {"ignore_eos": True}


def test_serve_catalog_is_valid_for_serve_apps(tiny_model):
    from serve_apps.catalog import ModelCatalog

    ModelCatalog.from_dict(
        {
            "models": [
                {  # as bench.serve_bench.start_server writes it (LLMConfig's fields, 82cd1a4)
                    "model_loading_config": {"model_id": serve_bench.MODEL_ID, "model_source": str(tiny_model)},
                    "engine_kwargs": {"load_format": "dummy", "seed": 0},
                }
            ],
            "device": "gpu",
        }
    )


def test_case_and_server_parsing():
    assert batch_bench.parse_case("raw") == ("raw", "raw", [])
    assert batch_bench.parse_case("x=engine.batch_size=8;engine.concurrency=2") == (
        "x",
        "job",
        ["engine.batch_size=8", "engine.concurrency=2"],
    )
    # The project's defaults, on a Ray cluster that is already up (started by the harness).
    assert batch_bench.parse_case("job-cluster") == ("job-cluster", "job", [])
    assert "job-cluster" in batch_bench.ON_RUNNING_CLUSTER
    assert serve_bench.parse_server("ours-tput")[2] == {"RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
    assert serve_bench.parse_server("v=A=1;B=2") == ("v", "ours", {"A": "1", "B": "2"})
    with pytest.raises(SystemExit):
        batch_bench.parse_case("nope")


def test_batch_timings_from_a_stamped_driver_log(tmp_path):
    log = tmp_path / "job.log"
    log.write_text(
        "1763805610.000 | \x1b[36m(MapWorker(MapBatches(vLLMEngineStageUDF)) pid=111)\x1b[0m [vLLM] Elapsed time for "
        "batch aa11 with size 64: 8.0\n"
        "1763805612.000 | 2026-11-22 10:00:12,000 INFO jobs.report: job bench progress: 64/160 rows\n"
        "1763805614.500 | \x1b[36m(MapWorker(MapBatches(vLLMEngineStageUDF)) pid=111)\x1b[0m [vLLM] Elapsed time for "
        "batch bb22 with size 64: 10.5\n"
        "1763805615.000 | (MapWorker(MapBatches(vLLMEngineStageUDF)) pid=222) [vLLM] Elapsed time for batch cc33 "
        "with size 32: 5.0\n"
    )
    batches = common.ray_batch_timings(log)
    assert [b["size"] for b in batches] == [64, 64, 32]
    w = common.generation_window(batches)
    assert w["seconds"] == pytest.approx(13.0) and w["rows"] == 160
    assert w["per_engine"]["111"]["seconds"] == pytest.approx(12.5)
    assert w["per_engine"]["222"]["seconds"] == pytest.approx(5.0)


def test_job_startup_phases_and_engine_init_from_the_logs(tmp_path):
    """The lines a GPU job's driver log carries (H200 run, trimmed), and what they add up to."""
    actor = "\x1b[36m(MapWorker(MapBatches(vLLMEngineStageUDF)) pid=4351)\x1b[0m"
    log = tmp_path / "job.log"
    log.write_text(
        "100.000 | 2026-11-22 16:02:10,330 INFO jobs.io: reading prompts.jsonl (jsonl)\n"
        "107.500 | 2026-11-22 16:02:17,867\tINFO worker.py:2015 -- Started a local Ray instance.\n"
        "110.000 | (MapWorker(MapBatches(ChatTemplateUDF)) pid=4357) Downloading model and tokenizer.\n"
        "117.000 | 2026-11-22 16:02:28,985\tINFO streaming_executor.py:214 -- Starting execution of Dataset d_0.\n"
        f"135.000 | {actor} Downloading model and tokenizer.\n"
        f"138.000 | {actor} WARNING [system_utils.py:157] We must use the `spawn` multiprocessing start method.\n"
        f"152.500 | {actor} (EngineCore pid=4890) INFO [core.py:116] Initializing a V1 LLM engine (v0.26.0)\n"
        f"193.000 | {actor} (EngineCore pid=4890) INFO [core.py:340] init engine (profile, create kv cache, "
        "warmup model) took 37.12 s (compilation: 17.33 s)\n"
    )
    phases = common.job_startup_phases(log, launched=98.0, first_request=193.5)
    assert phases == {
        "ray_start": 9.5,
        "driver_imports_and_processor_build": 9.5,
        "engine_actor_start_and_imports": 18.0,  # the engine stage's line, not the chat template's
        "engine_actor_init": 3.0,
        "engine_core_spawn_and_imports": 14.5,
        "engine_init": 40.5,
        "engine_ready_to_first_request": 0.5,
    }
    assert sum(phases.values()) == pytest.approx(193.5 - 98.0)
    assert common.vllm_init_figures(log) == {"engine_init_s": 37.12, "torch_compile_s": 17.33}
    assert common.job_startup_phases(tmp_path / "missing.log", 0.0, None) == {}


def test_run_logged_stamps_lines(tmp_path):
    import sys

    rc, wall = common.run_logged(
        [sys.executable, "-c", "print('a'); print('b')"], tmp_path / "x.log", common.child_env(), timeout=60, stamp=True
    )
    lines = (tmp_path / "x.log").read_text().splitlines()
    assert rc == 0 and wall > 0 and [ln.split(" | ", 1)[1] for ln in lines] == ["a", "b"]
    assert abs(float(lines[0].split(" | ")[0]) - time.time()) < 120


def _fake_openai_server(port_holder: list, stop: threading.Event) -> None:
    """A tiny streaming /v1/chat/completions (what vLLM sends, 4 tokens) on an ephemeral port."""
    import asyncio

    from aiohttp import web

    async def chat(request):
        body = await request.json()
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        n = body["max_tokens"]
        await resp.write(b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n')
        for _ in range(n):
            await asyncio.sleep(0.002)
            await resp.write(b'data: {"choices":[{"delta":{"content":" tok"}}]}\n\n')
        usage = {"prompt_tokens": 200, "completion_tokens": n}
        await resp.write(f'data: {{"choices":[],"usage":{json.dumps(usage)}}}\n\n'.encode())
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def main():
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_holder.append(site._server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await runner.cleanup()

    asyncio.run(main())


def test_load_generator_against_a_fake_streaming_server(tiny_model):
    port: list[int] = []
    stop = threading.Event()
    t = threading.Thread(target=_fake_openai_server, args=(port, stop), daemon=True)
    t.start()
    for _ in range(100):
        if port:
            break
        time.sleep(0.05)
    try:
        rows = make_rows(load_tokenizer(tiny_model), 4, seed=1)
        res = serve_bench.run_load(f"http://127.0.0.1:{port[0]}", serve_bench.payloads_for(rows, 12, 5), 4, 2)
    finally:
        stop.set()
        t.join(timeout=5)
    assert res["ok"] == 12 and res["errors"] == 0
    assert res["output_tokens"] == 60 and res["tokens_per_request"] == [5, 5]
    assert res["ttft_ms"]["p50"] > 0 and res["output_tok_s"] > 0


def test_report_tables_and_png(tmp_path):
    env = common.env_info()
    batch = {
        "benchmark": "batch",
        "label": "a",
        "env": env,
        "workload": {"prompts": 2000, "input_tokens_per_prompt": [200, 200], "max_tokens": 128},
        "cases": {
            "raw": {
                "kind": "raw",
                "total_s": 100.0,
                "startup_s": 80.0,
                "generate_s": 20.0,
                "steady_output_tok_s": 12800.0,
                "total_output_tok_s": 2560.0,
                "output_tokens": 256000,
                "engine_init_s": 40.0,
            },
            "job": {
                "kind": "job",
                "total_s": 110.0,
                "startup_s": 85.0,
                "generate_s": 21.0,
                "steady_output_tok_s": 12190.0,
                "total_output_tok_s": 2327.0,
                "output_tokens": 256000,
                "engine_init_s": 38.0,
                "startup_phases_s": {"ray_start": 8.0, "engine_core_spawn_and_imports": 14.5, "engine_init": 41.0},
            },
            "job-x": {"kind": "job", "skipped": "deadline"},
        },
    }
    batch["comparison"] = batch_bench.compare(batch["cases"])
    assert batch["comparison"]["job"]["total_ratio"] == pytest.approx(0.909, abs=1e-3)
    # Start-up 5 s longer, though vLLM's own engine init was 2 s shorter: 7 s lie outside it.
    assert batch["comparison"]["job"]["startup_gap_s"] == 5.0
    assert batch["comparison"]["job"]["gap_outside_engine_init_s"] == 7.0
    serve = {
        "benchmark": "serve",
        "label": "b",
        "env": env,
        "workload": {"requests": 1024, "concurrency": 128, "input_tokens": 200, "max_tokens": 128},
        "servers": {
            name: {
                "kind": kind,
                "load": {"output_tok_s": tps, "ttft_ms": {"p50": t50, "p90": 2 * t50}, "tpot_ms": {"p50": 9.0}},
                "sequential": {"output_tok_s": 130.0},
            }
            for name, kind, tps, t50 in (("bare", "bare", 9000.0, 700.0), ("ours", "ours", 9300.0, 760.0))
        },
    }
    serve["comparison"] = serve_bench.compare(serve["servers"])
    assert serve["comparison"]["ours"]["meets"] == {"throughput_ratio": True, "ttft_p50_ratio": True}
    scale = {**batch, "label": "c", "cases": {"job": {"kind": "job", "rows": 16000, "total_s": 800.0,
                                                      "total_output_tok_s": 2600.0}}}  # fmt: skip
    for name, res in (("batch-gpu-x", batch), ("serve-gpu", serve), ("batch-scale", scale)):
        common.write_json(tmp_path / f"{name}.json", res)
    table = report.build(tmp_path)
    # The long run's start to finish against one request at a time to our app (130 tok/s).
    assert "| Batch `job` on 16000 prompts (batch-scale) vs one request at a time to `ours`" in table
    assert "| ≥ 20× | 20.00× | yes |" in table
    assert "| job | 110.0 |" in table and "| ours | 9,300 |" in table and "skipped (deadline)" in table
    assert "| vLLM engine core: spawned process, imports | 14.5 |" in table and "+7.0 s of it outside" in table
    assert (tmp_path / "batch-gpu-x.png").stat().st_size > 1000 and (tmp_path / "serve-gpu.png").stat().st_size > 1000


def _job_case(name: str, total: float, tok_s: float, engines: int, rows: int = 16000) -> dict:
    per = {str(i): {"rows": rows // engines, "seconds": 10.0} for i in range(engines)}
    return {
        "case": name,
        "kind": "job",
        "total_s": total,
        "rows": rows,
        "steady_output_tok_s": tok_s,
        "sum_engine_output_tok_s": tok_s * 1.02 if engines > 1 else None,
        "generation_window": {"per_engine": per},
    }


def test_scaling_and_rerun_comparisons(tmp_path):
    cases = {
        "raw": {"case": "raw", "kind": "raw", "total_s": 100.0, "steady_output_tok_s": 15000.0},
        "raw-rerun": {"case": "raw-rerun", "kind": "raw", "total_s": 60.0, "steady_output_tok_s": 15000.0},
        "job": _job_case("job", 300.0, 15000.0, 1),
        "job-rerun": _job_case("job-rerun", 80.0, 15100.0, 1),
        "job-2gpus": _job_case("job-2gpus", 200.0, 29000.0, 2),
        "job-4gpus": _job_case("job-4gpus", 150.0, 54000.0, 4),
        "job-other-rows": _job_case("job-other-rows", 150.0, 54000.0, 4, rows=2000),
    }
    comp = batch_bench.compare(cases)
    assert (
        comp["job-rerun"]["total_ratio"] == pytest.approx(1.25)
        and comp["job-rerun"]["total_ratio_vs_raw_rerun"] == 0.75
    )
    assert comp["job-2gpus"]["steady_ratio_vs_1gpu"] == pytest.approx(1.933, abs=1e-3)
    assert comp["job-2gpus"]["meets"] == {"steady_ratio_vs_1gpu": True} and comp["job-2gpus"]["baseline"] == "job"
    assert (
        comp["job-4gpus"]["steady_ratio_vs_1gpu"] == pytest.approx(3.6)
        and not comp["job-4gpus"]["meets"]["steady_ratio_vs_1gpu"]
    )
    assert "job-other-rows" not in comp, "no single-engine run of the same rows to compare with"
    # Parts run side by side on separate GPUs merge into one result with the comparisons redone.
    for part, names in (("s1", ["job"]), ("s2", ["job-2gpus"]), ("s4", ["job-4gpus"])):
        common.write_json(tmp_path / f"{part}.json", {"label": part, "env": {}, "cases": {n: cases[n] for n in names}})
    out = tmp_path / "merged.json"
    batch_bench.main(["--merge", str(out), *(str(tmp_path / f"{p}.json") for p in ("s1", "s2", "s4")), "--label", "c"])
    merged = json.loads(out.read_text())
    assert set(merged["comparison"]) == {"job-2gpus", "job-4gpus"} and merged["cases"]["job"]["part"] == "s1.json"
    table = report.targets_table({"batch-scale": merged})
    assert "4 GPUs ÷ 1 GPU | ≥ 3.7× | 3.60× | **no**" in table and "2 GPUs ÷ 1 GPU | ≥ 1.9× | 1.93× | yes" in table


def test_side_by_side_cases_see_only_their_gpus(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,2")
    assert common.visible_gpus() == ["1", "2"] and common._smi_select() == ["-i", "1,2"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert common._smi_select() == []


def test_serve_results_merge(tmp_path):
    def server(kind, tps, t50):
        return {"kind": kind, "load": {"output_tok_s": tps, "ttft_ms": {"p50": t50}}}

    common.write_json(tmp_path / "b.json", {"env": {}, "servers": {"bare": server("bare", 9000.0, 400.0)}})
    common.write_json(tmp_path / "h.json", {"env": {}, "servers": {"ours-haproxy": server("ours", 9450.0, 380.0)}})
    serve_bench.main(["--merge", str(tmp_path / "m.json"), str(tmp_path / "b.json"), str(tmp_path / "h.json")])
    merged = json.loads((tmp_path / "m.json").read_text())
    assert merged["comparison"]["ours-haproxy"]["throughput_ratio"] == 1.05


# -- the scale benchmark (bench/scale_bench.py) ----------------------------------------------
def test_scale_rows_words_and_shards(tmp_path):
    # Dummy tokenizer: 22 tokens of template + one per word -> 28 words for 50 tokens.
    assert scale_bench.words_per_row(23, 43, 21, 50) == 28
    assert scale_bench.words_per_row(60, 80, 21, 50) == 1  # never fewer than one word
    assert scale_bench.shard_sizes(25, 10) == [10, 10, 5] and scale_bench.shard_sizes(20, 10) == [10, 10]
    info = scale_bench.write_rows(tmp_path / "rows", 25, 5, 0, 10)
    assert info["files"] == 3 and (tmp_path / "rows.json").exists()
    files = sorted((tmp_path / "rows").glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [r["id"] for r in rows] == [f"r{i:09d}" for i in range(25)]
    assert all(r["prompt"].startswith(" ") and len(r["prompt"].split()) == 5 for r in rows)
    first = files[0].read_text()
    assert scale_bench.write_rows(tmp_path / "rows", 25, 5, 0, 10) == info  # kept, not rewritten
    scale_bench.write_rows(tmp_path / "again", 25, 5, 0, 10)
    assert (tmp_path / "again" / "part-00000.jsonl").read_text() == first  # seeded
    assert not list((tmp_path / "rows").glob("*.json"))  # nothing but rows where the readers look


def test_row_probe_ids_are_the_scale_rows(tiny_model, tmp_path):
    from bench.row_probe import make_ids

    ids, _ = make_ids(str(tiny_model), 25, 5, 0, rows_per_file=10)
    scale_bench.write_rows(tmp_path / "rows", 25, 5, 0, 10)
    files = sorted((tmp_path / "rows").glob("*.jsonl"))
    rows = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    tok = load_tokenizer(tiny_model)
    assert ids == [templated_token_ids(tok, scale_bench.messages(r["prompt"])) for r in rows]


def test_scale_prompts_are_about_50_tokens(tiny_model):
    k, lengths = scale_bench.plan_rows(str(tiny_model), 50)
    assert k > 20 and lengths["prompt_tokens_min"] == lengths["prompt_tokens_max"] == 50


def test_driver_rss_is_read_from_proc_status():
    status = "Name:\tpython\nVmPeak:\t  900 kB\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nRssAnon:\t  768 kB\nThreads:\t4\n"
    got = scale_bench.parse_proc_status(status)
    assert got == {"VmPeak": 900 * 1024, "VmHWM": 2 << 20, "VmRSS": 1 << 20, "RssAnon": 768 * 1024}
    sampler = scale_bench.DriverSampler(interval_s=0.02, series_every_s=0.01, load_every_s=0.01)
    import os

    sampler.start(os.getpid())
    time.sleep(0.2)
    got = sampler.stop()
    assert got["rss_samples"] > 2 and got["peak_rss_mib"] >= got["peak_rss_sampled_mib"] > 10
    assert got["rss_series_mib"] and got["loadavg_1m_mean"] is not None
    assert 0 < got["peak_rss_anon_mib"] < got["peak_rss_mib"] and got["rss_file_at_sampled_peak_mib"] > 0


def test_downsample_keeps_ends_and_peak():
    series = [[float(i), float(i % 97)] for i in range(5000)]
    series[1234][1] = 1e6
    small = scale_bench.downsample(series, 100)
    assert len(small) <= 103 and small[0] == series[0] and small[-1] == series[-1] and [1234.0, 1e6] in small


def _scale_run(kind, n, mib, seconds, rows_out=None):
    return {
        "run": f"{kind}-{n}",
        "kind": kind,
        "rows_in": n,
        "rows_out": n if rows_out is None else rows_out,
        "total_s": seconds,
        "rows_per_s": round((n if rows_out is None else rows_out) / seconds, 1),
        "steady_rows_per_s": n / (seconds / 2),
        "peak_rss_bytes": int(mib * 2**20),
        "peak_rss_mib": mib,
    }


def test_scale_comparison_and_memory_verdict():
    runs = {
        r["run"]: r
        for r in (
            _scale_run("ours", 20_000, 500, 100),
            _scale_run("ours", 200_000, 560, 500),
            _scale_run("anchor", 200_000, 900, 550),
            _scale_run("anchor", 20_000, 450, 90),
            _scale_run("ours", 2_000_000, 9000, 900, rows_out=10),  # incomplete: ignored
        )
    }
    c = scale_bench.compare(runs)
    assert c["rate"]["ours-200000"]["ratio"] == round(400 / (200_000 / 550), 3) and c["rate"]["ours-200000"]["meets"]
    assert not c["rate"]["ours-20000"]["meets"]  # 200 rows/s against 222
    mem = c["memory"]["ours"]
    assert (
        mem["rows"] == [20_000, 200_000]
        and mem["growth"] == 0.12
        and mem["meets"]
        == {
            "growth": True,
            "peak_rss_mib": True,
        }
    )
    assert mem["bytes_per_row"] == round(60 * 2**20 / 180_000, 2)
    assert 560 < mem["extrapolated_peak_rss_mib"] < 560 + 60 * 100_000_000 / 180_000 + 1
    assert c["memory"]["anchor"]["meets"]["growth"] is False  # +100%
    # Sizes only 5x apart cannot show flatness at 10x.
    near = {k: v for k, v in runs.items() if k in ("ours-20000",)} | {
        "ours-100000": _scale_run("ours", 100_000, 510, 300)
    }
    assert scale_bench.compare(near)["memory"]["ours"]["meets"]["growth"] is False
    # With 20k, 200k and 2M rows, the verdict compares the two sizes 10x apart at the top.
    three = runs | {"ours-2000000": _scale_run("ours", 2_000_000, 570, 3000)}
    assert scale_bench.compare(three)["memory"]["ours"]["rows"] == [200_000, 2_000_000]
    text = scale_bench.report({"scale-x": {"env": {"cpu_count": 2}, "workload": {}, "runs": runs, "comparison": c}})
    assert "| ours-200000 | 200,000 |" in text and "**missed**" in text and "results/scale-x.json" in text


def test_scale_run_parsing_and_merge(tmp_path):
    assert scale_bench.parse_run("ours:2M") == ("ours", 2_000_000)
    assert scale_bench.parse_run("anchor:200k") == ("anchor", 200_000)
    assert scale_bench.parse_run("ours:1500") == ("ours", 1500)
    with pytest.raises(SystemExit):
        scale_bench.parse_run("raw:10")
    a = {"runs": {"ours-20000": _scale_run("ours", 20_000, 500, 100)}, "env": {"date": "a"}}
    b = {"runs": {"ours-200000": _scale_run("ours", 200_000, 520, 400)}, "env": {"date": "b"}, "inputs": {"1": {}}}
    (tmp_path / "a.json").write_text(json.dumps(a))
    (tmp_path / "b.json").write_text(json.dumps(b))
    merged = scale_bench.merge(str(tmp_path / "m.json"), [str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    assert set(merged["runs"]) == {"ours-20000", "ours-200000"} and merged["inputs"] == {"1": {}}
    assert merged["comparison"]["memory"]["ours"]["growth"] == 0.04


def test_scale_job_spec_and_anchor_use_the_same_engine_settings(tiny_model, tmp_path):
    from jobs.engine import defaults_for
    from jobs.spec import JobSpec

    for mode, preset in scale_bench.PRESETS.items():
        spec = JobSpec.from_dict(
            scale_bench.job_spec(preset, str(tiny_model), tmp_path / "rows", tmp_path / "out", f"scale-{mode}")
        )
        anchor = scale_bench.anchor_config(preset, str(tiny_model))
        d = defaults_for(preset["device"])
        proc = anchor["processor"]
        assert proc["engine_kwargs"] == {**d.engine_kwargs, **spec.engine.engine_kwargs}
        assert (proc["batch_size"], proc["max_concurrent_batches"]) == (d.batch_size, d.max_concurrent_batches)
        assert anchor["sampling_params"]["max_tokens"] == spec.sampling.max_tokens == preset["max_tokens"]
        assert spec.system_prompt == anchor["system_prompt"] == "" and spec.input.id_column == "id"
        assert ("placement_group_config" in proc) == (preset["device"] == "cpu")


def test_count_parquet_rows(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert scale_bench.count_parquet_rows(tmp_path / "none") is None
    (tmp_path / "o" / "data").mkdir(parents=True)
    pq.write_table(pa.table({"x": [1, 2, 3]}), tmp_path / "o" / "data" / "a.parquet")
    pq.write_table(pa.table({"x": [4]}), tmp_path / "o" / "b.parquet")
    (tmp_path / "o" / "c.parquet").write_text("half-written")
    assert scale_bench.count_parquet_rows(tmp_path / "o") == 4


def test_scale_retries_only_a_failed_ray_start():
    tail = "Exception: The current node timed out during startup. This could happen because ..."
    assert scale_bench.ray_start_failed({"error": "exit 1", "log_tail": tail})
    assert not scale_bench.ray_start_failed({"error": "exit 1", "log_tail": "ValueError: bad row"})
    assert not scale_bench.ray_start_failed({"log_tail": tail})
