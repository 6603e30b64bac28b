"""Workloads turn rows into messages and sampling params; bad rows raise RowError with a reason."""

from __future__ import annotations

import pytest

from jobs.spec import JobSpec
from jobs.workloads import REGISTRY, RowError, get_workload
from jobs.workloads.base import DATA_DIR


def _workload(name, **spec):
    return get_workload(name)(JobSpec.from_dict({"output": {"path": "x"}, "workload": {"name": name}, **spec}))


def _sample_rows(name: str) -> list[dict]:
    """The workload's sample data, decoded by the job's reader (what its workers would see)."""
    import json

    import pyarrow as pa

    from jobs import io
    from jobs.reader import decode

    rows = []
    for path in _workload(name).input_paths():
        for _, file in io.expand(path):
            kind = io.detect_format(file, "auto")
            with pa.OSFile(file) if kind == "parquet" else pa.input_stream(file) as f:
                for table in decode(f, file, kind):
                    rows += [json.loads(r) for r in table.column("_raw").to_pylist()]
    return rows


def test_all_seed_workloads_are_registered_with_sample_data():
    assert set(REGISTRY) >= {"chat", "creative", "sentiment", "summarize", "context_qa", "openai_batch"}
    for name, cls in REGISTRY.items():
        assert (DATA_DIR / cls.sample_data).is_file(), name
        assert _workload(name).load_dataset() is None  # read from spec.input by the job's reader
        rows = _sample_rows(name)
        assert len(rows) >= 3, name
        for row in rows:
            messages = _workload(name).parse_row(row)
            assert messages[-1]["role"] == "user" and messages[-1]["content"].strip()


def test_chat_includes_the_seed_questions():
    prompts = {r["prompt"] for r in _sample_rows("chat")}
    assert {
        "What is the weather like today?",
        "Tell me a joke.",
        "Give me a motivational quote.",
        "What is 2+2?",
    } <= prompts


def test_chat_template_and_system_prompt():
    w = _workload("chat", system_prompt="Be terse.", prompt_template="Q: {prompt} ({lang})")
    assert w.parse_row({"prompt": "Hi", "lang": "en"}) == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Q: Hi (en)"},
    ]
    with pytest.raises(RowError, match="lang"):
        w.parse_row({"prompt": "Hi"})


@pytest.mark.parametrize("row", [{}, {"prompt": None}, {"prompt": 3}, {"prompt": "   "}])
def test_chat_bad_rows(row):
    with pytest.raises(RowError):
        _workload("chat").parse_row(row)


def test_chat_accepts_messages():
    msgs = [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}]
    assert _workload("chat").parse_row({"messages": msgs}) == [{"role": "user", "content": "Hello"}]
    with pytest.raises(RowError, match="role"):
        _workload("chat").parse_row({"messages": [{"role": "wizard", "content": "x"}]})


def test_sentiment_constrains_labels():
    params = _workload("sentiment").sampling_overrides({"text": "great"})
    assert params["structured_outputs"] == {"choice": ["positive", "negative", "neutral"]}


def test_row_sampling_overrides():
    w = _workload("chat")
    assert w.sampling_overrides({"prompt": "x", "sampling_params": {"max_tokens": 5}}) == {"max_tokens": 5}
    with pytest.raises(RowError):
        w.sampling_overrides({"prompt": "x", "sampling_params": "hot"})


def test_context_qa_and_summarize_shapes():
    qa = _workload("context_qa").parse_row({"context": "Sky is blue.", "question": "What color?"})
    assert "Sky is blue." in qa[-1]["content"] and "What color?" in qa[-1]["content"]
    with pytest.raises(RowError, match="question"):
        _workload("context_qa").parse_row({"context": "c"})
    assert _workload("summarize").postprocess({}, " A.\n") == {"summary": "A."}


def test_creative_tasks():
    w = _workload("creative")
    assert "haiku" in w.parse_row({"task": "haiku", "prompt": "p"})[0]["content"]
    with pytest.raises(RowError, match="task"):
        w.parse_row({"task": "sonnet", "prompt": "p"})


class TestOpenAIBatch:
    def row(self, **body):
        return {
            "custom_id": "r1",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}], **body},
        }

    def test_sampling_mapping(self):
        w = _workload("openai_batch")
        params = w.sampling_overrides(
            self.row(
                max_completion_tokens=9, temperature=0.5, stop="X", seed=3, response_format={"type": "json_object"}
            )
        )
        assert params == {
            "max_tokens": 9,
            "temperature": 0.5,
            "stop": ["X"],
            "seed": 3,
            "structured_outputs": {"json_object": True},
        }

    @pytest.mark.parametrize(
        ("change", "code"),
        [
            ({"url": "/v1/embeddings"}, "invalid_url"),
            ({"method": "GET"}, "invalid_request"),
            ({"body": {"model": "m"}}, "invalid_request"),
            ({"custom_id": ""}, "invalid_request"),
        ],
    )
    def test_invalid_requests(self, change, code):
        w = _workload("openai_batch")
        with pytest.raises(RowError) as err:
            w.parse_row({**self.row(), **change})
        assert err.value.code == code

    @pytest.mark.parametrize("body", [{"n": 2}, {"stream": True}, {"tools": []}, {"max_tokens": -1}])
    def test_unsupported_parameters(self, body):
        with pytest.raises(RowError):
            _workload("openai_batch").sampling_overrides(self.row(**body))

    def test_output_and_error_shapes(self):
        w = _workload("openai_batch")
        out = w.format_result(
            self.row(),
            {
                "generated_text": "Hello",
                "num_input_tokens": 3,
                "num_generated_tokens": 2,
                "finish_reason": "stop",
                "model": "m",
            },
        )
        assert out["custom_id"] == "r1" and out["error"] is None
        assert out["response"]["status_code"] == 200
        body = out["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"] == {"role": "assistant", "content": "Hello"}
        assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        err = w.format_error(self.row(), "invalid_url", "nope")
        assert err["response"] is None and err["error"] == {"code": "invalid_url", "message": "nope"}


@pytest.mark.parametrize(
    ("name", "sampling", "max_tokens"),
    [
        ("summarize", {}, 128),  # the workload's default over the spec's (256)
        ("summarize", {"max_tokens": 8}, 8),  # what the spec sets wins (a --set too)
        ("sentiment", {}, 4),
        ("sentiment", {"max_tokens": 2, "temperature": 0.5}, 2),
        ("chat", {}, 256),
    ],
)
def test_a_workloads_sampling_defaults_yield_to_the_spec(name, sampling, max_tokens):
    w = _workload(name, sampling=sampling)
    assert w.spec.sampling.max_tokens == max_tokens
    for key, value in sampling.items():
        assert getattr(w.spec.sampling, key) == value
    # What the workers rebuild from the spec's JSON is the same, and a row's own parameters still win.
    again = get_workload(name)(JobSpec.model_validate_json(w.spec.model_dump_json()))
    assert again.spec.sampling == w.spec.sampling
    assert w.sampling_overrides({"text": "t", "prompt": "p", "sampling_params": {"max_tokens": 3}})["max_tokens"] == 3
