"""What the tests share besides fixtures: ports and processes (the bench keeps its own; tests import no bench)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llm_entry(model_id: str = "m", source: str | None = None, **fields) -> dict:
    """A model catalog entry: a Ray Serve ``LLMConfig`` as a dict (``model_loading_config`` plus ``fields``)."""
    loading = {"model_id": model_id, **({"model_source": source} if source else {})}
    return {"model_loading_config": loading, **fields}


def chat_job(**engine):
    """A minimal chat job spec (``JobSpec``) with these ``engine`` fields, for checking how an engine is set up."""
    from jobs.spec import JobSpec

    return JobSpec.from_dict(
        {
            "name": "t",
            "model": {"source": "org/m"},
            "workload": {"name": "chat"},
            "input": {"path": "in.jsonl"},
            "output": {"path": "out"},
            "engine": engine,
        }
    )


def fake_batch(run_name: str = "llm-batch-0123456789abcdef"):
    """A Batch record as the Batch API's service keeps it, for rendering the RayJob of one batch."""
    from serve_apps.batches.models import Batch

    return Batch(
        id="batch_0123456789abcdef",
        endpoint="/v1/chat/completions",
        input_file_id="file-x",
        created_at=1,
        owner="o",
        output_path="s3://b/batches/batch_0123456789abcdef/output",
        run_name=run_name,
    )


def assert_openai_batch_output(lines: list[dict], requests: list[dict]) -> None:
    """OpenAI Batch output lines (``output.jsonl``), one per request, in OpenAI's shape. Line order is not
    the input's (as with OpenAI): lines are matched by ``custom_id``."""
    assert sorted(o["custom_id"] for o in lines) == sorted(r["custom_id"] for r in requests)
    for o in lines:
        assert set(o) == {"id", "custom_id", "response", "error"} and o["error"] is None
        assert o["id"].startswith("batch_req_")
        resp = o["response"]
        assert set(resp) == {"status_code", "request_id", "body"} and resp["status_code"] == 200
        body = resp["body"]
        assert body["object"] == "chat.completion" and body["choices"][0]["message"]["role"] == "assistant"
        assert body["choices"][0]["message"]["content"].strip()
        assert body["choices"][0]["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    capital = next(o for o in lines if o["custom_id"] == "request-1")
    assert "Paris" in capital["response"]["body"]["choices"][0]["message"]["content"]
