"""Workers the cluster knows: claims by task name, announcements, lost and forgotten
workers, control, and the reads other features use (``raftq.state.workers``)."""

from __future__ import annotations

from state_helpers import Harness, check_consistency, spec

from raftq.state import commands as c
from raftq.state import snapshot
from raftq.state.workers import live_runners, no_runner, task_defaults

ADD = c.TaskDef("add", "default", 128)
SLOW = c.TaskDef("slow", "default", 64, 1, 1_000, 0)


def beat(h: Harness, worker: str, *defs: c.TaskDef, heartbeat_ms: int = 1_000,
         forget_ms: int = 60_000, queues: list[str] | None = None) -> dict[str, object]:
    out: dict[str, object] = h.run(c.WorkerBeat(
        worker, "host", 7, queues or ["default"], list(defs), heartbeat_ms, forget_ms, 4,
        "thread", "running", 125, 2048, 0))
    return out


def claim(h: Harness, worker: str, names: list[str] | None, n: int = 10) -> list[str]:
    result = h.run(c.Claim(worker, ["default"], n, 30_000, "host", 7, names=names))
    return [t["id"] for t in result["tasks"]]


def test_a_claim_leases_only_the_names_it_runs_in_priority_then_age_order() -> None:
    h = Harness()
    h.submit(spec("s1", name="slow"), spec("a1", name="add"), spec("s2", name="slow", priority=200),
             spec("a2", name="add"), spec("m1", name="mail"))
    assert claim(h, "w1", ["add"]) == ["a1", "a2"]
    assert claim(h, "w2", ["slow", "mail", "slow"], n=2) == ["s2", "s1"]
    assert claim(h, "w3", []) == []
    assert claim(h, "w3", None) == ["m1"]  # a claim naming no names takes any
    check_consistency(h.state)


def test_tasks_nobody_runs_stay_queued_and_say_so() -> None:
    h = Harness()
    beat(h, "w1", ADD)
    h.submit(spec("s1", name="slow"))
    assert claim(h, "w1", ["add"]) == []
    assert h.status("s1") == "queued"
    assert not h.state.claimable(["default"], ["add"])
    assert h.state.claimable(["default"], ["slow"]) and h.state.claimable(["default"])
    assert no_runner(h.state, "slow", "default") == "no worker runs 'slow'"
    assert no_runner(h.state, "add", "default") is None
    assert no_runner(h.state, "add", "other") == "no worker runs 'add' from queue 'other'"
    beat(h, "w2", SLOW)
    assert live_runners(h.state, "slow") == ["w2"]
    assert no_runner(h.state, "slow", "default") is None


def test_an_announcement_is_the_names_definition_and_its_defaults() -> None:
    h = Harness()
    assert task_defaults(h.state, "slow") == {}
    answer = beat(h, "w1", ADD, SLOW)
    assert answer == {"worker_id": "w1", "control": {
        "paused": False, "draining": False, "concurrency": None, "version": 0}}
    assert task_defaults(h.state, "slow") == {
        "queue": "default", "priority": 64, "max_attempts": 1, "timeout_ms": 1_000,
        "retry_backoff_ms": 0}
    assert task_defaults(h.state, "add") == {"queue": "default", "priority": 128}
    beat(h, "w1", ADD)  # w1 no longer runs slow: the definition stays, the runner goes
    assert h.state.runners == {"add": {"w1": None}}
    assert task_defaults(h.state, "slow")["timeout_ms"] == 1_000
    view = h.state.workers_view()[0]
    assert (view["tasks"], view["cpu_pct"], view["rss_kb"], view["state"]) == (
        ["add"], 12.5, 2048, "active")


def test_a_silent_worker_is_lost_after_three_beats_and_forgotten_after_forget_ms() -> None:
    h = Harness()
    beat(h, "w1", ADD, heartbeat_ms=1_000, forget_ms=10_000)
    h.tick(3_000)
    assert h.state.workers_view()[0]["state"] == "active"
    h.tick(100)
    assert h.state.workers_view()[0]["state"] == "lost"
    assert live_runners(h.state, "add") == []
    h.tick(6_800)
    assert [w["worker_id"] for w in h.state.workers_view()] == ["w1"]
    h.tick(200)
    assert h.state.workers_view() == []
    assert h.state.runners == {} and h.state.presence == {}


def test_a_lease_of_a_worker_that_stopped_beating_expires_as_worker_died() -> None:
    h = Harness()
    beat(h, "w1", ADD, heartbeat_ms=1_000)
    h.submit(spec("a", name="add", max_attempts=1))
    h.run(c.Claim("w1", ["default"], 1, 5_000, "host", 7, names=["add"]))
    h.tick(6_000)
    error = h.task("a").errors[-1][2]
    assert h.status("a") == "dead"
    assert error["type"] == "WorkerDied"
    assert error["message"].startswith("worker w1 died or lost the cluster: no heartbeat for")
    # one that kept beating but let its lease go is plain LeaseExpired
    h.submit(spec("b", name="add"))
    beat(h, "w1", ADD, heartbeat_ms=10_000)
    h.run(c.Claim("w1", ["default"], 1, 1_000, "host", 7, names=["add"]))
    h.tick(2_000)
    assert h.task("b").errors[-1][2]["type"] == "LeaseExpired"


def test_control_is_versioned_refused_for_unknown_workers_and_audited() -> None:
    h = Harness()
    assert h.run(c.WorkerControl("w9", "pause"))["error"] == "not_found"
    claim(h, "old", None)
    assert h.run(c.WorkerControl("old", "pause"))["error"] == "conflict"
    beat(h, "w1", ADD)
    assert h.run(c.WorkerControl("w1", "concurrency", 0))["error"] == "invalid"
    assert h.run(c.WorkerControl("w1", "stop"))["error"] == "invalid"
    h.run(c.WorkerControl("w1", "pause", 0, "ops"))
    h.run(c.WorkerControl("w1", "concurrency", 2, "ops"))
    answer = beat(h, "w1", ADD)
    assert answer["control"] == {"paused": True, "draining": False, "concurrency": 2,
                                 "version": 2}
    h.run(c.WorkerControl("w1", "resume", 0, "ops"))
    h.run(c.WorkerControl("w1", "drain", 0, "ops"))
    assert beat(h, "w1", ADD)["control"] == {"paused": False, "draining": True,
                                             "concurrency": 2, "version": 4}
    actions = [e["action"] for e in h.state.audit_view()]
    assert actions == ["worker_pause", "worker_concurrency", "worker_resume", "worker_drain"]


def test_what_workers_announced_survives_a_snapshot() -> None:
    h = Harness()
    beat(h, "w1", ADD, SLOW)
    h.run(c.WorkerControl("w1", "pause"))
    h.submit(spec("a", name="add"), spec("s", name="slow"))
    restored = snapshot.loads(snapshot.dumps(h.state))
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    check_consistency(restored)
    assert restored.runners == h.state.runners
    assert task_defaults(restored, "slow") == task_defaults(h.state, "slow")
    h.state = restored
    assert claim(h, "w1", ["slow"]) == ["s"]


def test_a_worker_that_leaves_takes_its_names_along() -> None:
    h = Harness()
    beat(h, "w1", ADD)
    assert h.run(c.Leave("w1"))["removed"] is True
    assert h.state.runners == {} and h.state.presence == {}
    assert task_defaults(h.state, "add") == {"queue": "default", "priority": 128}
