"""The workload plug-in API: load rows, turn each into chat messages, shape each result."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

if TYPE_CHECKING:
    from ray.data import Dataset

    from jobs.spec import JobSpec

logger = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

Messages = list[dict[str, str]]


class RowError(ValueError):
    """A row can't be processed; the message is written to the errors output as the reason."""

    def __init__(self, message: str, code: str = "invalid_row"):
        super().__init__(message)
        self.code = code


class Workload:
    """Base class of workloads: every hook the pipeline calls is declared here, with its default.

    A simple workload sets ``name`` and ``sample_data`` and implements ``parse_row``. The
    pipeline calls ``load_dataset`` once, on the driver, to plan the input (it returns a
    plan, not rows); the other hooks run on the workers: ``parse_row`` and
    ``sampling_overrides`` per input row (a ``RowError`` sends the row to the errors
    output), ``format_result`` / ``format_error`` per finished row, and ``finalize_output``
    once at the end.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    sample_data: ClassVar[str]
    system_prompt: ClassVar[str | None] = None
    prompt_template: ClassVar[str | None] = None
    # Sampling defaults of the workload: over the spec's own defaults, under what the spec sets.
    default_sampling: ClassVar[dict[str, Any]] = {}
    # Options the workload accepts in spec.workload.options, with their defaults.
    options_defaults: ClassVar[dict[str, Any]] = {}
    # The results' file format this workload needs, whatever output.format says (None: the spec decides).
    output_format: ClassVar[Literal["parquet", "jsonl"] | None] = None

    def __init__(self, spec: JobSpec):
        self.spec = _with_default_sampling(spec, self.default_sampling)
        unknown = set(spec.workload.options) - set(self.options_defaults)
        if unknown:
            from llmkit.config import ConfigError

            raise ConfigError(
                f"workload.options: unknown option(s) {sorted(unknown)} for workload {self.name!r}; "
                f"known: {sorted(self.options_defaults) or 'none'}"
            )
        self.options = {**self.options_defaults, **spec.workload.options}
        self.system = spec.system_prompt if spec.system_prompt is not None else self.system_prompt
        self.template = spec.prompt_template if spec.prompt_template is not None else self.prompt_template

    # -- input (driver: plans, never reads rows) -----------------------------------
    def input_paths(self) -> list[str]:
        path = self.spec.input.path
        if path is None:
            return [str(DATA_DIR / self.sample_data)]
        return [path] if isinstance(path, str) else list(path)

    def load_dataset(self) -> Dataset | Iterable[dict[str, Any]] | None:
        """The input, when it is not ``spec.input``'s files: a ``ray.data.Dataset`` (from any Ray
        reader, e.g. ``ray.data.from_huggingface``), or rows in memory (a list or a DataFrame).

        The default, None, reads ``input_paths()`` with the job's reader, on the workers.
        """
        return None

    # -- per row, on the workers -----------------------------------------------------
    def parse_row(self, row: dict[str, Any]) -> Messages:
        """The chat messages for one input row; raise ``RowError`` if the row can't be used."""
        raise NotImplementedError

    def sampling_overrides(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row's own sampling parameters (its ``sampling_params``), over the spec's ``sampling``.
        The workload's ``default_sampling`` is not here: it sits under what the spec sets (see
        ``_with_default_sampling``)."""
        own = row.get("sampling_params")
        if own is not None and not isinstance(own, dict):
            raise RowError("sampling_params must be an object")
        return dict(own or {})

    def unique_key(self, row: dict[str, Any]) -> str | None:
        """A key no two input rows may share (a later duplicate goes to the errors output as
        ``duplicate_id``), or None. Only asked when ``checks_unique_keys()``."""
        return None

    def checks_unique_keys(self) -> bool:
        """Whether to check ``unique_key`` across the input: one extra pass over the input before
        the run, so only for workloads whose format demands it (OpenAI's custom_id). Rows are
        identified by their position, so resume needs no unique column."""
        return False

    def postprocess(self, row: dict[str, Any], text: str) -> dict[str, Any]:
        """Extra output columns derived from the generated text."""
        return {}

    def format_result(self, row: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
        """The output record of a finished row. ``result`` has generated_text, num_input_tokens,
        num_generated_tokens, finish_reason and model. Default: the input columns, the result,
        and ``postprocess``'s columns."""
        return {**row, **result, **self.postprocess(row, result["generated_text"])}

    def format_error(self, row: dict[str, Any] | None, code: str, message: str) -> dict[str, Any]:
        """The errors-output record of a failed row (``row`` is None when it could not be decoded)."""
        return {**(row or {}), "error_code": code, "error": message}

    # -- once, at the end ----------------------------------------------------------
    def finalize_output(self, root: str) -> dict[str, str]:
        """Turn the written parts into what users read; returns where results and errors are."""
        from jobs import io

        return {"results": io.join(root, io.DATA_DIR), "errors": io.join(root, io.ERRORS_DIR)}

    # -- helpers -----------------------------------------------------------
    def render(self, row: dict[str, Any], default_field: str) -> str:
        """The user message: the template filled from the row, or the row's ``default_field``."""
        if self.template:
            try:
                return self.template.format(**row)
            except KeyError as e:
                raise RowError(f"prompt_template needs column {e.args[0]!r}, which the row lacks") from None
            except (IndexError, ValueError) as e:
                raise RowError(f"prompt_template can't be filled from the row: {e}") from None
        return require_text(row, default_field)

    def with_system(self, user: str) -> Messages:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": user})
        return messages


def require_text(row: dict[str, Any], field: str) -> str:
    value = row.get(field)
    if value is None:
        raise RowError(f"missing field {field!r}", code="missing_field")
    if not isinstance(value, str):
        raise RowError(f"field {field!r} must be a string, got {type(value).__name__}", code="invalid_field")
    if not value.strip():
        raise RowError(f"field {field!r} is empty", code="empty_field")
    return value


def validate_messages(messages: Any) -> Messages:
    """Check an OpenAI-style messages list and flatten text-part content to strings."""
    if not isinstance(messages, list) or not messages:
        raise RowError("messages must be a non-empty list", code="invalid_messages")
    out: Messages = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise RowError(f"messages[{i}] must be an object", code="invalid_messages")
        role, content = msg.get("role"), msg.get("content")
        if role not in ("system", "developer", "user", "assistant"):
            raise RowError(
                f"messages[{i}].role {role!r} is not system, developer, user or assistant", code="invalid_messages"
            )
        if isinstance(content, list):
            parts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text":
                    raise RowError(f"messages[{i}]: only text content parts are supported", code="unsupported_content")
                parts.append(str(part.get("text", "")))
            content = "".join(parts)
        if not isinstance(content, str):
            raise RowError(f"messages[{i}].content must be a string", code="invalid_messages")
        out.append({"role": "system" if role == "developer" else role, "content": content})
    return out


def _with_default_sampling(spec: JobSpec, defaults: dict[str, Any]) -> JobSpec:
    """The spec with a workload's sampling defaults under what the spec sets itself: ``summarize``'s
    ``max_tokens: 128`` replaces the spec's default of 256, never a ``max_tokens`` the user wrote (or
    passed with ``--set``). Folded in once, where the spec was loaded: the copy the workers get is the
    result, in which every field counts as set."""
    explicit = spec.sampling.model_dump(exclude_unset=True)
    if not set(defaults) - set(explicit):
        return spec
    sampling = type(spec.sampling).model_validate({**defaults, **explicit})
    return spec.model_copy(update={"sampling": sampling})
