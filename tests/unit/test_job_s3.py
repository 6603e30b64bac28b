"""Inputs and outputs on s3:// through pyarrow's S3 filesystem, against a real S3 API server (moto) on 127.0.0.1."""

from __future__ import annotations

import json

from jobs import io


def test_read_parts_and_text_files_on_s3(s3):
    import pyarrow as pa

    from jobs import parts
    from jobs.reader import decode

    fs, path = io.filesystem(f"{s3}/in/rows.jsonl")
    with fs.open_output_stream(path) as f:
        f.write(b'{"prompt": "a"}\n{"prompt": "b"}\n')
    assert [f for _, f in io.expand(f"{s3}/in/")] == [f"{s3[5:]}/in/rows.jsonl"]
    with fs.open_input_stream(path) as f:
        table = pa.concat_tables(list(decode(f, path, "jsonl")))
    assert [json.loads(r) for r in table.column("_raw").to_pylist()] == [{"prompt": "a"}, {"prompt": "b"}]

    out = f"{s3}/out/run-1"
    parts.write_part(out, io.DATA_DIR, "part-1", "parquet", [json.dumps({"_file": "f", "_line": 0, "x": 1})])
    parts.write_part(out, io.ERRORS_DIR, "part-1", "jsonl", [json.dumps({"_file": "f", "_line": 1})])
    assert len(io.list_parts(out, io.DATA_DIR)) == 1 and len(io.list_parts(out, io.ERRORS_DIR)) == 1
    assert io.head(out, io.DATA_DIR, 5) == [{"_file": "f", "_line": 0, "x": 1}]
    io.write_text(out, "summary.json", "{}")
    assert io.read_text(out, "summary.json") == "{}"
    io.clear(out)
    assert io.list_parts(out, io.DATA_DIR) == [] and io.read_text(out, "summary.json") is None
