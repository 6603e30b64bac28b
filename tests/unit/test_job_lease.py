"""The output lease: one run at a time per output path, on a local folder and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from jobs import io, lease
from jobs.lease import LEASE_FILE, LeaseHeld, LeaseLost, LeaseRecord, OutputLease
from jobs.spec import JobSpec
from llmkit.config import ConfigError


def _write_record(uri: str, *, heartbeat_age_s: float, ttl_s: float = 30, job: str = "old") -> None:
    fs, path = io.filesystem(io.join(uri, LEASE_FILE))
    now = time.time()
    record = LeaseRecord("someone-else", "host-a", 4242, job, now - 100, now - heartbeat_age_s, ttl_s)
    with fs.open_output_stream(path) as f:
        f.write(record.to_bytes())


def _read_record(uri: str) -> LeaseRecord | None:
    fs, path = io.filesystem(io.join(uri, LEASE_FILE))
    try:
        with fs.open_input_stream(path) as f:
            return LeaseRecord.parse(f.read())
    except FileNotFoundError:
        return None


# -- local / PVC -------------------------------------------------------------------
def test_second_run_is_refused_naming_the_holder(tmp_path):
    out = str(tmp_path / "out")
    with OutputLease(out, "first", ttl_s=30) as first:
        assert first.held
        record = _read_record(out)
        assert record.owner == first.owner and record.job == "first" and record.ttl_s == 30
        with pytest.raises(LeaseHeld) as err:
            OutputLease(out, "second", ttl_s=30).acquire()
    message = str(err.value)
    assert isinstance(err.value, ConfigError) and "\n" not in message
    assert message.startswith(f"{out}: output is in use by job 'first' (host ")
    assert "last heartbeat 0 s ago" in message
    assert _read_record(out) is None  # released
    OutputLease(out, "third", ttl_s=30).acquire().release()


def test_expired_lease_is_taken_over(tmp_path, caplog):
    out = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    _write_record(out, heartbeat_age_s=31, ttl_s=30)  # its job was killed 31 s ago
    with caplog.at_level("WARNING"), OutputLease(out, "rerun", ttl_s=30) as taken:
        assert _read_record(out).owner == taken.owner
    assert "taking over an expired lease: job 'old' (host host-a, pid 4242), last heartbeat 31 s ago" in caplog.text


def test_fresh_lease_of_another_run_is_not_taken_over(tmp_path):
    out = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    _write_record(out, heartbeat_age_s=29, ttl_s=30)
    with pytest.raises(LeaseHeld, match="job 'old' .*last heartbeat 29 s ago, ttl 30 s"):
        OutputLease(out, "rerun", ttl_s=30).acquire()
    assert _read_record(out).owner == "someone-else"


def test_release_by_a_non_owner_leaves_the_lease(tmp_path):
    out = str(tmp_path / "out")
    holder = OutputLease(out, "holder", ttl_s=30).acquire()
    other = OutputLease(out, "other", ttl_s=30)
    with pytest.raises(LeaseHeld):
        other.acquire()
    other.release()
    assert _read_record(out).owner == holder.owner
    # A run whose lease was taken over (it stalled past its TTL) does not delete its successor's.
    (tmp_path / "out" / LEASE_FILE).unlink()
    successor = OutputLease(out, "successor", ttl_s=30).acquire()
    holder.release()
    assert _read_record(out).owner == successor.owner
    successor.release()


def test_heartbeat_keeps_the_lease_alive(tmp_path):
    out = str(tmp_path / "out")
    with OutputLease(out, "long", ttl_s=0.6) as holder:
        first = _read_record(out).heartbeat_at
        time.sleep(1.5)  # 2.5 TTLs: without heartbeats the lease would have expired
        assert _read_record(out).heartbeat_at > first + 0.6
        with pytest.raises(LeaseHeld):
            OutputLease(out, "second", ttl_s=0.6).acquire()
        holder.ensure_held()


def test_heartbeat_notices_a_takeover(tmp_path):
    out = str(tmp_path / "out")
    lost = []
    holder = OutputLease(out, "stalled", ttl_s=0.6, on_lost=lost.append).acquire()
    _write_record(out, heartbeat_age_s=0, ttl_s=30, job="newer")  # another run took it over
    deadline = time.time() + 3
    while not lost and time.time() < deadline:
        time.sleep(0.05)
    assert lost and "held by job 'newer'" in lost[0]
    with pytest.raises(LeaseLost):
        holder.ensure_held()
    holder.release()
    assert _read_record(out).job == "newer"


def test_concurrent_acquires_have_one_winner(tmp_path):
    out = str(tmp_path / "out")
    (tmp_path / "out").mkdir()
    _write_record(out, heartbeat_age_s=60, ttl_s=30)  # expired: every contender tries to take it over
    results: list[str] = []
    barrier = threading.Barrier(8)

    def contend(i: int) -> None:
        candidate = OutputLease(out, f"run-{i}", ttl_s=30)
        barrier.wait()
        try:
            candidate.acquire()
            results.append(candidate.owner)
        except LeaseHeld:
            results.append("refused")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r != "refused"]
    assert len(winners) == 1 and _read_record(out).owner == winners[0]


def test_unreadable_lease_file_counts_as_held_until_its_ttl(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / LEASE_FILE).write_text("{not json")
    with pytest.raises(LeaseHeld, match="unreadable lease file"):
        OutputLease(str(out), "run", ttl_s=30).acquire()
    old = time.time() - 31
    os.utime(out / LEASE_FILE, (old, old))
    with OutputLease(str(out), "run", ttl_s=30) as taken:  # unchanged for longer than the TTL: taken over
        assert _read_record(str(out)).owner == taken.owner


def test_lease_ttl_is_a_spec_field():
    assert JobSpec.from_dict({"output": {"path": "x"}}).output.lease_ttl_s == 60
    assert JobSpec.from_dict({"output": {"path": "x", "lease_ttl_s": 120}}).output.lease_ttl_s == 120
    with pytest.raises(ConfigError, match="output.lease_ttl_s"):
        JobSpec.from_dict({"output": {"path": "x", "lease_ttl_s": 0}})


# -- S3 (moto) ---------------------------------------------------------------------
@pytest.fixture(params=["conditional", "read-back"])
def s3_mode(request, monkeypatch):
    """S3 with boto3's conditional writes, and through pyarrow alone (as gs:// works)."""
    if request.param == "read-back":

        def no_boto3(*args, **kwargs):
            raise ImportError("no boto3")

        monkeypatch.setattr(lease, "_S3Store", no_boto3)
    return request.param


