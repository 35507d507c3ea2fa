"""The changes ``apply`` records and the node's ring of them (``raftq.server.events``)."""

from __future__ import annotations

from typing import Any

from state_helpers import Harness, spec

from raftq.server.events import EventLog
from raftq.server.rates import Rates
from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State


class Recorder(Harness):
    """A harness whose every entry goes through an EventLog, with its own log index."""

    def __init__(self, capacity: int = 1000) -> None:
        self.events = EventLog(capacity)
        self.index = 0
        super().__init__()

    def apply(self, cmd: c.Command | c.Group) -> Any:
        data = encoding.encode(cmd)
        self.log.append(data)
        self.index += 1
        self.state.changes = changes = []
        result = self.state.apply(encoding.decode(data))
        self.state.changes = None
        self.events.record(self.index, changes, self.state)
        return result

    def seen(self, since: int = 0) -> list[tuple[Any, ...]]:
        entries = self.events.after(since)
        assert entries is not None
        return [(e.index, r[0], r[1], r[4], r[5]) for e in entries for r in e.rows]


def types_of(h: Recorder, task_id: str) -> list[str]:
    return [t for _, t, tid, _, _ in h.seen() if tid == task_id]


def test_each_change_is_recorded_with_its_meaning() -> None:
    h = Recorder()
    h.submit(spec("a", queue="qa"), spec("b"), spec("c", delay_ms=500))
    token = h.claim_one(queue="qa")
    h.fail("a", token)  # retried later, with a backoff
    h.tick(2_000)
    token = h.claim_one(queue="qa")
    h.fail("a", token, retry=False)
    h.requeue("a")
    token = h.claim_one(queue="qa")
    h.complete("a", token)
    h.cancel("b")
    assert types_of(h, "a") == ["submitted", "leased", "failed", "ready", "leased", "dead",
                                "requeued", "leased", "succeeded"]
    assert types_of(h, "b") == ["submitted", "cancelled"]
    assert types_of(h, "c") == ["submitted", "ready"]
    failed = [r for e in h.events.after(0) or [] for r in e.rows if r[0] == "failed"]
    assert failed[0][6] == {"type": "ValueError", "message": "boom"} and failed[0][5] == 1
    # A lease that runs out is a failed attempt; one handed back is retried without an error.
    h.submit(spec("d", queue="q2"), spec("e", queue="q3"))
    h.claim("w2", ["q2"], lease_ms=100)
    h.tick(1_000)
    assert types_of(h, "d") == ["submitted", "leased", "failed"]
    assert [r[6]["type"] for e in h.events.after(0) or [] for r in e.rows
            if r[1] == "d" and r[0] == "failed"] == ["LeaseExpired"]
    token = h.claim_one(queue="q3")
    h.release("e", token)
    assert types_of(h, "e") == ["submitted", "leased", "retried"]


def test_recording_changes_nothing_in_the_state() -> None:
    plain, recorded = Harness(), Recorder()
    for h in (plain, recorded):
        h.submit(spec("a"), spec("b"))
        token = h.claim_one()
        h.complete("a", token)
        h.cancel("b")
    assert snapshot.digest(plain.state) == snapshot.digest(recorded.state)
    assert recorded.state.changes is None
    # The same log gives the same changes on another node.
    other = Recorder()
    other.state = State()
    other.index = 0
    other.events = EventLog()
    for data in recorded.log:
        other.apply(encoding.decode(data))
    assert other.seen() == recorded.seen()


def test_the_ring_forgets_the_oldest_and_says_so() -> None:
    h = Recorder(capacity=10)
    for i in range(8):
        h.submit(spec(f"t{i}"), spec(f"u{i}"))  # two changes an entry
    assert h.events.base > 0
    assert h.events.after(h.events.base - 1) is None
    kept = h.events.after(h.events.base)
    assert kept is not None and sum(len(e.rows) for e in kept) <= 10
    assert kept[-1].rows[-1][1] == "u7"
    h.events.restored(500)
    assert h.events.after(499) is None and h.events.after(500) == []


def test_rates_count_per_second_over_the_window() -> None:
    rates = Rates(window_s=10)
    row = ("submitted", "t", "n", "q", "queued", 0, None)
    rates.count(100_500, [row, row])
    rates.count(101_000, [("leased", "t", "n", "q", "leased", 1, None)])
    rates.count(105_000, [("dead", "t", "n", "q", "dead", 1, None)])
    series = rates.series(105)
    assert series["start_s"] == 96 and len(series["submitted"]) == 10
    assert series["submitted"][4] == 2 and series["started"][5] == 1 and series["failed"][9] == 1
    rates.count(120_000, [row])  # the window moves; the old seconds go
    assert sum(rates.series()["submitted"]) == 1


def test_progress_is_fenced_kept_until_the_next_attempt_and_snapshotted() -> None:
    h = Recorder()
    h.submit(spec("a"))
    token = h.claim_one()
    assert h.run(c.Progress("w1", [("a", token + 1, 500, "no")])) == {
        "results": [{"id": "a", "ok": False, "code": "stale_lease"}]}
    assert h.run(c.Progress("w1", [("a", token, 400, "step 2 of 5")])) == {
        "results": [{"id": "a", "ok": True}]}
    view = h.state.progress_view("a")
    assert view is not None and view["fraction"] == 0.4 and view["message"] == "step 2 of 5"
    assert [(t, r[6]) for e in h.events.after(0) or [] for r in e.rows
            for t in [r[0]] if t == "progress"] == [
        ("progress", {"fraction": 0.4, "message": "step 2 of 5"})]
    restored = snapshot.loads(snapshot.dumps(h.state))
    assert restored.progress_view("a") == view
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    data = encoding.encode(c.Command(c.Progress("w", [("a", 1, 1000, "m")]), "r", 5))
    assert encoding.decode(data) == c.Command(c.Progress("w", [("a", 1, 1000, "m")]), "r", 5)
    h.fail("a", token)
    h.tick(5_000)
    h.claim_one()  # the next attempt starts from nothing
    assert h.state.progress_view("a") is None
