"""Input formats, atomic part files and the resume ledger, on real files."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import io
from jobs.pipeline import _prepare_output, _prepare_rows
from jobs.spec import JobSpec
from jobs.workloads import get_workload
from llmkit.config import ConfigError

ROWS = [{"id": "a", "prompt": "What is 2+2?"}, {"id": "b", "prompt": "Tell me a joke."}]


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    (d / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (d / "rows.json").write_text(json.dumps(ROWS))
    pd.DataFrame(ROWS).to_csv(d / "rows.csv", index=False)
    pq.write_table(pa.Table.from_pylist(ROWS), d / "rows.parquet")
    (d / "rows.txt").write_text("What is 2+2?\n\nTell me a joke.\n")
    return d


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.json", "rows.csv", "rows.parquet"])
def test_each_format_reads_the_same_rows(inputs, name):
    assert list(io.read_rows([str(inputs / name)])) == ROWS


def test_text_format_is_one_prompt_per_line(inputs):
    assert list(io.read_rows([str(inputs / "rows.txt")])) == [{"prompt": r["prompt"]} for r in ROWS]


def test_folders_and_globs_read_in_sorted_order(inputs, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, row in enumerate(ROWS):
        (shards / f"part-{i}.jsonl").write_text(json.dumps(row) + "\n")
    (shards / "_SUCCESS").write_text("")
    assert list(io.read_rows([str(shards)])) == ROWS
    assert list(io.read_rows([str(shards / "part-*.jsonl")])) == ROWS
    assert list(io.read_rows([f"file://{shards}"], "jsonl")) == ROWS


def test_missing_input_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(io.read_rows([str(tmp_path / "nope.jsonl")]))
    (tmp_path / "x.dat").write_text("{}")
    with pytest.raises(ValueError, match="input.format"):
        list(io.read_rows([str(tmp_path / "x.dat")]))


def test_malformed_lines_become_error_rows(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "ok"}\n{not json\n[1, 2]\n')
    rows = list(io.read_rows([str(path)]))
    assert rows[0] == {"prompt": "ok"}
    assert "invalid JSON" in rows[1][io.MALFORMED] and rows[1]["_raw"] == "{not json"
    assert "expected a JSON object" in rows[2][io.MALFORMED]


def test_part_writer_is_atomic_and_feeds_the_ledger(tmp_path):
    out = str(tmp_path / "out")
    w = io.PartWriter(out, io.DATA_DIR, "parquet")
    w.write([{io.ROW_ID: "1", "x": 1}, {io.ROW_ID: "2", "x": [1, "mixed"]}])
    w.write([])
    io.PartWriter(out, io.ERRORS_DIR, "jsonl").write([{io.ROW_ID: "3", "error": "bad"}])
    assert not list((tmp_path / "out" / "data").glob(".tmp-*"))
    assert len(io.list_parts(out, io.DATA_DIR)) == 1
    assert io.finished_ids(out) == {"1", "2", "3"}


def _spec(tmp_path, **extra):
    return JobSpec.from_dict({"output": {"path": str(tmp_path / "out")}, **extra})


def test_prepare_rows_ids_duplicates_and_resume(tmp_path):
    spec = _spec(tmp_path, input={"id_column": "id"})
    w = get_workload("chat")(spec)
    rows = [
        {"id": "a", "prompt": "x"},
        {"id": "a", "prompt": "dup"},
        {"prompt": "no id"},
        {io.MALFORMED: "bad line", "_raw": "{"},
        {"id": "b", "prompt": ""},
        {"id": "c", "prompt": "y"},
    ]
    prep = _prepare_rows(spec, w, rows, done={"c"})
    assert [it[io.ROW_ID] for it in prep.items] == ["a"]
    codes = {e[io.ROW_ID]: e["error_code"] for e in prep.errors}
    assert codes == {"#1": "duplicate_id", "#2": "missing_field", "#3": "invalid_json", "b": "empty_field"}
    assert prep.skipped == 1 and prep.total == 6
    assert json.loads(prep.items[0]["_messages"])[-1] == {"role": "user", "content": "x"}


def test_prepare_rows_fills_sampling_keys_only_some_rows_set(tmp_path):
    spec = _spec(tmp_path)
    w = get_workload("chat")(spec)
    rows = [{"prompt": "a", "sampling_params": {"repetition_penalty": 1.2, "seed": 7}}, {"prompt": "b"}]
    prep = _prepare_rows(spec, w, rows, done=set())
    sampling = [json.loads(it["_sampling"]) for it in prep.items]
    assert sampling[0]["repetition_penalty"] == 1.2 and sampling[0]["seed"] == 7
    assert sampling[1]["repetition_penalty"] == 1.0  # vLLM's default, not null
    # No null seed: Arrow would turn the int column into floats, which vLLM's engine rejects.
    assert isinstance(sampling[1]["seed"], int)
    assert set(sampling[0]) == set(sampling[1])


def test_resume_refuses_a_different_job_and_honours_modes(tmp_path):
    spec = _spec(tmp_path)
    assert _prepare_output(spec) == set()
    io.PartWriter(spec.output.path, io.DATA_DIR, "jsonl").write([{io.ROW_ID: "0"}])
    assert _prepare_output(spec) == {"0"}
    changed = _spec(tmp_path, sampling={"temperature": 0.9})
    with pytest.raises(ConfigError, match="different job"):
        _prepare_output(changed)
    with pytest.raises(ConfigError, match="fail"):
        _prepare_output(_spec(tmp_path, resume={"mode": "fail"}))
    assert _prepare_output(_spec(tmp_path, resume={"mode": "overwrite"}, sampling={"temperature": 0.9})) == set()
    assert io.list_parts(spec.output.path, io.DATA_DIR) == []
