from __future__ import annotations

from typing import Any

from jobs.workloads.base import Messages, Workload, validate_messages


class ChatWorkload(Workload):
    """Questions or prompts in, answers out. A row has ``prompt`` (or ``question``), or full ``messages``."""

    name = "chat"
    description = "questions or prompts -> answers"
    sample_data = "chat.jsonl"
    system_prompt = "You are a helpful assistant. Answer briefly."
    options_defaults = {"prompt_field": "prompt"}

    def parse_row(self, row: dict[str, Any]) -> Messages:
        if row.get("messages") is not None and not self.template:
            return validate_messages(row["messages"])
        field = self.options["prompt_field"]
        if field not in row and "question" in row:
            field = "question"
        return self.with_system(self.render(row, field))
