"""Whether a finished job succeeded, by its error policy: the one rule the exit code and ``_SUCCESS`` follow."""

from __future__ import annotations

from jobs.spec import ErrorPolicy


def check_outcome(rows_ok: int, rows_failed: int, policy: ErrorPolicy) -> str | None:
    """None when the job succeeded; otherwise why it failed, in one line.

    A job fails when more than ``policy.max_error_fraction`` of its rows failed, and always
    when it had rows and none of them succeeded (even with ``max_error_fraction: 1.0``): a
    job that produced nothing is a failed job. A job with no rows at all (an empty input) succeeds.

    Count every row of the output, those an earlier run finished (resume) included, so that a
    rerun of the same output gets the same verdict.
    """
    if rows_ok < 0 or rows_failed < 0:
        raise ValueError(f"row counts must be >= 0, got ok={rows_ok} failed={rows_failed}")
    total = rows_ok + rows_failed
    if total == 0:
        return None
    if rows_ok == 0:
        return f"all {total} rows failed"
    if rows_failed / total > policy.max_error_fraction:
        return (
            f"{rows_failed}/{total} rows failed ({rows_failed / total:.1%}), "
            f"over errors.max_error_fraction={policy.max_error_fraction:g}"
        )
    return None
