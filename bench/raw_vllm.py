"""Raw vLLM offline baseline: ``LLM(...)`` + ``LLM.generate`` on the benchmark prompts, timed.

Run as its own process (the harness times it from outside too, for start to finish):

    python -m bench.raw_vllm --model DIR --prompts P.jsonl --max-tokens 128 --out raw.json \
        [--engine-kwargs '{"load_format": "dummy"}']

The prompts go through the model's chat template and tokenizer first (as Ray Data LLM's
chat-template and tokenize stages do), then ``LLM.generate`` gets the token ids.
"""

from __future__ import annotations

import argparse
import json
import time

T_PROCESS = time.time()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--prompts", required=True)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--engine-kwargs", default="{}", help="JSON object of vllm.LLM keyword arguments.")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)

    from bench.prompts import read_jsonl, templated_token_ids

    t_import0 = time.time()
    from vllm import LLM, SamplingParams

    try:
        from vllm.inputs import TokensPrompt
    except ImportError:  # pragma: no cover - older layouts
        TokensPrompt = dict  # noqa: N806
    t_import = time.time() - t_import0

    kwargs = {"seed": a.seed, **json.loads(a.engine_kwargs)}
    t_init0 = time.time()
    llm = LLM(model=a.model, **kwargs)
    t_init = time.time() - t_init0

    t_prep0 = time.time()
    tok = llm.get_tokenizer()
    rows = read_jsonl(a.prompts)
    prompts = [TokensPrompt(prompt_token_ids=templated_token_ids(tok, r["messages"])) for r in rows]
    params = SamplingParams(max_tokens=a.max_tokens, ignore_eos=True, temperature=0.0, seed=a.seed)
    t_prep = time.time() - t_prep0

    t_gen0 = time.time()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    t_gen = time.time() - t_gen0

    out_tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    in_tokens = sum(len(o.prompt_token_ids or []) for o in outputs)
    cfg = llm.llm_engine.vllm_config
    result = {
        "rows": len(outputs),
        "input_tokens": in_tokens,
        "output_tokens": out_tokens,
        "import_s": round(t_import, 3),
        "init_s": round(t_init, 3),
        "prepare_s": round(t_prep, 3),
        "generate_s": round(t_gen, 3),
        "inprocess_total_s": round(time.time() - T_PROCESS, 3),
        "generate_output_tok_s": round(out_tokens / t_gen, 1) if t_gen else None,
        "engine_kwargs": kwargs,
        "resolved": {
            "max_num_seqs": cfg.scheduler_config.max_num_seqs,
            "max_num_batched_tokens": cfg.scheduler_config.max_num_batched_tokens,
            "max_model_len": cfg.model_config.max_model_len,
            "enable_chunked_prefill": getattr(cfg.scheduler_config, "enable_chunked_prefill", None),
            "async_scheduling": getattr(cfg.scheduler_config, "async_scheduling", None),
            "enable_prefix_caching": getattr(cfg.cache_config, "enable_prefix_caching", None),
            "enforce_eager": cfg.model_config.enforce_eager,
        },
        "sample_text": outputs[0].outputs[0].text[:80] if outputs else "",
    }
    with open(a.out, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps({k: v for k, v in result.items() if k != "engine_kwargs"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
