"""OpenAI Batch API files in and out, unchanged: a batch moved off OpenAI or vLLM run-batch just works.

Input line: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}``.
Output line: ``{"id", "custom_id", "response": {"status_code", "request_id", "body": <chat.completion>}, "error": null}``.
Error line (own file): ``{"id", "custom_id", "response": null, "error": {"code", "message"}}``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from jobs.workloads.base import Messages, RowError, Workload, validate_messages

CHAT_URL = "/v1/chat/completions"
# Body keys that change nothing for a batch run.
_IGNORED = {"model", "user", "metadata", "store", "stream_options", "service_tier", "parallel_tool_calls"}
_PASSTHROUGH = {
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repetition_penalty",
    "top_k",
    "min_p",
    "min_tokens",
    "ignore_eos",
}


class OpenAIBatchWorkload(Workload):
    """OpenAI Batch API JSONL (chat completions)."""

    name = "openai_batch"
    description = "OpenAI Batch API JSONL in, OpenAI batch output + error files out"
    sample_data = "openai_batch.jsonl"

    output_format = "jsonl"

    def unique_key(self, row: dict[str, Any]) -> str | None:
        custom_id = row.get("custom_id")
        return custom_id if isinstance(custom_id, str) and custom_id else None

    def checks_unique_keys(self) -> bool:
        return True

    def _body(self, row: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(row.get("custom_id"), str) or not row["custom_id"]:
            raise RowError("custom_id must be a non-empty string", code="invalid_request")
        if row.get("method", "POST") != "POST":
            raise RowError(f"method {row.get('method')!r} is not supported; use POST", code="invalid_request")
        if row.get("url") != CHAT_URL:
            raise RowError(f"url {row.get('url')!r} is not supported; use {CHAT_URL}", code="invalid_url")
        body = row.get("body")
        if not isinstance(body, dict):
            raise RowError("body must be an object", code="invalid_request")
        return body

    def parse_row(self, row: dict[str, Any]) -> Messages:
        body = self._body(row)
        if "messages" not in body:
            raise RowError("body.messages is required", code="invalid_request")
        return validate_messages(body["messages"])

    def sampling_overrides(self, row: dict[str, Any]) -> dict[str, Any]:
        body = self._body(row)
        params: dict[str, Any] = {}
        for key, value in body.items():
            if key in ("messages", *_IGNORED):
                continue
            if key in ("max_tokens", "max_completion_tokens"):
                if value is not None:
                    if not isinstance(value, int) or value < 1:
                        raise RowError(f"body.{key} must be a positive integer", code="invalid_request")
                    params["max_tokens"] = value
            elif key in _PASSTHROUGH:
                if value is not None:
                    params[key] = value
            elif key == "stop":
                if value is not None:
                    params["stop"] = [value] if isinstance(value, str) else list(value)
            elif key == "n":
                if value not in (None, 1):
                    raise RowError("body.n > 1 is not supported in batch runs", code="unsupported_parameter")
            elif key == "stream":
                if value:
                    raise RowError("body.stream must be false in a batch", code="unsupported_parameter")
            elif key == "logprobs":
                if value:
                    raise RowError("body.logprobs is not supported", code="unsupported_parameter")
            elif key == "response_format":
                params["structured_outputs"] = _structured(value)
            else:
                raise RowError(f"body.{key} is not supported", code="unsupported_parameter")
        return params

    def format_result(self, row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        prompt_tokens = int(result["num_input_tokens"])
        completion_tokens = int(result["num_generated_tokens"])
        body = {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": result["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": result["generated_text"]},
                    "finish_reason": result["finish_reason"],
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        return {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": row.get("custom_id"),
            "response": {"status_code": 200, "request_id": uuid.uuid4().hex, "body": body},
            "error": None,
        }

    def format_error(self, row: dict[str, Any] | None, code: str, message: str) -> dict[str, Any]:
        custom_id = row.get("custom_id") if isinstance(row, dict) else None
        return {
            "id": f"batch_req_{uuid.uuid4().hex}",
            "custom_id": custom_id if isinstance(custom_id, str) else None,
            "response": None,
            "error": {"code": code, "message": message},
        }

    def finalize_output(self, root: str) -> dict[str, str]:
        """OpenAI's two files, streamed from the parts (line order is not input order, as with OpenAI)."""
        from jobs.openai_files import assemble

        return assemble(root)


def _structured(response_format: Any) -> dict[str, Any]:
    if not isinstance(response_format, dict):
        raise RowError("body.response_format must be an object", code="invalid_request")
    kind = response_format.get("type")
    if kind == "json_object":
        return {"json_object": True}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise RowError("response_format.json_schema.schema must be an object", code="invalid_request")
        return {"json": schema}
    if kind == "text":
        return {}
    raise RowError(f"response_format type {kind!r} is not supported", code="unsupported_parameter")
