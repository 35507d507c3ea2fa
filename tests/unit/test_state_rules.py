"""Examples for the state machine's rules: idempotency, fencing, order, reads, clock."""

from __future__ import annotations

import pytest
from state_helpers import Harness, check_consistency, spec

from raftq.state import commands as c
from raftq.state import snapshot
from raftq.state.model import DEDUPE_CAPACITY, PRIORITY_NAMES, WORKER_FORGET_MS


def test_submitting_an_existing_id_returns_it_and_creates_nothing() -> None:
    h = Harness()
    h.submit(spec("a", name="first"))
    h.claim_one()
    before = [t.to_plain() for t in h.state.tasks.values()]
    out = h.submit(spec("a", name="second", priority=255), spec("b"))
    assert out == [
        {"id": "a", "created": False, "status": "leased"},
        {"id": "b", "created": True, "status": "queued"},
    ]
    assert h.state.tasks["a"].to_plain() == before[0]
    # a batch naming the same id twice creates it once
    out = h.submit(spec("c"), spec("c"))
    assert [r["created"] for r in out] == [True, False]
    assert h.state.counts[("default", "queued")] == 2


def test_a_mixed_batch_keeps_the_order_of_its_specs() -> None:
    h = Harness()
    h.submit(spec("old"))
    out = h.submit(
        spec("a", queue="q"), spec("b", queue="q", priority=1),
        spec("later", delay_ms=10), spec("c", queue="q"),
        spec("old"), spec("c", queue="q"), spec("d"),
    )
    assert [(r["id"], r["created"], r["status"]) for r in out] == [
        ("a", True, "queued"), ("b", True, "queued"), ("later", True, "scheduled"),
        ("c", True, "queued"), ("old", False, "queued"), ("c", False, "queued"),
        ("d", True, "queued"),
    ]
    seqs = [h.task(i).seq for i in ("old", "a", "b", "later", "c", "d")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    check_consistency(h.state)
    assert h.state.ready_counts == {("default", 128): 2, ("q", 128): 2, ("q", 1): 1}
    h.tick(10)
    assert [t["id"] for t in h.claim(queues=["default"], max=5)] == ["old", "d", "later"]


def test_a_request_id_is_applied_at_most_once() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    first = h.run(c.Claim("w1", ["default"], 1, 1_000), request_id="claim-1")
    digest = snapshot.digest(h.state)
    again = h.run(c.Claim("w1", ["default"], 1, 1_000), request_id="claim-1", now_ms=h.now_ms + 5)
    assert again == first
    assert snapshot.digest(h.state) == digest  # not even the clock moved
    assert h.status("b") == "queued"
    # a retried finish answers like the first time
    token = first["tasks"][0]["lease_token"]
    done = h.run(c.Finish("w1", [c.Outcome("a", token, None, {"type": "E"}, False)]),
                 request_id="fin")
    assert h.run(c.Finish("w1", [c.Outcome("a", token, None, {"type": "E"}, False)]),
                 request_id="fin") == done
    assert len(h.task("a").errors) == 1


def test_dedupe_table_is_bounded_and_forgets_the_oldest() -> None:
    h = Harness()
    h.run(c.Submit([spec("a")]), request_id="oldest")
    for i in range(DEDUPE_CAPACITY):
        h.state.apply(c.Command(c.Tick(), f"tick-{i}", h.now_ms))
    assert len(h.state.dedupe) == DEDUPE_CAPACITY
    assert "oldest" not in h.state.dedupe
    assert "tick-0" in h.state.dedupe
    # forgotten: a replay is applied again (the submission itself is still idempotent)
    assert h.run(c.Submit([spec("a")]), request_id="oldest")[0]["created"] is False


def test_commands_without_a_request_id_are_not_remembered() -> None:
    h = Harness()
    h.run(c.Tick(), request_id="")
    assert len(h.state.dedupe) == 0


@pytest.mark.parametrize("kind", ["complete", "fail", "extend", "release"])
def test_stale_tokens_are_rejected_and_change_nothing(kind: str) -> None:
    h = Harness()
    h.submit(spec("a"))
    old = h.claim("w1", lease_ms=100)[0]["lease_token"]
    h.tick(100)  # the lease expires; another worker now holds the task
    current = h.claim_one("w2")
    assert current != old
    tasks_before = snapshot.to_plain(h.state)["tasks"]
    for token in (old, current + 1, 0):
        if kind == "complete":
            out = h.complete("a", token)
            assert out["error"] == "stale_lease"
        elif kind == "fail":
            out = h.fail("a", token, retry=False)
            assert out["error"] == "stale_lease"
        elif kind == "extend":
            assert h.extend("a", token) == {"id": "a", "ok": False, "code": "stale_lease"}
        else:
            assert h.release("a", token) == {"id": "a", "ok": False, "code": "stale_lease"}
        assert snapshot.to_plain(h.state)["tasks"] == tasks_before
    # the current holder is unaffected
    assert h.complete("a", current, worker_id="w2")["ok"] is True


def test_tokens_of_finished_tasks_are_stale() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b", delay_ms=0))
    token = h.claim_one()
    h.fail("a", token, retry=True)  # scheduled for a retry
    assert h.extend("a", token)["ok"] is False
    assert h.release("a", token)["ok"] is False
    assert h.complete("a", token)["error"] == "stale_lease"
    assert h.complete("nope", 1)["error"] == "not_found"


def test_a_second_completion_of_a_finished_task_is_refused() -> None:
    h = Harness()
    h.submit(spec("a"))
    token = h.claim_one()
    finish = c.Finish("w1", [c.Outcome("a", token, b"\x01")])
    first = h.run(finish, request_id="first")
    assert first == [{"id": "a", "ok": True, "status": "succeeded"}]
    # The same request again (a client's retry) gets its first answer ...
    assert h.run(c.Finish("w1", [c.Outcome("a", token, b"\x02")]), request_id="first") == first
    # ... another request with the same token is refused, and so are a failure
    # report and another token; the stored result stays the first one.
    assert h.complete("a", token, b"\x02")["error"] == "already_finished"
    assert h.fail("a", token)["error"] == "already_finished"
    assert h.complete("a", token + 1)["error"] == "already_finished"
    assert h.task("a").result == b"\x01"


def test_one_finish_can_complete_and_fail_several_tasks() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"), spec("c"))
    leased = {t["id"]: t["lease_token"] for t in h.claim(max=3)}
    out = h.run(c.Finish("w1", [
        c.Outcome("a", leased["a"], b"\x01"),
        c.Outcome("b", leased["b"], None, {"type": "E"}, False),
        c.Outcome("c", 999, b"\x01"),
    ]))
    assert [r.get("status", r.get("error")) for r in out] == ["succeeded", "dead", "stale_lease"]


def test_priority_is_strict_between_levels_and_fifo_within_across_queues() -> None:
    h = Harness()
    low, normal, high = PRIORITY_NAMES["low"], PRIORITY_NAMES["normal"], PRIORITY_NAMES["high"]
    h.submit(
        spec("n1", queue="q1", priority=normal),
        spec("l1", queue="q2", priority=low),
        spec("n2", queue="q2", priority=normal),
        spec("h1", queue="q2", priority=high),
        spec("x1", queue="other", priority=255),
        spec("n3", queue="q1", priority=normal),
        spec("h2", queue="q1", priority=high),
        spec("p7", queue="q1", priority=7),
    )
    h.tick(1)
    h.submit(spec("n4", queue="q2", priority=normal))
    order = [t["id"] for t in h.claim("w1", ["q1", "q2"], max=100)]
    assert order == ["h1", "h2", "n1", "n2", "n3", "n4", "l1", "p7"]
    assert h.status("x1") == "queued"  # a queue not asked for is left alone


def test_claim_takes_at_most_max_in_order() -> None:
    h = Harness()
    h.submit(*(spec(f"t{i}") for i in range(5)))
    assert [t["id"] for t in h.claim(max=2)] == ["t0", "t1"]
    assert [t["id"] for t in h.claim(max=0)] == []
    assert [t["id"] for t in h.claim(max=10)] == ["t2", "t3", "t4"]


def test_depths_by_queue_status_and_priority() -> None:
    h = Harness()
    h.submit(
        spec("a", priority=255), spec("b"), spec("c"), spec("d", queue="mail"),
        spec("e", delay_ms=10),
    )
    h.claim_one("w1", "mail")
    depths = h.state.depths()
    assert depths["default"] | {"ready_by_priority": None} == {
        "queued": 3, "waiting": 0, "scheduled": 1, "leased": 0, "succeeded": 0, "dead": 0,
        "cancelled": 0, "expired": 0, "ready_by_priority": None,
    }
    assert depths["default"]["ready_by_priority"] == {"128": 2, "255": 1}
    assert depths["mail"]["leased"] == 1
    assert depths["mail"]["ready_by_priority"] == {}
    assert h.state.ready_count(["default", "mail"]) == 3
    assert h.state.list_ids(None, "mail", 10) == ["d"]


def test_workers_view_counts_running_leases_and_forgets_idle_workers() -> None:
    h = Harness()
    h.submit(spec("a"), spec("b"))
    h.claim("w1", max=2, lease_ms=10 * WORKER_FORGET_MS)
    h.run(c.Claim("w2", ["default"], 1, 1_000, "host2", 42))
    view = {w["worker_id"]: w for w in h.state.workers_view()}
    assert view["w1"] == {
        "worker_id": "w1", "host": "h", "pid": 7, "queues": ["default"], "running": 2,
        "running_ids": ["a", "b"], "last_seen_ms": h.now_ms, "silent_ms": 0, "state": "active",
        "announced": False,
    }
    assert view["w2"]["running"] == 0 and view["w2"]["host"] == "host2"
    h.tick(WORKER_FORGET_MS)
    # w2 is forgotten; w1 still holds leases and stays
    assert [w["worker_id"] for w in h.state.workers_view()] == ["w1"]
    h.complete("a", h.task("a").lease_token)
    assert h.state.workers_view()[0]["running"] == 1
    assert h.state.workers_view()[0]["last_seen_ms"] == h.now_ms


def test_a_worker_that_leaves_is_forgotten_at_once_unless_it_holds_leases() -> None:
    h = Harness()
    h.submit(spec("a"))
    h.claim("w1")
    h.claim("w2")  # nothing left: w2 holds no lease
    assert h.run(c.Leave("w2")) == {"worker_id": "w2", "removed": True, "leases": 0}
    assert h.run(c.Leave("w1")) == {"worker_id": "w1", "removed": False, "leases": 1}
    assert [w["worker_id"] for w in h.state.workers_view()] == ["w1"]
    assert h.run(c.Leave("nobody")) == {"worker_id": "nobody", "removed": False, "leases": 0}
