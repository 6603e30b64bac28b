from __future__ import annotations

from typing import Any

from jobs.workloads.base import Messages, Workload, require_text


class ContextQAWorkload(Workload):
    """A context passage and a question in, an answer grounded in the context out."""

    name = "context_qa"
    description = "context + question -> answer"
    sample_data = "context_qa.jsonl"
    system_prompt = "Answer the question using only the given context. Be brief."

    def parse_row(self, row: dict[str, Any]) -> Messages:
        if self.template:
            return self.with_system(self.render(row, "question"))
        context = require_text(row, "context")
        question = require_text(row, "question")
        return self.with_system(f"Context: {context}\n\nQuestion: {question}")