def test_s3_second_run_refused_then_released(s3, s3_mode):
    out = f"{s3}/{s3_mode}/refused"
    first = OutputLease(out, "first", ttl_s=30, settle_s=0.1)
    assert isinstance(first._store, lease._S3Store if s3_mode == "conditional" else lease._ObjectStore)
    with first:
        assert _read_record(out).owner == first.owner
        with pytest.raises(LeaseHeld, match=f"^{out}: output is in use by job 'first'"):
            OutputLease(out, "second", ttl_s=30, settle_s=0.1).acquire()
        stranger = OutputLease(out, "stranger", ttl_s=30, settle_s=0.1)
        stranger.release()
        assert _read_record(out).owner == first.owner
    assert _read_record(out) is None


def test_s3_expired_lease_is_taken_over(s3, s3_mode):
    out = f"{s3}/{s3_mode}/expired"
    _write_record(out, heartbeat_age_s=120, ttl_s=60)
    with OutputLease(out, "rerun", ttl_s=30, settle_s=0.1) as taken:
        assert _read_record(out).owner == taken.owner


def test_s3_heartbeat_keeps_the_lease_alive(s3, s3_mode):
    out = f"{s3}/{s3_mode}/heartbeat"
    with OutputLease(out, "long", ttl_s=2.4, settle_s=0.1) as holder:
        first = _read_record(out).heartbeat_at
        time.sleep(3.5)
        assert _read_record(out).heartbeat_at > first + 1
        with pytest.raises(LeaseHeld):
            OutputLease(out, "second", ttl_s=2.4, settle_s=0.1).acquire()
        holder.ensure_held()


def test_s3_conditional_create_refuses_a_lease_written_after_the_read(s3, monkeypatch):
    # Another run's lease appears between this run's read (nothing there) and its write.
    out = f"{s3}/conditional/race"
    candidate = OutputLease(out, "late", ttl_s=30, settle_s=0.1)
    real_read = candidate._store.read
    calls = []

    def read_then_race():
        calls.append(1)
        if len(calls) == 1:
            _write_record(out, heartbeat_age_s=0, ttl_s=30, job="early")
            return None  # what this run saw just before the other write landed
        return real_read()

    monkeypatch.setattr(candidate._store, "read", read_then_race)
    with pytest.raises(LeaseHeld, match="job 'early'"):
        candidate.acquire()
    saved = json.loads(io.read_text(out, LEASE_FILE))
    assert saved["job"] == "early"
