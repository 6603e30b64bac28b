"""The parameter names an engine accepts, so that a job spec's misspelled key fails validation, not every row.

- ``kind: vllm`` sampling keys: the fields of vLLM's ``SamplingParams`` (Ray Data LLM builds one per row).
- ``engine_kwargs``: the fields of vLLM's ``AsyncEngineArgs`` (``EngineArgs`` plus the async
  engine's own), which Ray Data LLM builds its engine from.
- ``kind: http`` sampling keys: the OpenAI chat-completion body parameters, plus vLLM's extra
  sampling parameters, since the server may be vLLM (ours is). Both are a snapshot here, widened by
  the installed ``openai`` package's request type and vLLM's ``SamplingParams`` where they are
  installed; the http check needs neither.

vLLM's names come from vLLM itself, never from a list here. Importing vLLM takes seconds (it
imports torch), so the names are first read from the source of ``vllm/sampling_params.py`` and
``vllm/engine/arg_utils.py`` (parsed, not imported): a spec whose keys are all there validates in
milliseconds. Only a key the source does not show is checked against the imported class, so a
rejection always comes from the class itself. Where vLLM is not installed or fails to import, vLLM's
names are not checked.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

logger = logging.getLogger(__name__)

# OpenAI's chat-completion request body (https://platform.openai.com/docs/api-reference/chat/create).
OPENAI_CHAT_PARAMS = frozenset(
    {
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls",
        "prediction", "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format",
        "safety_identifier", "seed", "service_tier", "stop", "store", "temperature", "tool_choice",
        "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip

# vLLM's OpenAI server: the chat-completion parameters it takes beyond OpenAI's ("extra parameters").
VLLM_SERVER_EXTRA_PARAMS = frozenset(
    {
        "top_k", "min_p", "repetition_penalty", "length_penalty", "use_beam_search", "stop_token_ids",
        "include_stop_str_in_output", "ignore_eos", "min_tokens", "skip_special_tokens",
        "spaces_between_special_tokens", "truncate_prompt_tokens", "truncation_side", "prompt_logprobs",
        "logprob_token_ids", "allowed_token_ids", "bad_words", "echo", "add_generation_prompt",
        "continue_final_message", "add_special_tokens", "documents", "chat_template", "chat_template_kwargs",
        "media_io_kwargs", "mm_processor_kwargs", "structured_outputs", "guided_json", "guided_regex",
        "guided_choice", "guided_grammar", "guided_decoding_backend", "guided_whitespace_pattern",
        "priority", "request_id", "cache_salt", "kv_transfer_params", "vllm_xargs", "include_reasoning",
        "thinking_token_budget", "return_tokens_as_token_ids", "return_token_ids", "repetition_detection",
        "stream_interval",
    }
)  # fmt: skip

# Keys of the request body the job itself sets, or that would break how it reads the response.
HTTP_RESERVED = {
    "model": "set by the job (engine.http.model or model.served_name), not a sampling parameter",
    "messages": "set by the job from the workload, not a sampling parameter",
    "stream": "not supported: the job reads whole responses",
    "stream_options": "not supported: the job reads whole responses",
}


class _VllmClasses(NamedTuple):
    source: str  # file inside the vllm package
    module: str
    classes: tuple[str, ...]


_SAMPLING = _VllmClasses("sampling_params.py", "vllm.sampling_params", ("SamplingParams",))
_ENGINE_ARGS = _VllmClasses("engine/arg_utils.py", "vllm.engine.arg_utils", ("EngineArgs", "AsyncEngineArgs"))


# -- vLLM's names ----------------------------------------------------------------
@functools.cache
def _vllm_dir() -> Path | None:
    """vLLM's package folder, found without importing it; None when vLLM is not installed."""
    try:
        spec = importlib.util.find_spec("vllm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _source_fields(relpath: str, classes: tuple[str, ...]) -> frozenset[str]:
    """Field names of vLLM classes as their source declares them (annotated class attributes, bases
    defined in the same file included); empty when the source can't be read or parsed."""
    root = _vllm_dir()
    if root is None:
        return frozenset()
    try:
        tree = ast.parse((root / relpath).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return frozenset()
    defs = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    names: set[str] = set()

    def collect(name: str, seen: set[str]) -> None:
        node = defs.get(name)
        if node is None or name in seen:
            return
        seen.add(name)
        for base in node.bases:
            if isinstance(base, ast.Name):
                collect(base.id, seen)
        for stmt in node.body:
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and "ClassVar" not in ast.unparse(stmt.annotation)
            ):
                names.add(stmt.target.id)

    for cls in classes:
        collect(cls, set())
    return frozenset(n for n in names if not n.startswith("_"))


@functools.cache
def _imported_fields(module: str, classes: tuple[str, ...]) -> frozenset[str] | None:
    """The constructor fields of vLLM classes, from the classes themselves; None when vLLM can't be imported."""
    if _vllm_dir() is None:
        return None
    names: set[str] = set()
    try:
        mod = importlib.import_module(module)
        for cls_name in classes:
            cls = getattr(mod, cls_name)
            if dataclasses.is_dataclass(cls):
                names.update(f.name for f in dataclasses.fields(cls) if f.init)
            elif hasattr(cls, "__struct_fields__"):  # msgspec.Struct
                names.update(cls.__struct_fields__)
            elif hasattr(cls, "model_fields"):  # pydantic
                names.update(cls.model_fields)
            else:
                raise TypeError(f"{module}.{cls_name} is neither a dataclass, a msgspec Struct nor a pydantic model")
    except Exception as e:  # noqa: BLE001 - a vLLM that does not import here (e.g. no torch) is not checked
        logger.warning("cannot check names against %s (%s: %s); skipping that check", module, type(e).__name__, e)
        return None
    return frozenset(n for n in names if not n.startswith("_"))


def vllm_sampling_params() -> frozenset[str] | None:
    """The keys vLLM's ``SamplingParams`` takes; None when vLLM is not importable."""
    return _imported_fields(_SAMPLING.module, _SAMPLING.classes)


def vllm_engine_args() -> frozenset[str] | None:
    """The keys vLLM's ``AsyncEngineArgs`` takes (what Ray Data LLM's engine is built from); None without vLLM."""
    return _imported_fields(_ENGINE_ARGS.module, _ENGINE_ARGS.classes)


@functools.cache
def _openai_package_params() -> frozenset[str]:
    try:
        from openai.types.chat.completion_create_params import CompletionCreateParamsBase
    except Exception:  # noqa: BLE001 - the openai package is optional here
        return frozenset()
    return frozenset(CompletionCreateParamsBase.__annotations__)


def http_sampling_params() -> frozenset[str]:
    """The keys a ``kind: http`` job may send: OpenAI's chat-completion parameters and vLLM's extras."""
    return (
        OPENAI_CHAT_PARAMS
        | VLLM_SERVER_EXTRA_PARAMS
        | _openai_package_params()
        | (vllm_sampling_params() or frozenset())
    ) - HTTP_RESERVED.keys()


# -- checks ----------------------------------------------------------------------
def suggest(key: str, valid: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the nearest valid name, or nothing when none is near."""
    match = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    return f"; did you mean {match[0]!r}?" if match else ""


def _unknown(
    keys: Iterable[str], fast: frozenset[str], full: Callable[[], frozenset[str] | None], what: str
) -> dict[str, str]:
    """``key -> problem`` for keys that are in neither name set; ``full`` is only called when ``fast`` misses."""
    missing = [k for k in keys if k not in fast]
    if not missing:
        return {}
    valid = full()
    if valid is None:
        return {}
    return {k: f"unknown {what}{suggest(k, valid)}" for k in missing if k not in valid}


def sampling_problems(keys: Iterable[str], kind: str) -> dict[str, str]:
    """``key -> problem`` for sampling keys the engine of ``kind`` (vllm or http) would reject."""
    keys = list(keys)
    if kind == "http":
        problems = {k: HTTP_RESERVED[k] for k in keys if k in HTTP_RESERVED}
        fast = OPENAI_CHAT_PARAMS | VLLM_SERVER_EXTRA_PARAMS | _source_fields(_SAMPLING.source, _SAMPLING.classes)
        problems.update(
            _unknown(
                (k for k in keys if k not in problems),
                fast,
                http_sampling_params,
                "sampling parameter (not an OpenAI chat-completion or vLLM parameter)",
            )
        )
        return problems
    return _unknown(
        keys, _source_fields(_SAMPLING.source, _SAMPLING.classes), vllm_sampling_params, "sampling parameter"
    )


def engine_kwargs_problems(keys: Iterable[str]) -> dict[str, str]:
    """``key -> problem`` for ``engine_kwargs`` keys that are not vLLM engine arguments."""
    return _unknown(
        keys, _source_fields(_ENGINE_ARGS.source, _ENGINE_ARGS.classes), vllm_engine_args, "vLLM engine argument"
    )
