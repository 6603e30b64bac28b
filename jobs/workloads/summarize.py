from __future__ import annotations

from typing import Any

from jobs.workloads.base import Messages, Workload


class SummarizeWorkload(Workload):
    """News articles in, highlights out, in the CNN/DailyMail shape (``article`` -> ``summary``).

    A reference ``highlights`` column, when present, is kept so outputs can be scored.
    """

    name = "summarize"
    description = "news articles -> highlights (CNN/DailyMail shape)"
    sample_data = "summarize.jsonl"
    system_prompt = "Summarize the news article in two or three short highlight sentences."
    options_defaults = {"article_field": "article"}
    default_sampling = {"max_tokens": 128}

    def parse_row(self, row: dict[str, Any]) -> Messages:
        return self.with_system(self.render(row, self.options["article_field"]))

    def postprocess(self, row: dict[str, Any], text: str) -> dict[str, Any]:
        return {"summary": text.strip()}
