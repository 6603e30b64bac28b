"""Validation that catches at `jobs validate` what would otherwise fail every row or the whole run:
sampling keys and engine_kwargs the engine does not take, and the error policy's verdict."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs import engine_params
from jobs.engine import CPU_DEFAULTS, GPU_DEFAULTS
from jobs.policy import check_outcome
from jobs.spec import ErrorPolicy, JobSpec
from llmkit.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
HAS_VLLM = engine_params._vllm_dir() is not None
needs_vllm = pytest.mark.skipif(not HAS_VLLM, reason="vLLM is not installed")


def _spec(**parts):
    return JobSpec.from_dict({"output": {"path": "x"}, **parts}, source="job.yaml")


def _error(**parts) -> str:
    with pytest.raises(ConfigError) as err:
        _spec(**parts)
    return str(err.value)


def _clear_caches():
    for fn in (
        engine_params._vllm_dir,
        engine_params._source_fields,
        engine_params._imported_fields,
        engine_params._openai_package_params,
    ):
        fn.cache_clear()


@pytest.fixture
def no_vllm(monkeypatch):
    """A machine without vLLM (e.g. one that only runs kind: http)."""
    _clear_caches()
    monkeypatch.setattr(engine_params, "_vllm_dir", lambda: None)
    yield
    monkeypatch.undo()
    _clear_caches()


# -- sampling keys -----------------------------------------------------------------
@needs_vllm
def test_misspelled_sampling_key_names_the_key_and_the_nearest_valid_one():
    message = _error(sampling={"temprature": 0.5})
    assert "  - sampling.temprature: unknown sampling parameter; did you mean 'temperature'?" in message.splitlines()


@needs_vllm
def test_every_unknown_sampling_key_is_named():
    message = _error(sampling={"repetition_penality": 1.1, "top_kk": 5, "ignore_eos": True})
    assert "sampling.repetition_penality: unknown sampling parameter; did you mean 'repetition_penalty'?" in message
    assert "(also unknown: top_kk)" in message


@needs_vllm
def test_vllm_sampling_params_pass():
    spec = _spec(sampling={"repetition_penalty": 1.1, "ignore_eos": True, "top_k": 5, "min_p": 0.1, "min_tokens": 2})
    assert spec.sampling.model_extra["top_k"] == 5


def test_http_sampling_keys_are_openai_and_vllm_server_parameters():
    http = {"kind": "http", "http": {"url": "http://llm:8000/v1"}}
    spec = _spec(engine=http, sampling={"response_format": {"type": "json_object"}, "logprobs": True, "top_k": 5})
    assert spec.sampling.model_extra["logprobs"] is True
    message = _error(engine=http, sampling={"temprature": 0.5})
    assert "sampling.temprature: unknown sampling parameter" in message and "did you mean 'temperature'?" in message
    assert "sampling.stream: not supported" in _error(engine=http, sampling={"stream": True})
    assert "sampling.model: set by the job" in _error(engine=http, sampling={"model": "other"})


def test_without_vllm_the_vllm_check_is_skipped_but_the_http_check_is_not(no_vllm):
    spec = _spec(sampling={"temprature": 0.5})  # cannot be checked here; the engine's machine has vLLM
    assert spec.sampling.model_extra == {"temprature": 0.5}
    assert _spec(engine={"engine_kwargs": {"max_modle_len": 1}}).engine.engine_kwargs == {"max_modle_len": 1}
    message = _error(engine={"kind": "http"}, sampling={"temprature": 0.5, "top_k": 3})
    assert "sampling.temprature: unknown sampling parameter" in message


@needs_vllm
def test_validate_cli_rejects_a_misspelled_sampling_key(tmp_path, capsys):
    from jobs.__main__ import main

    path = tmp_path / "job.yaml"
    path.write_text("output: {path: x}\nsampling: {temprature: 0.5}\n")
    assert main(["validate", "-c", str(path)]) == 2
    assert "sampling.temprature: unknown sampling parameter; did you mean 'temperature'?" in capsys.readouterr().err


# -- engine_kwargs -----------------------------------------------------------------
@needs_vllm
def test_misspelled_engine_kwarg_names_the_key_and_the_nearest_valid_one():
    message = _error(engine={"engine_kwargs": {"max_modle_len": 2048}})
    assert "  - engine.engine_kwargs.max_modle_len: unknown vLLM engine argument; did you mean 'max_model_len'?" in (
        message.splitlines()
    )


@needs_vllm
def test_the_tuned_engine_defaults_are_all_vllm_engine_arguments():
    for defaults in (CPU_DEFAULTS, GPU_DEFAULTS):
        _spec(engine={"engine_kwargs": defaults.engine_kwargs})
    _spec(engine={"engine_kwargs": {"enable_log_requests": True}})  # AsyncEngineArgs' own


@needs_vllm
def test_names_read_from_vllm_source_match_the_imported_classes():
    # The fast path (parsing vLLM's source) must agree with the classes, or it would hide or add names.
    sampling = engine_params._source_fields(engine_params._SAMPLING.source, engine_params._SAMPLING.classes)
    engine = engine_params._source_fields(engine_params._ENGINE_ARGS.source, engine_params._ENGINE_ARGS.classes)
    assert sampling == engine_params.vllm_sampling_params()
    assert engine == engine_params.vllm_engine_args()
    assert {"temperature", "top_k", "max_tokens"} <= sampling and {"max_model_len", "enable_log_requests"} <= engine


@needs_vllm
def test_a_valid_spec_validates_without_importing_vllm():
    code = (
        "import sys\n"
        "from jobs.spec import JobSpec\n"
        "JobSpec.from_dict({'output': {'path': 'x'}, 'sampling': {'top_k': 5, 'repetition_penalty': 1.1},"
        " 'engine': {'engine_kwargs': {'max_model_len': 1024}}})\n"
        "assert 'vllm.sampling_params' not in sys.modules and 'torch' not in sys.modules, 'vLLM was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# -- error policy ------------------------------------------------------------------
def test_default_max_error_fraction_is_a_tenth():
    assert ErrorPolicy().max_error_fraction == 0.1


@pytest.mark.parametrize(
    ("ok", "failed", "fraction", "fails"),
    [
        (0, 0, 0.1, False),  # nothing to do
        (10, 0, 0.0, False),
        (9, 1, 0.1, False),  # exactly at the limit
        (8, 2, 0.1, True),
        (9, 1, 0.0, True),
        (1, 99, 1.0, False),
        (0, 5, 1.0, True),  # nothing succeeded: failed even at 1.0
        (0, 1, 1.0, True),
    ],
)
def test_check_outcome(ok, failed, fraction, fails):
    reason = check_outcome(ok, failed, ErrorPolicy(max_error_fraction=fraction))
    assert (reason is not None) == fails
    if reason:
        assert "\n" not in reason and str(failed) in reason


def test_check_outcome_names_the_reason():
    assert check_outcome(0, 3, ErrorPolicy(max_error_fraction=1.0)) == "all 3 rows failed"
    assert check_outcome(8, 2, ErrorPolicy()) == "2/10 rows failed (20.0%), over errors.max_error_fraction=0.1"
    with pytest.raises(ValueError):
        check_outcome(-1, 0, ErrorPolicy())
