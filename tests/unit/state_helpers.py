"""Builders shared by the state machine's unit tests.

``Harness`` drives a ``State`` the way a replica does: every command is stamped
with a fresh request id and the harness clock, encoded, decoded and applied, and
the encoded entry is kept in ``log`` so tests can replay it. Time passes the way
the leader makes it pass: by ticks carrying the elapsed time, the first of which
starts the state's clock at the harness's.
"""

from __future__ import annotations

from typing import Any

import msgpack

from raftq.state import commands as c
from raftq.state import encoding
from raftq.state.fair import lane
from raftq.state.machine import State
from raftq.state.model import DEFAULT_PRIORITY, DEFAULT_QUEUE, DEFAULT_RESULT_TTL_MS, Status, Task

PAYLOAD = bytes(msgpack.packb([[1, 2], {}], use_bin_type=True))
ERROR = {"type": "ValueError", "message": "boom", "traceback": ""}


def spec(
    task_id: str,
    *,
    name: str = "job",
    queue: str = DEFAULT_QUEUE,
    priority: int = DEFAULT_PRIORITY,
    delay_ms: int = 0,
    eta_ms: int = 0,
    max_attempts: int = 3,
    timeout_ms: int = 60_000,
    retry_backoff_ms: int = 1_000,
    result_ttl_ms: int = DEFAULT_RESULT_TTL_MS,
) -> c.TaskSpec:
    return c.TaskSpec(
        task_id, name, queue, priority, PAYLOAD, delay_ms, eta_ms, max_attempts, timeout_ms,
        retry_backoff_ms, result_ttl_ms,
    )


def internal_errors(result: Any) -> list[Any]:
    """Every ``{"error": "internal"}`` anywhere inside a result."""
    found: list[Any] = []
    if isinstance(result, dict):
        if result.get("error") == "internal":
            found.append(result)
        for value in result.values():
            found += internal_errors(value)
    elif isinstance(result, list | tuple):
        for item in result:
            found += internal_errors(item)
    return found


