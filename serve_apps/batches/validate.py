"""Up-front checks of a batch input file, before anything runs (as OpenAI's ``validating`` step).

Whole-file problems fail the batch with OpenAI's ``errors`` list: a line that is not a JSON
object, a missing or duplicate ``custom_id``, another method, endpoint or model, too many
requests. What the job itself checks per request (the body's messages and parameters) is
left to the job: such a line ends in the error file and the rest completes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from serve_apps.batches.models import BatchErrorItem

MAX_REPORTED_ERRORS = 100


@dataclass
class Validated:
    total: int = 0
    model: str | None = None
    errors: list[BatchErrorItem] = field(default_factory=list)
    more_errors: int = 0

    def add(self, code: str, message: str, line: int | None, param: str | None = None) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(BatchErrorItem(code=code, message=message, line=line, param=param))
        else:
            self.more_errors += 1

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_lines(lines: Iterable[bytes], endpoint: str, models: Iterable[str], max_requests: int) -> Validated:
    """Check every line of an input file against the batch's endpoint and the served models."""
    served = set(models)
    out = Validated()
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        out.total += 1
        if out.total > max_requests:
            out.add(
                "too_many_requests",
                f"the file has more than {max_requests} requests, the limit of one batch",
                number,
            )
            break
        try:
            row = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            out.add("invalid_json_line", "this line is not valid JSON", number)
            continue
        if not isinstance(row, dict):
            out.add("invalid_json_line", "each line must be a JSON object", number)
            continue
        custom_id = row.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            out.add("missing_required_parameter", "custom_id must be a non-empty string", number, "custom_id")
        elif custom_id in seen:
            out.add("duplicate_custom_id", f"custom_id {custom_id!r} appears more than once", number, "custom_id")
        else:
            seen.add(custom_id)
        if row.get("method") != "POST":
            out.add("invalid_request", "method must be POST", number, "method")
        if row.get("url") != endpoint:
            out.add(
                "mismatched_endpoint",
                f"url {row.get('url')!r} does not match the batch's endpoint {endpoint}",
                number,
                "url",
            )
        body = row.get("body")
        if not isinstance(body, dict):
            out.add("missing_required_parameter", "body must be a JSON object", number, "body")
            continue
        model = body.get("model")
        if not isinstance(model, str) or not model:
            out.add("missing_required_parameter", "body.model is required", number, "body.model")
        elif model not in served:
            out.add("model_not_found", f"model {model!r} is not served here", number, "body.model")
        elif out.model is None:
            out.model = model
        elif model != out.model:
            out.add(
                "mismatched_model",
                f"model {model!r} differs from {out.model!r}: one batch runs one model",
                number,
                "body.model",
            )
    if out.total == 0 and not out.errors:
        out.add("empty_file", "the input file has no requests", None)
    if out.more_errors:
        out.errors.append(
            BatchErrorItem(code="too_many_errors", message=f"{out.more_errors} more errors not listed", line=None)
        )
    return out


def validate_text(text: str, endpoint: str, models: Iterable[str], max_requests: int) -> Validated:
    return validate_lines((line.encode() for line in text.splitlines()), endpoint, models, max_requests)
