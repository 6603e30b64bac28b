"""Deterministic benchmark prompts: chat rows whose templated prompt is exactly N tokens.

Every row is ``{"id": "p00000", "messages": [system, user]}``, the shape the ``chat``
workload of ``jobs`` accepts as-is. The user text is seeded pseudo-words from the dummy
tokenizer's word list (one token each), so after the chat template every prompt is exactly
``input_tokens`` tokens long; ``templated_token_ids`` gives the ids raw vLLM is fed.

    python -m bench.prompts MODEL_DIR OUT.jsonl [--n 2000] [--input-tokens 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

from bench.make_dummy_model import words

SYSTEM = "You are a benchmark assistant."


def load_tokenizer(model_dir: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


def templated_token_ids(tokenizer, messages: list[dict[str, str]]) -> list[int]:
    """The prompt ids after the chat template, as Ray Data LLM's chat-template + tokenize stages make them."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def make_rows(tokenizer, n: int, input_tokens: int = 200, seed: int = 0) -> list[dict[str, Any]]:
    vocab = words()
    rng = random.Random(seed)
    # The template around the user text, rendered once (a sentinel stands for the text).
    sentinel = "\u2063SENTINEL\u2063"
    rendered = tokenizer.apply_chat_template(_messages(sentinel), tokenize=False, add_generation_prompt=True)
    head, tail = rendered.split(sentinel)
    overhead = len(templated_token_ids(tokenizer, _messages("x"))) - 1  # "x" is one byte token
    texts = []
    for _ in range(n):
        first = rng.choice(vocab)  # no leading space: one token per byte; each later word is one token
        k = max(input_tokens - overhead - len(first.encode()), 0)
        texts.append(" ".join([first] + [rng.choice(vocab) for _ in range(k)]))
    lengths = [len(ids) for ids in tokenizer([head + t + tail for t in texts], add_special_tokens=False)["input_ids"]]
    rows = []
    for i, (text, length) in enumerate(zip(texts, lengths, strict=True)):
        if length != input_tokens:  # other tokenizers (not the dummy's): adjust word by word
            text, length = _fit(tokenizer, text.split(" "), input_tokens, rng, vocab)
        rows.append({"id": f"p{i:05d}", "messages": _messages(text), "n_prompt_tokens": length})
    return rows


def _fit(tokenizer, picks: list[str], target: int, rng: random.Random, vocab: list[str]) -> tuple[str, int]:
    ids = templated_token_ids(tokenizer, _messages(" ".join(picks)))
    if len(ids) > target and len(picks) > 1:  # cut in proportion first, then word by word
        per_word = len(ids) / len(picks)
        keep = max(1, int(len(picks) - (len(ids) - target) / per_word))
        picks = picks[:keep]
        ids = templated_token_ids(tokenizer, _messages(" ".join(picks)))
    while len(ids) > target and len(picks) > 1:
        picks.pop()
        ids = templated_token_ids(tokenizer, _messages(" ".join(picks)))
    while len(ids) < target:
        picks.append(rng.choice(vocab))
        ids = templated_token_ids(tokenizer, _messages(" ".join(picks)))
    return " ".join(picks), len(ids)


def _messages(user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def write_jsonl(rows: list[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as f:
        for row in rows:
            f.write(json.dumps({"id": row["id"], "messages": row["messages"]}) + "\n")
    return path


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("out")
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--input-tokens", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    tok = load_tokenizer(a.model_dir)
    rows = make_rows(tok, a.n, a.input_tokens, a.seed)
    lengths = sorted({r["n_prompt_tokens"] for r in rows})
    write_jsonl(rows, a.out)
    print(f"{a.out}: {len(rows)} prompts, templated lengths {lengths}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
