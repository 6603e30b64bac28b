"""Input decoding, the parse stage, part files and the resume policy, on real files (no Ray cluster)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs import io, ledger, parts
from jobs.pipeline import _prepare_output
from jobs.reader import BAD, FILE, LINE, RAW, decode
from jobs.spec import JobSpec
from jobs.stages import MESSAGES, SAMPLING, Parse, StageContext, fill_sampling
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


def _decode(path, kind: str) -> pa.Table:
    source = pa.OSFile(str(path)) if kind == "parquet" else pa.input_stream(str(path))
    with source as f:
        return pa.concat_tables(list(decode(f, str(path), kind)))


@pytest.mark.parametrize("name", ["rows.jsonl", "rows.json", "rows.csv", "rows.parquet"])
def test_each_format_decodes_the_same_rows_with_positions(inputs, name):
    table = _decode(inputs / name, io.detect_format(name, "auto"))
    assert [json.loads(r) for r in table.column(RAW).to_pylist()] == ROWS
    assert table.column(LINE).to_pylist() == [0, 1]
    assert set(table.column(FILE).to_pylist()) == {str(inputs / name)}
    assert table.column(BAD).null_count == 2


def test_text_format_is_one_prompt_per_line(inputs):
    table = _decode(inputs / "rows.txt", "text")
    assert [json.loads(r) for r in table.column(RAW).to_pylist()] == [{"prompt": r["prompt"]} for r in ROWS]


def test_large_files_stream_in_bounded_blocks(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(10_000)))
    with pa.input_stream(str(path)) as f:
        blocks = list(decode(f, str(path), "jsonl"))
    assert len(blocks) == 3 and max(b.num_rows for b in blocks) == 4096
    lines = np.concatenate([b.column(LINE).to_numpy() for b in blocks])
    assert (lines == np.arange(10_000)).all()


def test_folders_and_globs_list_in_sorted_order(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    for i, row in enumerate(ROWS):
        (shards / f"part-{i}.jsonl").write_text(json.dumps(row) + "\n")
    (shards / "_SUCCESS").write_text("")
    names = [str(shards / f"part-{i}.jsonl") for i in range(2)]
    assert [f for _, f in io.expand(str(shards))] == names
    assert [f for _, f in io.expand(str(shards / "part-*.jsonl"))] == names
    assert [f for _, f in io.expand(f"file://{shards}")] == names


def test_missing_input_and_unknown_extension(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.expand(str(tmp_path / "nope.jsonl"))
    with pytest.raises(ValueError, match="input.format"):
        io.detect_format(str(tmp_path / "x.dat"), "auto")


def _spec(tmp_path, **extra) -> JobSpec:
    return JobSpec.from_dict({"output": {"path": str(tmp_path / "out")}, **extra})


def _ctx(spec: JobSpec, ledger_folder: str | None = None) -> StageContext:
    return StageContext(
        spec_json=spec.model_dump_json(),
        root=spec.output.path,
        run="r1",
        ledger=ledger_folder,
        duplicates=None,
        progress=None,
        model=spec.model_name(),
    )


def _reader_rows(file: str, raws: list[str | None], bads: list[str | None] | None = None) -> pa.Table:
    from jobs.reader import block

    return block(file, list(range(len(raws))), raws, bads or [None] * len(raws))


def _errors(out) -> list[dict]:
    rows = []
    for path in io.list_parts(str(out), io.ERRORS_DIR):
        rows += [json.loads(line) for line in Path(path).read_text().splitlines()]
    return rows


def test_parse_turns_rows_into_requests_and_writes_bad_rows_to_errors(tmp_path):
    spec = _spec(tmp_path, input={"id_column": "id"})
    raws = [
        json.dumps({"id": "a", "prompt": "x"}),
        "{not json",
        "[1, 2]",
        json.dumps({"prompt": "no id"}),
        json.dumps({"id": "b", "prompt": ""}),
        json.dumps({"id": "c", "prompt": "y"}),
    ]
    out = Parse(_ctx(spec))(_reader_rows("in.jsonl", raws))
    assert out.column(parts.ROW_ID).to_pylist() == ["in.jsonl:0", "in.jsonl:5"]
    assert json.loads(out.column(MESSAGES)[0].as_py())[-1] == {"role": "user", "content": "x"}
    errors = {e[parts.ROW_ID]: e for e in _errors(tmp_path / "out")}
    assert {k: e["error_code"] for k, e in errors.items()} == {
        "in.jsonl:1": "invalid_json",
        "in.jsonl:2": "invalid_json",
        "in.jsonl:3": "missing_field",
        "in.jsonl:4": "empty_field",
    }
    assert "in.jsonl:2: invalid JSON" in errors["in.jsonl:1"]["error"]
    assert errors["in.jsonl:3"]["prompt"] == "no id"  # the input columns are kept in the error record
    # Parsing the same batch again (a retried task) replaces its errors part instead of adding one.
    Parse(_ctx(spec))(_reader_rows("in.jsonl", raws))
    assert len(_errors(tmp_path / "out")) == 4


def test_parse_drops_rows_the_ledger_has(tmp_path):
    spec = _spec(tmp_path)
    folder = tmp_path / "ledger"
    folder.mkdir()
    pq.write_table(pa.table({LINE: pa.array([0, 2], pa.int64())}), folder / f"{ledger.file_key('f.txt')}.parquet")
    raws = [json.dumps({"prompt": f"p{i}"}) for i in range(4)]
    out = Parse(_ctx(spec, str(folder)))(_reader_rows("f.txt", raws))
    assert out.column(LINE).to_pylist() == [1, 3]
    other = Parse(_ctx(spec, str(folder)))(_reader_rows("g.txt", raws))
    assert other.num_rows == 4  # another file's positions are its own


def test_sampling_keys_only_some_rows_set_are_filled():
    samplings = [{"max_tokens": 4, "repetition_penalty": 1.2, "seed": 7}, {"max_tokens": 4}]
    fill_sampling(samplings)
    assert samplings[0]["repetition_penalty"] == 1.2 and samplings[0]["seed"] == 7
    assert samplings[1]["repetition_penalty"] == 1.0  # vLLM's default, not null
    # No null seed: Arrow would turn the int column into floats, which vLLM's engine rejects.
    assert isinstance(samplings[1]["seed"], int)
    assert set(samplings[0]) == set(samplings[1])


def test_parse_passes_per_row_sampling(tmp_path):
    spec = _spec(tmp_path, sampling={"max_tokens": 9})
    raws = [json.dumps({"prompt": "a", "sampling_params": {"temperature": 0.5}}), json.dumps({"prompt": "b"})]
    out = Parse(_ctx(spec))(_reader_rows("f", raws))
    sampling = [json.loads(s) for s in out.column(SAMPLING).to_pylist()]
    assert sampling[0]["temperature"] == 0.5 and sampling[1]["temperature"] == 0.0
    assert out.column("_max_tokens").to_pylist() == [9, 9]


def test_sink_writes_one_atomic_part_per_task_and_a_retry_replaces_it(tmp_path):
    out = str(tmp_path / "out")
    sink = parts.sink(out, "parquet", "r1", rows_per_file=10)
    sink.on_write_start()
    rows = pa.table(
        {
            parts.RECORD: [
                json.dumps({"x": 1, FILE: "f", LINE: 0}),
                json.dumps({"x": [1, "mixed"], FILE: "f", LINE: 1}),
            ]
            + [json.dumps({"error": "bad", FILE: "f", LINE: 2})],
            parts.ERROR: [None, None, "bad"],
            parts.TOKENS_IN: [3, 4, 0],
            parts.TOKENS_OUT: [5, 6, 0],
        }
    )
    task = SimpleNamespace(task_idx=7)
    assert sink.write([rows], task) == {"ok": 2, "failed": 1, "tokens_in": 7, "tokens_out": 11}
    sink.write([rows], task)  # the same task, retried
    assert not list((tmp_path / "out" / "data").glob(".tmp-*"))
    assert [p.rsplit("/", 1)[1] for p in io.list_parts(out, io.DATA_DIR)] == ["part-r1-000007.parquet"]
    assert len(io.list_parts(out, io.ERRORS_DIR)) == 1
    table = pq.read_table(io.list_parts(out, io.DATA_DIR)[0])
    assert table.column("x").to_pylist() == ["1", '[1, "mixed"]']  # mixed types kept as JSON text


def test_resume_refuses_a_different_job_and_honours_modes(tmp_path):
    spec = _spec(tmp_path)
    assert _prepare_output(spec) is False
    parts.write_part(spec.output.path, io.DATA_DIR, "part-x", "jsonl", [json.dumps({FILE: "f", LINE: 0})])
    assert _prepare_output(spec) is True
    changed = _spec(tmp_path, sampling={"temperature": 0.9})
    with pytest.raises(ConfigError, match="different job"):
        _prepare_output(changed)
    with pytest.raises(ConfigError, match="fail"):
        _prepare_output(_spec(tmp_path, resume={"mode": "fail"}))
    assert _prepare_output(_spec(tmp_path, resume={"mode": "overwrite"}, sampling={"temperature": 0.9})) is False
    assert io.list_parts(spec.output.path, io.DATA_DIR) == []


def test_openai_files_are_streamed_from_the_parts_without_bookkeeping(tmp_path):
    from jobs.openai_files import assemble

    out = str(tmp_path / "out")
    line = {"id": "batch_req_1", "custom_id": "a", "response": {"status_code": 200}, "error": None}
    parts.write_part(out, io.DATA_DIR, "part-1", "jsonl", [json.dumps({**line, FILE: "f", LINE: 0, "_tokens_in": 1})])
    parts.write_part(out, io.DATA_DIR, "part-2", "jsonl", [json.dumps({**line, "custom_id": "b", FILE: "f", LINE: 1})])
    paths = assemble(out)
    lines = [json.loads(x) for x in Path(paths["results"]).read_text().splitlines()]
    assert lines == [line, {**line, "custom_id": "b"}]
    assert Path(paths["errors"]).read_text() == ""


def test_on_row_error_fail_stops_at_the_first_bad_row(tmp_path):
    from jobs.stages import RowFailed

    spec = _spec(tmp_path, errors={"on_row_error": "fail"})
    with pytest.raises(RowFailed, match="f:1 failed"):
        Parse(_ctx(spec))(_reader_rows("f", [json.dumps({"prompt": "ok"}), "{bad"]))
    assert len(_errors(tmp_path / "out")) == 1  # the bad row is still recorded
