"""Structured logs carry the job/request id."""

from __future__ import annotations

import json
import logging

from llmkit import logs


def test_json_logs_carry_bound_ids(monkeypatch, capsys):
    monkeypatch.setenv("KRLLM_LOG_FORMAT", "json")
    logs.setup(job_id="questions-1")
    logs.bind(request_id="req-7")
    logging.getLogger("jobs.test").info("rows %d", 3)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    entry = json.loads(line)
    assert entry["message"] == "rows 3" and entry["level"] == "INFO" and entry["logger"] == "jobs.test"
    assert entry["job_id"] == "questions-1" and entry["request_id"] == "req-7"


def test_text_logs_by_default(monkeypatch, capsys):
    monkeypatch.delenv("KRLLM_LOG_FORMAT", raising=False)
    logs.setup()
    logging.getLogger("jobs.test").warning("plain")
    assert capsys.readouterr().err.strip().endswith("WARNING jobs.test: plain")
