"""The Batch API's state machine and stores, with a fake runner (no Ray)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_batch_api_helpers import MODEL, FakeRunner, line, make_service, write_job_output  # noqa: E402

from serve_apps.batches.runner import RunState  # noqa: E402
from serve_apps.batches.service import BatchAPIError, owner_of  # noqa: E402
from serve_apps.batches.store import Conflict, FolderState  # noqa: E402
from serve_apps.batches.validate import validate_text  # noqa: E402

ALICE, BOB = owner_of("key-a"), owner_of("key-b")


def upload(service, text: str, owner: str = ALICE) -> str:
    return service.create_file(owner, "in.jsonl", "batch", io.BytesIO(text.encode()))["id"]


def create(service, file_id: str, owner: str = ALICE, **extra) -> str:
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h", **extra}
    return service.create_batch(owner, body)["id"]


def test_owner_is_a_hash_never_the_key() -> None:
    assert owner_of("key-a") != owner_of("key-b")
    assert "key-a" not in owner_of("key-a") and len(owner_of("key-a")) == 40
    assert owner_of(None) == owner_of("") == "anonymous"


def test_round_trip_states_and_counts(tmp_path: Path) -> None:
    runner = FakeRunner()
    svc = make_service(tmp_path, runner)
    fid = upload(svc, "\n".join(line(f"r{i}") for i in range(3)) + "\n")
    bid = create(svc, fid, metadata={"k": "v"})
    assert svc.get_batch(ALICE, bid)["status"] == "validating"
    b = svc.reconcile(bid)
    assert b.status == "in_progress" and b.request_counts.total == 3 and b.model == MODEL
    (_, spec) = runner.submitted[0]
    assert spec["workload"] == {"name": "openai_batch"}
    assert spec["model"]["served_name"] == MODEL and spec["input"]["path"].endswith(".jsonl")
    assert spec["output"]["path"] == b.output_path
    assert spec["errors"]["max_error_fraction"] == 1.0  # failed requests never fail the batch
    from jobs.spec import JobSpec

    JobSpec.from_dict(spec)  # the job accepts it
    # progress while it runs
    Path(b.output_path).mkdir(parents=True)
    (Path(b.output_path) / "progress.json").write_text(json.dumps({"rows_ok": 1, "rows_failed": 1, "updated_at": "x"}))
    b = svc.reconcile(bid)
    assert (b.request_counts.completed, b.request_counts.failed) == (1, 1)
    write_job_output(b.output_path, ["r0", "r2"], ["r1"])
    runner.phase[bid] = RunState("succeeded", 0)
    written: list[str] = []
    update = svc.state.update
    svc.state.update = lambda kind, record, version: (written.append(record["status"]), update(kind, record, version))[
        1
    ]
    b = svc.reconcile(bid)
    assert written == ["finalizing", "completed"]  # each state is stored before the next step
    public = svc.get_batch(ALICE, bid)
    assert public["status"] == "completed" and public["metadata"] == {"k": "v"}
    assert public["request_counts"] == {"total": 3, "completed": 2, "failed": 1}
    for key in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "expires_at"):
        assert isinstance(public[key], int), key
    assert "owner" not in public and "output_path" not in public
    _, chunks = svc.file_content(ALICE, public["output_file_id"])
    assert [json.loads(x)["custom_id"] for x in b"".join(chunks).splitlines()] == ["r0", "r2"]
    _, chunks = svc.file_content(ALICE, public["error_file_id"])
    assert b"r1" in b"".join(chunks)
    assert bid in runner.cleaned
    # terminal: reconcile changes nothing more
    assert svc.reconcile(bid).status == "completed"


@pytest.mark.parametrize(
    ("lines", "code"),
    [
        (["not json"], "invalid_json_line"),
        ([line("a"), line("a")], "duplicate_custom_id"),
        ([line("a", url="/v1/embeddings")], "mismatched_endpoint"),
        ([line("a", model="other-model")], "model_not_found"),
        (
            [json.dumps({"method": "POST", "url": "/v1/chat/completions", "body": {"model": MODEL}})],
            "missing_required_parameter",
        ),
        ([], "empty_file"),
    ],
)
def test_invalid_files_fail_the_batch_before_running(tmp_path: Path, lines: list[str], code: str) -> None:
    runner = FakeRunner()
    svc = make_service(tmp_path, runner)
    bid = create(svc, upload(svc, "\n".join(lines)))
    b = svc.reconcile(bid)
    assert b.status == "failed" and b.failed_at
    assert code in [e.code for e in b.errors.data]
    assert runner.submitted == []
    public = svc.get_batch(ALICE, bid)
    assert public["errors"]["object"] == "list" and public["errors"]["data"][0]["message"]


def test_job_overrides_merge_into_the_spec(tmp_path: Path) -> None:
    runner = FakeRunner()
    svc = make_service(
        tmp_path,
        runner,
        job={"engine": {"batch_size": 4}, "sampling": {"max_tokens": 7}, "output": {"rows_per_file": 4}},
    )
    svc.reconcile(create(svc, upload(svc, line("a"))))
    spec = runner.submitted[0][1]
    assert spec["engine"]["batch_size"] == 4 and spec["engine"]["kind"] == "http"
    assert spec["sampling"] == {"max_tokens": 7}
    assert spec["output"]["rows_per_file"] == 4 and spec["output"]["path"].endswith("/output")
    from pydantic import ValidationError

    from serve_apps.batches.config import BatchesConfig

    with pytest.raises(ValidationError):
        BatchesConfig(job={"output": {"path": "/elsewhere"}})


def test_mismatched_models_and_limits() -> None:
    v = validate_text("\n".join([line("a"), line("b", model="m2")]), "/v1/chat/completions", [MODEL, "m2"], 10)
    assert [e.code for e in v.errors] == ["mismatched_model"] and v.errors[0].line == 2
    v = validate_text("\n".join(line(str(i)) for i in range(5)), "/v1/chat/completions", [MODEL], 3)
    assert [e.code for e in v.errors] == ["too_many_requests"]


def test_file_size_limit(tmp_path: Path) -> None:
    svc = make_service(tmp_path, max_file_bytes=10)
    with pytest.raises(BatchAPIError) as e:
        upload(svc, line("a"))
    assert e.value.status == 400 and e.value.code == "file_too_large"
    assert svc.list_files(ALICE)["data"] == []


def test_bad_create_requests(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    fid = upload(svc, line("a"))
    good = {"input_file_id": fid, "endpoint": "/v1/chat/completions", "completion_window": "24h"}
    for body, status in [
        ({**good, "endpoint": "/v1/embeddings"}, 400),
        ({**good, "completion_window": "1h"}, 400),
        ({**good, "nonsense": 1}, 400),
        ({k: v for k, v in good.items() if k != "input_file_id"}, 400),
        ([], 400),
        ({**good, "metadata": {str(i): "x" for i in range(17)}}, 400),
        ({**good, "input_file_id": "file-unknown"}, 404),
    ]:
        with pytest.raises(BatchAPIError) as e:
            svc.create_batch(ALICE, body)
        assert e.value.status == status, body
    with pytest.raises(BatchAPIError) as e:
        svc.create_file(ALICE, "x", "fine-tune", io.BytesIO(b""))
    assert e.value.status == 400 and e.value.param == "purpose"


def test_ownership(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    fid = upload(svc, line("a"))
    bid = create(svc, fid)
    for call in (
        lambda: svc.get_file(BOB, fid),
        lambda: svc.file_content(BOB, fid),
        lambda: svc.delete_file(BOB, fid),
        lambda: svc.get_batch(BOB, bid),
        lambda: svc.cancel_batch(BOB, bid),
        lambda: create(svc, fid, owner=BOB),
    ):
        with pytest.raises(BatchAPIError) as e:
            call()
        assert e.value.status == 404
    assert svc.list_files(BOB)["data"] == [] and svc.list_batches(BOB)["data"] == []
    assert [f["id"] for f in svc.list_files(ALICE)["data"]] == [fid]
    assert [b["id"] for b in svc.list_batches(ALICE)["data"]] == [bid]


def test_pagination(tmp_path: Path) -> None:
    svc = make_service(tmp_path)
    fid = upload(svc, line("a"))
    ids = [create(svc, fid) for _ in range(5)]
    first = svc.list_batches(ALICE, limit=2)
    assert first["has_more"] and len(first["data"]) == 2
    seen = [b["id"] for b in first["data"]]
    after = first["last_id"]
    while True:
        p = svc.list_batches(ALICE, after=after, limit=2)
        seen += [b["id"] for b in p["data"]]
        if not p["has_more"]:
            break
        after = p["last_id"]
    assert sorted(seen) == sorted(ids) and len(seen) == 5
    with pytest.raises(BatchAPIError):
        svc.list_batches(ALICE, limit=0)


def test_cancel_keeps_partial_output(tmp_path: Path) -> None:
    runner = FakeRunner()
    svc = make_service(tmp_path, runner)
    bid = create(svc, upload(svc, "\n".join(line(f"r{i}") for i in range(4))))
    b = svc.reconcile(bid)
    assert svc.cancel_batch(ALICE, bid)["status"] == "cancelling"
    assert svc.reconcile(bid).status == "cancelling"  # SIGTERM sent, the job is writing its partial output
    assert runner.cancelled == [bid]
    write_job_output(b.output_path, ["r0"], [], success=False)
    runner.phase[bid] = RunState("stopped", 143)
    b = svc.reconcile(bid)
    assert b.status == "cancelled" and b.cancelled_at and b.cancelling_at
    assert b.request_counts.completed == 1 and b.output_file_id
    assert svc.cancel_batch(ALICE, bid)["status"] == "cancelled"  # idempotent
    # cancelling a completed batch is refused
    fid = upload(svc, line("z"))
    done = create(svc, fid)
    b2 = svc.reconcile(done)
    write_job_output(b2.output_path, ["z"], [])
    runner.phase[done] = RunState("succeeded", 0)
    svc.reconcile(done)
    with pytest.raises(BatchAPIError) as e:
        svc.cancel_batch(ALICE, done)
    assert e.value.status == 409


def test_expiry(tmp_path: Path) -> None:
    now = [1_000_000.0]
    runner = FakeRunner()
    svc = make_service(tmp_path, runner, completion_window_s=3600)
    svc.clock = lambda: now[0]
    bid = create(svc, upload(svc, line("a")))
    svc.reconcile(bid)
    now[0] += 3601
    b = svc.reconcile(bid)
    assert b.status == "cancelling" and runner.cancelled == [bid]
    runner.phase[bid] = RunState("stopped", 143)
    b = svc.reconcile(bid)
    assert b.status == "expired" and b.expired_at


def test_state_survives_a_restart_and_a_lost_run_resumes(tmp_path: Path) -> None:
    runner = FakeRunner()
    svc = make_service(tmp_path, runner)
    bid = create(svc, upload(svc, line("a")))
    svc.reconcile(bid)
    # a new service (a restarted replica) over the same folder sees the batch; Ray lost the run
    runner2 = FakeRunner()
    svc2 = make_service(tmp_path, runner2)
    assert svc2.get_batch(ALICE, bid)["status"] == "in_progress"
    b = svc2.reconcile(bid)
    assert b.resubmits == 1 and [s[0] for s in runner2.submitted] == [bid]
    write_job_output(b.output_path, ["a"], [])
    runner2.phase[bid] = RunState("succeeded", 0)
    assert svc2.reconcile(bid).status == "completed"


def test_a_run_that_vanished_after_success_completes(tmp_path: Path) -> None:
    runner = FakeRunner()
    svc = make_service(tmp_path, runner)
    bid = create(svc, upload(svc, line("a")))
    b = svc.reconcile(bid)
    write_job_output(b.output_path, ["a"], [])
    runner.phase.pop(bid)  # e.g. the RayJob was removed by its TTL
    assert svc.reconcile(bid).status == "completed" and runner.submitted == runner.submitted[:1]


def test_a_failed_job_is_run_again_then_fails_the_batch(tmp_path: Path) -> None:
    runner = FakeRunner()  # max_resubmits 2
    svc = make_service(tmp_path, runner)
    bid = create(svc, upload(svc, line("a")))
    first = svc.reconcile(bid).run_name
    names = [first]
    for _ in range(2):
        runner.phase[svc.reconcile(bid).id] = RunState("failed", 1, "too many errors")
        b = svc.reconcile(bid)
        assert b.status == "in_progress"
        names.append(b.run_name)
    assert names == [first, f"{first}-r1", f"{first}-r2"] and len(runner.submitted) == 3
    runner.phase[bid] = RunState("failed", 1, "too many errors")
    b = svc.reconcile(bid)
    assert b.status == "failed" and b.errors.data[0].message == "too many errors"


def test_a_failed_run_is_retried_after_the_delay(tmp_path: Path) -> None:
    now = [1000.0]
    runner = FakeRunner()
    svc = make_service(tmp_path, runner, retry_delay_s=75)
    svc.clock = lambda: now[0]
    bid = create(svc, upload(svc, line("a")))
    svc.reconcile(bid)
    runner.phase[bid] = RunState("failed", 2, "output is in use by another run")  # a crashed run's lease
    b = svc.reconcile(bid)
    assert b.status == "in_progress" and b.retry_at == 1075 and len(runner.submitted) == 1
    now[0] += 74
    assert len(runner.submitted) == 1 and svc.reconcile(bid).resubmits == 0
    now[0] += 2
    b = svc.reconcile(bid)
    assert b.resubmits == 1 and b.retry_at is None and len(runner.submitted) == 2
    assert "retry_at" not in svc.get_batch(ALICE, bid)


def test_folder_state_compare_and_swap(tmp_path: Path) -> None:
    store = FolderState(tmp_path)
    store.create("batch", {"id": "batch_1", "owner": "o", "n": 0})
    with pytest.raises(Conflict):
        store.create("batch", {"id": "batch_1", "owner": "o"})
    record, version = store.get("batch", "batch_1")
    store.update("batch", {**record, "n": 1}, version)
    with pytest.raises(Conflict):
        store.update("batch", {**record, "n": 2}, version)
    assert store.get("batch", "batch_1")[0]["n"] == 1
    assert store.get("batch", "../etc") is None