class Harness:
    """A ``State`` fed through the wire format, with its own clock and request ids."""

    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.state = State()
        self.now_ms = now_ms
        self.log: list[bytes] = []
        self._next_rid = 0
        self.tick()

    def rid(self) -> str:
        self._next_rid += 1
        return f"r{self._next_rid}"

    def run(
        self, body: c.Body, *, now_ms: int | None = None, request_id: str | None = None
    ) -> Any:
        cmd = c.Command(
            body,
            self.rid() if request_id is None else request_id,
            self.now_ms if now_ms is None else now_ms,
        )
        return self.apply(cmd)

    def apply(self, cmd: c.Command | c.Group) -> Any:
        data = encoding.encode(cmd)
        self.log.append(data)
        result = self.state.apply(encoding.decode(data))
        assert not internal_errors(result), result
        return result

    # -- one helper per command, answering the interesting part of the result

    def submit(self, *specs: c.TaskSpec) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.run(c.Submit(list(specs)))
        return result

    def claim(
        self,
        worker_id: str = "w1",
        queues: list[str] | None = None,
        max: int = 1,
        lease_ms: int = 30_000,
    ) -> list[dict[str, Any]]:
        result = self.run(c.Claim(worker_id, queues or [DEFAULT_QUEUE], max, lease_ms, "h", 7))
        leased: list[dict[str, Any]] = result["tasks"]
        return leased

    def claim_one(self, worker_id: str = "w1", queue: str = DEFAULT_QUEUE) -> int:
        """Claim exactly one task and return its lease token."""
        leased = self.claim(worker_id, [queue])
        assert len(leased) == 1, leased
        token: int = leased[0]["lease_token"]
        return token

    def complete(
        self, task_id: str, token: int, result: bytes = b"\xa2ok", worker_id: str = "w1"
    ) -> dict[str, Any]:
        out = self.run(c.Finish(worker_id, [c.Outcome(task_id, token, result)]))
        one: dict[str, Any] = out[0]
        return one

    def fail(
        self, task_id: str, token: int, retry: bool = True, worker_id: str = "w1"
    ) -> dict[str, Any]:
        out = self.run(c.Finish(worker_id, [c.Outcome(task_id, token, None, dict(ERROR), retry)]))
        one: dict[str, Any] = out[0]
        return one

    def extend(self, task_id: str, token: int, lease_ms: int = 30_000) -> dict[str, Any]:
        one: dict[str, Any] = self.run(c.Extend("w1", [(task_id, token)], lease_ms))["leases"][0]
        return one

    def release(self, task_id: str, token: int) -> dict[str, Any]:
        one: dict[str, Any] = self.run(c.Release("w1", [(task_id, token)]))["leases"][0]
        return one

    def cancel(self, task_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.run(c.Cancel(task_id))
        return out

    def requeue(self, task_id: str) -> dict[str, Any]:
        out: dict[str, Any] = self.run(c.Requeue(task_id))
        return out

    def purge(self, task_id: str | None = None, queue: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = self.run(c.Purge(task_id, queue))
        return out

    def tick(self, advance_ms: int = 0, wall_ms: int | None = None) -> Any:
        """``advance_ms`` pass: a leader's tick carrying them (its wall clock the
        harness's, or ``wall_ms``), then one carrying none, after which every timer
        due by the new time has fired (timers fire by the clock before the latest
        tick; ``tick_once`` shows it)."""
        self.tick_once(advance_ms, wall_ms)
        return self.tick_once(0, wall_ms)

    def tick_once(self, advance_ms: int, wall_ms: int | None = None) -> Any:
        self.now_ms += advance_ms
        wall = self.now_ms if wall_ms is None else wall_ms
        return self.run(c.Tick(advance_ms, wall, self.state.ticks, "leader"), request_id="")

    # -- reads

    def task(self, task_id: str) -> Task:
        return self.state.tasks[task_id]

    def status(self, task_id: str) -> str | None:
        task = self.state.tasks.get(task_id)
        return None if task is None else str(task.status)


def check_consistency(state: State) -> None:
    """Every index agrees with the tasks it is derived from."""
    seen: dict[str, str] = {}
    for status, ids in state.by_status.items():
        for task_id in ids:
            assert task_id not in seen, f"{task_id} is both {seen[task_id]} and {status}"
            seen[task_id] = str(status)
    assert seen == {i: str(t.status) for i, t in state.tasks.items()}
    counts: dict[tuple[str, str], int] = {}
    ready: dict[tuple[str, int], int] = {}
    for task in state.tasks.values():
        counts[(task.queue, str(task.status))] = counts.get((task.queue, str(task.status)), 0) + 1
        if task.status is Status.QUEUED:
            ready[(task.queue, task.priority)] = ready.get((task.queue, task.priority), 0) + 1
    assert state.counts == counts
    assert state.ready_counts == ready
    check_turns(state)
    by_name: dict[tuple[str, str], int] = {}
    for task in state.tasks.values():
        if task.status is Status.QUEUED:
            by_name[(task.queue, task.name)] = by_name.get((task.queue, task.name), 0) + 1
    assert state.name_ready == by_name
    assert sorted(state.ready) == sorted(
        lane for lanes in state.lanes.values() for lane in lanes)
    assert all(state.lanes.values()), "an empty lane list is left behind"
    runners = {(name, w) for w, record in state.presence.items() for name in record.names}
    assert {(name, w) for name, ids in state.runners.items() for w in ids} == runners
    assert all(state.runners.values()), "an empty runner list is left behind"
    delayed = {
        i for at, seq, i in state.delayed
        if i in state.tasks and (state.tasks[i].seq, state.tasks[i].ready_at_ms) == (seq, at)
    }
    assert set(state.by_status[Status.SCHEDULED]) <= delayed
    for task_id in state.by_status[Status.SCHEDULED]:
        ready_at_ms = state.tasks[task_id].ready_at_ms
        assert ready_at_ms is not None and ready_at_ms >= state.horizon_ms, "a due task not queued"
    leases = {
        i
        for expires, token, i in state.lease_heap
        if i in state.tasks
        and state.tasks[i].lease_token == token
        and state.tasks[i].lease_expires_ms == expires
    }
    assert set(state.by_status[Status.LEASED]) <= leases
    holders: dict[str, set[str]] = {}
    for task_id in state.by_status[Status.LEASED]:
        task = state.tasks[task_id]
        assert task.lease_expires_ms >= state.horizon_ms, "an expired lease survived a command"
        holders.setdefault(task.lease_worker, set()).add(task_id)
    for worker_id, held in state.worker_leases.items():
        assert set(held) == holders.pop(worker_id, set())
    assert holders == {}, f"leases not in worker_leases: {holders}"
    assert set(state.worker_leases) <= set(state.workers)


def check_turns(state: State) -> None:
    """The levels, lines and rings of ``raftq.state.fair`` and the waiters of
    ``raftq.state.flow`` agree with the queued tasks."""
    live: dict[str, tuple[str, int, str]] = {}
    for (queue, prio), level in state.levels.items():
        assert (level.queue, level.priority) == (queue, prio)
        assert level.lines, "a level without lines is left behind"
        in_ring = 0
        for tenant, line in level.lines.items():
            assert line.tenant == tenant
            assert line.level is level
            linked, node = [], line.head
            while node is not None:  # exactly the queued tasks, linked both ways
                assert node.line is line, "a task in a line it does not name"
                assert node.prv is (linked[-1] if linked else None), "a broken prv link"
                linked.append(node)
                node = node.nxt
            assert linked, "an empty line is left behind"
            assert line.tail is linked[-1], "a line's tail is not its last task"
            seqs = [task.seq for task in linked]
            assert seqs == sorted(seqs), "a line out of seq order"
            for task in linked:
                assert state.tasks.get(task.id) is task and task.status is Status.QUEUED
                assert (lane(task.queue, task.name), task.priority, task.tenant) == (
                    queue, prio, tenant)  # a level's queue is its lane
                assert task.id not in live and task.id not in state.held
                live[task.id] = (queue, prio, tenant)
            entries = sum(1 for ln in level.ring if ln is line)
            assert entries == line.stale + line.in_ring, "a line's count of stale entries"
            assert line.in_ring != bool(line.gate), "a line neither in the ring nor gated"
            in_ring += line.in_ring
            if line.gate:
                assert ("l", queue, prio, tenant) in state.waiters.get(line.gate, ())
        assert level.active == in_ring
        assert (state.ready.get(queue, {}).get(prio) is level) == (in_ring > 0)
    for queue, levels in state.ready.items():
        assert levels and all(state.levels.get((queue, p)) is lv for p, lv in levels.items())
    for task_id, key in state.held.items():
        task = state.tasks[task_id]
        assert task.status is Status.QUEUED and task.line is None
        assert ("t", task_id, task.seq, "") in state.waiters[key]
    assert sorted([*live, *state.held]) == sorted(state.by_status[Status.QUEUED])
    assert all(task.line is None for task in state.tasks.values()
               if task.id not in live), "a task left in a line"
    for key, (cap, running) in state.concurrency.items():
        leased = [state.tasks[i] for i in state.by_status[Status.LEASED]]
        assert running == sum(1 for t in leased if key in state._keys_of(t, True)), cap
