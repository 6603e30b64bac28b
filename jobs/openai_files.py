"""OpenAI Batch API output files, assembled from the job's parts by streaming them.

``output.jsonl`` and ``errors.jsonl`` are written next to the parts, one line at a time
(the bookkeeping keys dropped), so their size costs no memory. Line order follows the
parts, not the input: OpenAI documents the same and tells users to match on
``custom_id``. Each file appears atomically (locally a rename; object stores publish it
when the upload completes).
"""

from __future__ import annotations

import json
import logging

from jobs import io

logger = logging.getLogger(__name__)

RESULTS_FILE, ERRORS_FILE = "output.jsonl", "errors.jsonl"


def _stream(root: str, subdir: str, name: str) -> str:
    from jobs.reader import _text_lines

    fs, base = io.filesystem(root)
    parts = io.list_parts(root, subdir)

    def write(out) -> None:
        for part in parts:
            with fs.open_input_stream(part) as f:
                for line in _text_lines(f):
                    if not line.strip():
                        continue
                    record = {k: v for k, v in json.loads(line).items() if not k.startswith("_")}
                    out.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))

    return io.publish(fs, base, name, write)


def assemble(root: str) -> dict[str, str]:
    """Write ``output.jsonl`` and ``errors.jsonl`` from the parts under ``root``; returns their paths.

    Also what the Batch API calls after a job was killed, to hand out what it finished.
    """
    return {"results": _stream(root, io.DATA_DIR, RESULTS_FILE), "errors": _stream(root, io.ERRORS_DIR, ERRORS_FILE)}
