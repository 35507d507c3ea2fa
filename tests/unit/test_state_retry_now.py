"""Retry now: a task waiting out its retry backoff is made due at once (op 61)."""

from __future__ import annotations

from typing import Any

from state_helpers import Harness, check_consistency, spec
from test_snapshot import replay

from raftq.state import commands as c
from raftq.state import encoding, snapshot


def retry_now(h: Harness, task_id: str, actor: str = "ops") -> Any:
    return h.run(c.RetryNow(task_id, actor))


def failed_once(backoff_ms: int = 3_600_000) -> Harness:
    """Task ``a`` failed its first attempt and waits an hour (by default) for its retry."""
    h = Harness()
    h.submit(spec("a", max_attempts=3, retry_backoff_ms=backoff_ms))
    assert h.fail("a", h.claim_one(), retry=True)["status"] == "scheduled"
    return h


def test_a_task_in_its_backoff_is_queued_at_once_with_its_attempts_and_errors() -> None:
    h = failed_once()
    before = h.task("a").ready_at_ms
    assert before is not None and before > h.now_ms + 1_000_000
    assert retry_now(h, "a") == {"id": "a", "status": "queued"}
    task = h.task("a")
    assert task.ready_at_ms is None and task.attempts == 1 and len(task.errors) == 1
    assert [t["id"] for t in h.claim()] == ["a"]  # no tick needed: due now
    assert h.task("a").attempts == 2
    assert h.state.audit_view()[-1]["action"] == "retry_now"
    assert h.state.audit_view()[-1]["actor"] == "ops"
    check_consistency(h.state)


def test_the_stale_backoff_timer_does_not_move_it_again() -> None:
    h = failed_once(backoff_ms=1_000)
    retry_now(h, "a")
    token = h.claim_one()
    h.tick(5_000)  # the old timer passes while it runs
    assert h.status("a") == "leased" and h.task("a").lease_token == token
    check_consistency(h.state)


def test_only_a_task_waiting_for_a_retry_can_be_retried_now() -> None:
    h = Harness()
    h.submit(spec("delayed", delay_ms=60_000), spec("queued"), spec("dead", max_attempts=1))
    assert retry_now(h, "nope")["error"] == "not_found"
    for task_id in ("delayed", "queued"):  # a delay is not a backoff
        answer = retry_now(h, task_id)
        assert answer["error"] == "conflict" and "not waiting for a retry" in answer["message"]
    token = h.claim()[0]["lease_token"]
    assert retry_now(h, "queued")["error"] == "conflict"  # leased: it runs
    h.fail("queued", token, retry=False)
    assert h.status("queued") == "dead"
    assert retry_now(h, "queued")["error"] == "conflict"  # a dead letter is requeued instead
    assert h.status("delayed") == "scheduled"
    assert all(row["action"] != "retry_now" for row in h.state.audit_view())


def test_it_encodes_as_op_61() -> None:
    cmd = c.Command(c.RetryNow("a", "ops"), "r1", 5)
    assert encoding.decode(encoding.encode(cmd)) == c.Command(c.RetryNow("a", "ops"), "r1", 5)
    assert c.Op.RETRY_NOW == 61


def test_replay_and_a_snapshot_midway_give_the_same_digest() -> None:
    h = failed_once()
    h.submit(spec("b", max_attempts=2, retry_backoff_ms=500_000))
    h.fail("b", h.claim_one(), retry=True)
    retry_now(h, "a")
    retry_now(h, "a")  # now a conflict, recorded as such
    h.tick(100)
    retry_now(h, "b")
    h.claim(max=2)
    log = h.log
    whole, results = replay(log)
    again, same = replay(log)
    assert snapshot.digest(whole) == snapshot.digest(again) == snapshot.digest(h.state)
    assert results == same
    for cut in range(len(log)):
        half, _ = replay(log[:cut])
        restored, _ = replay(log[cut:], snapshot.loads(snapshot.dumps(half)))
        assert snapshot.digest(restored) == snapshot.digest(whole), cut
        check_consistency(restored)
