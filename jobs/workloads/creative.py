from __future__ import annotations

from typing import Any

from jobs.workloads.base import Messages, RowError, Workload, require_text

_INSTRUCTIONS = {
    "haiku": "Write a haiku: three lines of five, seven and five syllables. Reply with the haiku only.",
    "story": "Write a short, vivid story. Keep it under 120 words.",
    "summarize": "Summarize the text in one clear sentence.",
}


class CreativeWorkload(Workload):
    """Haiku, short stories and summarize-this prompts. A row has ``prompt`` and an optional ``task``."""

    name = "creative"
    description = "haiku, short story and summarize-this prompts"
    sample_data = "creative.jsonl"
    default_sampling = {"temperature": 0.8, "top_p": 0.95}

    def parse_row(self, row: dict[str, Any]) -> Messages:
        task = row.get("task") or "story"
        if task not in _INSTRUCTIONS:
            raise RowError(f"task {task!r} is not one of {sorted(_INSTRUCTIONS)}", code="invalid_field")
        prompt = self.render(row, "prompt") if self.template else require_text(row, "prompt")
        system = self.system if self.system is not None else _INSTRUCTIONS[task]
        return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
