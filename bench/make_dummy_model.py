"""Build a weight-less Llama model folder for benchmarks: ``config.json`` + an offline tokenizer.

vLLM loads it with ``load_format="dummy"`` (random weights), so the text is meaningless
but the throughput is that of the real architecture. Nothing is downloaded.

The tokenizer is a byte-level BPE built directly (not trained), so it is identical on
every machine and every ``tokenizers`` version:

- ids 0..255: the 256 byte symbols;
- then every prefix of ``"Ġ" + word`` for a fixed, seeded list of pseudo-words, with the
  prefix-chain merges, so ``" word"`` is exactly one token;
- filler symbols up to ``vocab_size - 256``, so every id the random model can emit decodes;
- the last 256 ids: Llama-3-style special tokens (``<|begin_of_text|>`` ... reserved).

A prompt made of ``k`` words separated by spaces is therefore exactly ``k`` tokens
(+ the first word's bytes), which ``bench.prompts`` uses to hit an exact prompt length.

    python -m bench.make_dummy_model OUT_DIR [--size 8b|small|tiny]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

# Llama-3-8B's shape (meta-llama/Meta-Llama-3-8B config.json), bf16.
LLAMA3_8B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 128256,
    "max_position_embeddings": 8192,
    "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0,
    "hidden_act": "silu",
    "attention_bias": False,
    "mlp_bias": False,
    "tie_word_embeddings": False,
    "initializer_range": 0.02,
    "torch_dtype": "bfloat16",
    "use_cache": True,
}
# The CPU dry-run: same architecture, tiny (head_dim 32 keeps CPU attention kernels happy).
TINY = {
    **LLAMA3_8B,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "vocab_size": 32768,
    "max_position_embeddings": 2048,
}
# A small model: Qwen2.5-0.5B's dimensions (hidden 896, 24 layers, 14 heads of 64, 2 KV heads,
# intermediate 4864, vocab 151936, tied embeddings; 494M parameters) on the Llama architecture.
# The scale benchmark (bench/scale_bench.py) runs millions of short rows through it, where the
# per-row work around the engine, not the GPU, is the limit.
SMALL = {
    **LLAMA3_8B,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "head_dim": 64,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
SIZES = {"8b": LLAMA3_8B, "tiny": TINY, "small": SMALL}
SHAPES = {"8b": "Llama-3-8B", "tiny": "tiny", "small": "Qwen2.5-0.5B-shaped Llama"}

N_SPECIAL = 256
SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
BOS, EOS, EOT = SPECIALS[0], SPECIALS[1], SPECIALS[4]
N_WORDS = 3000
WORD_SEED = 1234

# Llama 3's chat template, shortened (no tools, no date header).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] + '<|eot_id|>' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable unicode map (what ByteLevel pre-tokenizers use)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def words(n: int = N_WORDS, seed: int = WORD_SEED) -> list[str]:
    """A fixed list of distinct lowercase pseudo-words (2-4 syllables)."""
    rng = random.Random(seed)
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "br",
        "ch",
        "dr",
        "fl",
        "gr",
        "kr",
        "pl",
        "sh",
        "st",
        "th",
        "tr",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou"]
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        w = "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def build_tokenizer_json(vocab_size: int) -> dict:
    """The tokenizer.json (HF ``tokenizers`` format) of the scheme in the module docstring."""
    b2u = bytes_to_unicode()
    vocab: dict[str, int] = {}
    for b in range(256):
        vocab[b2u[b]] = len(vocab)
    space = b2u[ord(" ")]  # "Ġ"
    merges: list[list[str]] = []
    for w in words():
        token = space
        for ch in w:
            nxt = token + ch
            if nxt not in vocab:
                vocab[nxt] = len(vocab)
                merges.append([token, ch])
            token = nxt
    n_regular = vocab_size - N_SPECIAL
    if len(vocab) > n_regular:
        raise ValueError(f"vocab_size {vocab_size} too small: the word tokens need {len(vocab) + N_SPECIAL}")
    i = 0
    while len(vocab) < n_regular:  # filler: "ĠQ<base36>", never produced by encoding, decodes fine
        vocab[f"{space}Q{_base36(i)}"] = len(vocab)
        i += 1
    specials = SPECIALS + [f"<|reserved_special_token_{i}|>" for i in range(N_SPECIAL - len(SPECIALS))]
    added = [
        {
            "id": n_regular + i,
            "content": s,
            "single_word": False,
            "lstrip": False,
            "rstrip": False,
            "normalized": False,
            "special": True,
        }
        for i, s in enumerate(specials)
    ]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": merges,
        },
    }


def _base36(i: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    s = ""
    while True:
        i, r = divmod(i, 36)
        s = digits[r] + s
        if i == 0:
            return s


def build(out_dir: str | Path, size: str = "8b") -> Path:
    """Write the model folder; returns its path. Idempotent (rewrites the same bytes)."""
    cfg = dict(SIZES[size])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab_size = cfg["vocab_size"]
    n_regular = vocab_size - N_SPECIAL
    cfg.update(bos_token_id=n_regular, eos_token_id=[n_regular + 1, n_regular + 4])
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (out / "generation_config.json").write_text(
        json.dumps({"bos_token_id": n_regular, "eos_token_id": [n_regular + 1, n_regular + 4]}, indent=2) + "\n"
    )
    (out / "tokenizer.json").write_text(json.dumps(build_tokenizer_json(vocab_size), ensure_ascii=False))
    (out / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": BOS,
                "eos_token": EOT,
                "pad_token": EOS,
                "clean_up_tokenization_spaces": False,
                "model_max_length": cfg["max_position_embeddings"],
                "chat_template": CHAT_TEMPLATE,
            },
            indent=2,
        )
        + "\n"
    )
    (out / "special_tokens_map.json").write_text(
        json.dumps({"bos_token": BOS, "eos_token": EOT, "pad_token": EOS}, indent=2) + "\n"
    )
    (out / "DUMMY_WEIGHTS.txt").write_text(
        f"No weights: load with load_format='dummy'. Shape: {size} ({SHAPES[size]}).\n"
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out_dir")
    p.add_argument("--size", choices=sorted(SIZES), default="8b")
    a = p.parse_args(argv)
    print(build(a.out_dir, a.size))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
