from __future__ import annotations

from typing import Any

from jobs.workloads.base import Messages, Workload

LABELS = ["positive", "negative", "neutral"]


class SentimentWorkload(Workload):
    """Social posts in, one label out. Guided decoding (choice) makes every label one of LABELS."""

    name = "sentiment"
    description = "social posts -> positive / negative / neutral"
    sample_data = "sentiment.csv"
    system_prompt = (
        "Classify the sentiment of the user's post. Answer with exactly one word: positive, negative or neutral."
    )
    options_defaults = {"text_field": "text", "labels": LABELS}
    default_sampling = {"max_tokens": 4}

    def parse_row(self, row: dict[str, Any]) -> Messages:
        return self.with_system(self.render(row, self.options["text_field"]))

    def sampling_overrides(self, row: dict[str, Any]) -> dict[str, Any]:
        return {**super().sampling_overrides(row), "structured_outputs": {"choice": list(self.options["labels"])}}

    def postprocess(self, row: dict[str, Any], text: str) -> dict[str, Any]:
        return {"label": text.strip()}
