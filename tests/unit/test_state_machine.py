"""A hypothesis state machine drives ``State.apply`` against the reference model.

Every command goes through ``encoding.encode``/``decode``. After each step the
real state must agree with the model (statuses, attempts, tokens, results),
every index must agree with the tasks, and every status change the state made
must be one ``TRANSITIONS`` allows.
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from state_helpers import ERROR, PAYLOAD, check_consistency, internal_errors
from state_model import Model, normalize

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State
from raftq.state.model import TRANSITIONS, Status, Task
from raftq.state.workers import control_view

IDS = [f"t{i}" for i in range(12)]
QUEUES = ["a", "b", "c"]
WORKERS = ["w1", "w2", "w3"]
TENANTS = ["", "", "acme", "bolt", "cora"]
LIMIT_KEYS = ["k1", "k2"]
# what limits may be put on: the keys tasks name, task names and tenants
ANY_KEY = [*LIMIT_KEYS, "task:job", "task:mail", "tenant:acme", "tenant:bolt"]
NAMES = ["job", "mail", "slow"]

priorities = st.sampled_from([0, 64, 128, 192, 255]) | st.integers(0, 255)
lateness = st.sampled_from([0, 0, 0, 0, 1, 700, 10_000])  # how far behind the clock a command is


class RecordingState(State):
    """A State that remembers every status change it makes."""

    moves: list[tuple[Status | None, Status]]

    def _move(self, task: Task, new: Status) -> None:
        self.moves.append((task.status, new))
        super()._move(task, new)

    def _enqueue_new(self, tasks: list[Task]) -> None:
        self.moves += [(task.status, Status.QUEUED) for task in tasks]
        super()._enqueue_new(tasks)


def recording(state: State) -> RecordingState:
    rec = RecordingState.__new__(RecordingState)
    rec.__dict__.update(state.__dict__)
    rec.moves = []
    return rec


@st.composite
def task_specs(draw: st.DrawFn, now_ms: int) -> c.TaskSpec:
    delay = draw(st.sampled_from([0, 0, 0]) | st.integers(1, 3_000))
    eta = draw(st.sampled_from([0, 0, 0, 0, 1]) | st.integers(-3_000, 40_000).map(
        lambda d: max(now_ms + d, 0)))
    return c.TaskSpec(
        id=draw(st.sampled_from(IDS)),
        name=draw(st.sampled_from(NAMES)),
        queue=draw(st.sampled_from(QUEUES)),
        priority=draw(priorities),
        payload=PAYLOAD,
        delay_ms=delay,
        eta_ms=eta,
        max_attempts=draw(st.integers(1, 3)),
        timeout_ms=1_000,
        retry_backoff_ms=draw(st.sampled_from([0, 10, 500])),
        result_ttl_ms=draw(st.sampled_from([0, 100, 2_000, 1_000_000])),
        expires_ms=draw(st.sampled_from([0, 0, 0, 1, 400, 5_000])),
        expires_at_ms=draw(st.sampled_from([0, 0, 0, 0]) | st.integers(-3_000, 40_000).map(
            lambda d: max(now_ms + d, 1))),
        tenant=draw(st.sampled_from(TENANTS)),
        rate_key=draw(st.sampled_from(["", "", "", *LIMIT_KEYS])),
        concurrency_key=draw(st.sampled_from(["", "", "", *LIMIT_KEYS])),
        unique_key=draw(st.sampled_from(["", "", "", "", "u1", "u2"])),
        unique_for_ms=draw(st.sampled_from([0, 0, 500, 5_000])),
    )


SCHEDULES = ["s1", "s2"]


@st.composite
def schedule_specs(draw: st.DrawFn, now_ms: int) -> c.ScheduleSpec:
    return c.ScheduleSpec(
        id=draw(st.sampled_from(SCHEDULES)),
        task=draw(task_specs(now_ms)),
        every_ms=1_000,
        overlap=draw(st.sampled_from(["allow", "skip", "buffer_one"])),
        catchup=draw(st.sampled_from(["latest", "all", "none"])),
        catchup_window_ms=draw(st.sampled_from([0, 20_000, 100_000])),
        start_ms=draw(st.sampled_from([0, 0, 0, 0, now_ms + 5_000])),
        end_ms=draw(st.sampled_from([0, 0, now_ms + 30_000])),
    )


class StateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = recording(State())
        self.model = Model()
        self.now_ms = 1_000
        self.unsent_ms = 0  # time passed that no tick has carried yet
        self.rid = 0
        self.sent: list[tuple[bytes, Any]] = []  # every entry applied, with its first result

    # ------------------------------------------------------------- plumbing

    def next_rid(self) -> str:
        self.rid += 1
        return f"r{self.rid}"

    def stamp(self, body: c.Body, late: int = 0) -> c.Command:
        return c.Command(body, self.next_rid(), max(0, self.now_ms - late))

    def send(self, entry: c.Command | c.Group) -> Any:
        data = encoding.encode(entry)
        decoded = encoding.decode(data)
        assert decoded == entry
        result = self.state.apply(decoded)
        assert not internal_errors(result), result
        if isinstance(entry, c.Group):
            expected: Any = [self.model.apply(cmd) for cmd in entry.commands]
        else:
            expected = self.model.apply(entry)
        assert normalize(result) == expected
        self.sent.append((data, result))
        return result

    def tasks_in(self, *statuses: Status) -> list[str]:
        return sorted(i for i, t in self.model.tasks.items() if t.status in statuses)

    def plain_tasks(self) -> Any:
        plain = snapshot.to_plain(self.state)
        return [plain[k] for k in ("clock_ms", "next_seq", "next_token", "tasks", "by_status")]

    # ---------------------------------------------------------------- rules

    def a_tick(self, elapsed_ms: int = 0, skew_ms: int = 0, after: int | None = None) -> c.Tick:
        after = self.model.ticks if after is None else after
        return c.Tick(elapsed_ms, self.now_ms + skew_ms, after, "leader")

    @initialize()
    def start(self) -> None:
        self.send(self.stamp(self.a_tick()))

    @rule(data=st.data(), n=st.integers(1, 4), late=lateness)
    def submit(self, data: st.DataObject, n: int, late: int) -> None:
        specs = [data.draw(task_specs(self.now_ms)) for _ in range(n)]
        self.send(self.stamp(c.Submit(specs), late))

    @rule(data=st.data(), n=st.integers(2, 6))
    def crowd(self, data: st.DataObject, n: int) -> None:
        """Tasks of several tenants in one queue and priority, due now: their turns."""
        specs = []
        for _ in range(n):
            spec = data.draw(task_specs(self.now_ms))
            spec.queue, spec.priority, spec.delay_ms, spec.eta_ms = "a", 128, 0, 0
            spec.expires_ms = spec.expires_at_ms = 0
            specs.append(spec)
        self.send(self.stamp(c.Submit(specs)))

    @rule(
        worker=st.sampled_from(WORKERS),
        queues=st.lists(st.sampled_from(QUEUES), min_size=1, max_size=3, unique=True),
        max_=st.integers(0, 4),
        lease_ms=st.sampled_from([1, 500, 3_000, 1_000_000]),
        late=lateness,
        names=st.sampled_from([None, None, None]) | st.lists(st.sampled_from(NAMES),
                                                               min_size=1, max_size=4),
    )
    def claim(self, worker: str, queues: list[str], max_: int, lease_ms: int, late: int,
              names: list[str] | None) -> None:
        steal = [q for q in QUEUES if q not in queues][:1] if max_ % 2 else []
        self.send(self.stamp(c.Claim(worker, queues, max_, lease_ms, "host", 1, steal, names),
                             late))

    @rule(key=st.sampled_from(ANY_KEY), rate=st.integers(1, 4),
          per_ms=st.sampled_from([1, 300, 1_000, 7_000]), burst=st.integers(1, 3),
          delete=st.sampled_from([False, False, False, True]))
    def rate_limit(self, key: str, rate: int, per_ms: int, burst: int, delete: bool) -> None:
        body: c.Body = c.DeleteLimit("rate", key) if delete else c.PutRateLimit(
            key, rate, per_ms, burst)
        self.send(self.stamp(body))

    @rule(key=st.sampled_from(ANY_KEY), max_=st.integers(0, 3),
          delete=st.sampled_from([False, False, True]))
    def concurrency_limit(self, key: str, max_: int, delete: bool) -> None:
        body: c.Body = c.DeleteLimit("concurrency", key) if delete else c.PutConcurrency(
            key, max_)
        self.send(self.stamp(body))

    @rule(queue=st.sampled_from(QUEUES), max_queued=st.sampled_from([None, None, 0, 2, 6]),
          paused=st.sampled_from([None, None, True, False]),
          weights=st.sampled_from([None, None, [], [("acme", 2)], [("bolt", 3), ("", 0)]]))
    def put_queue(self, queue: str, max_queued: int | None, paused: bool | None,
                  weights: list[tuple[str, int]] | None) -> None:
        self.send(self.stamp(c.PutQueue(queue, max_queued, paused, weights)))

    @rule(
        worker=st.sampled_from(["", *WORKERS]),
        queues=st.lists(st.sampled_from(QUEUES), max_size=3),
        names=st.lists(st.sampled_from(NAMES), max_size=4),
        heartbeat_ms=st.sampled_from([0, 200, 2_000]),
        forget_ms=st.sampled_from([0, 1_000, 60_000]),
        late=lateness,
    )
    def beat(self, worker: str, queues: list[str], names: list[str], heartbeat_ms: int,
             forget_ms: int, late: int) -> None:
        """A worker's announcement and heartbeat: the names it runs (the same name twice,
        with other defaults, keeps the latest), its queues and figures."""
        defs = [c.TaskDef(n, QUEUES[i % 3], 64 * i, i or None, 1_000 * i or None, None)
                for i, n in enumerate(names)]
        beat = c.WorkerBeat(worker, "host", 1, queues, defs, heartbeat_ms, forget_ms, 4,
                            "thread", "running", 15, 1_000, 0)
        self.send(self.stamp(beat, late))

    @rule(worker=st.sampled_from(WORKERS),
          action=st.sampled_from(["pause", "resume", "drain", "concurrency", "stop"]),
          concurrency=st.sampled_from([0, 1, 16, 20_000]))
    def control(self, worker: str, action: str, concurrency: int) -> None:
        self.send(self.stamp(c.WorkerControl(worker, action, concurrency, "admin")))

    @rule(worker=st.sampled_from(WORKERS))
    def leave(self, worker: str) -> None:
        self.send(self.stamp(c.Leave(worker)))

    @precondition(lambda self: self.tasks_in(Status.LEASED))
    @rule(data=st.data(), lease_ms=st.sampled_from([1, 500, 3_000]), late=lateness)
    def extend(self, data: st.DataObject, lease_ms: int, late: int) -> None:
        task = self.model.tasks[data.draw(st.sampled_from(self.tasks_in(Status.LEASED)))]
        self.send(self.stamp(c.Extend(task.worker, [(task.id, task.token)], lease_ms), late))

    @precondition(lambda self: self.tasks_in(Status.LEASED))
    @rule(data=st.data(), late=lateness)
    def release(self, data: st.DataObject, late: int) -> None:
        task = self.model.tasks[data.draw(st.sampled_from(self.tasks_in(Status.LEASED)))]
        self.send(self.stamp(c.Release(task.worker, [(task.id, task.token)]), late))

    @precondition(lambda self: self.tasks_in(Status.LEASED))
    @rule(data=st.data(), late=lateness)
    def finish(self, data: st.DataObject, late: int) -> None:
        leased = self.tasks_in(Status.LEASED)
        ids = data.draw(st.lists(st.sampled_from(leased), min_size=1, max_size=3, unique=True))
        items = []
        for task_id in ids:
            token = self.model.tasks[task_id].token
            if data.draw(st.booleans()):
                items.append(c.Outcome(task_id, token, b"\x01"))
            else:
                items.append(c.Outcome(task_id, token, None, dict(ERROR), data.draw(st.booleans())))
        self.send(self.stamp(c.Finish(self.model.tasks[ids[0]].worker, items), late))

    @precondition(lambda self: self.tasks_in(Status.SUCCEEDED))
    @rule(data=st.data())
    def complete_again(self, data: st.DataObject) -> None:
        task = self.model.tasks[data.draw(st.sampled_from(self.tasks_in(Status.SUCCEEDED)))]
        result = self.send(self.stamp(c.Finish(task.worker, [c.Outcome(task.id, task.token)])))
        if task.id in self.model.tasks:  # else its result TTL ran out as the clock moved
            assert result[0]["error"] == "already_finished"

    @rule(
        data=st.data(),
        kind=st.sampled_from(["complete", "fail", "extend", "release"]),
        worker=st.sampled_from(WORKERS),
    )
    def stale_token(self, data: st.DataObject, kind: str, worker: str) -> None:
        task_id = data.draw(st.sampled_from(IDS))
        task = self.model.tasks.get(task_id)
        current = task.token if task is not None else -1
        token = data.draw(st.integers(0, self.model.next_token + 1).filter(lambda t: t != current))
        # Let whatever is due at this clock happen first, so that the stale
        # command itself is the only thing that could change a task.
        self.send(self.stamp(self.a_tick()))
        before = self.plain_tasks()
        if kind == "complete":
            body: c.Body = c.Finish(worker, [c.Outcome(task_id, token, b"\x01")])
        elif kind == "fail":
            body = c.Finish(worker, [c.Outcome(task_id, token, None, dict(ERROR), True)])
        elif kind == "extend":
            body = c.Extend(worker, [(task_id, token)], 1_000)
        else:
            body = c.Release(worker, [(task_id, token)])
        result = self.send(self.stamp(body))
        refusals = ("stale_lease", "not_found", "already_finished")
        assert any(code in str(result) for code in refusals)
        assert self.plain_tasks() == before

    @rule(data=st.data(), paused=st.sampled_from([None, None, True, False]))
    def put_schedule(self, data: st.DataObject, paused: bool | None) -> None:
        self.send(self.stamp(c.PutSchedule(data.draw(schedule_specs(self.now_ms)), paused)))

    @rule(data=st.data(), back_ms=st.sampled_from([0, 1, 500, 9_000, 15_000, 50_000, -100]),
          late=st.sampled_from([0, 0, 300, 11_000, 30_000]),
          manual=st.sampled_from([False] * 5 + [True]),
          stale=st.sampled_from([0] * 9 + [-1]), wrong_id=st.sampled_from([False] * 9 + [True]))
    def fire(self, data: st.DataObject, back_ms: int, late: int, manual: bool, stale: int,
             wrong_id: bool) -> None:
        """A fire for a tick around now, proposed late or not, by a current or a deposed
        leader (an old generation), sometimes again for a tick already decided."""
        existing = sorted(self.model.schedules)
        sid = data.draw(st.sampled_from(existing * 4 + SCHEDULES))
        sched = self.model.schedules.get(sid)
        generation = (sched.generation if sched else 1) + stale
        tick = max(self.now_ms - back_ms, 1)
        if sched is not None and data.draw(st.sampled_from([True, True, True, False])):
            tick = sched.cursor_ms + data.draw(st.sampled_from([0, 1, 1_000, 1_000]))  # repeats too
        task = data.draw(task_specs(self.now_ms))
        task.id = f"{sid}@{tick}" + (":trigger" if manual else "")
        if wrong_id:
            task.id = f"{sid}@{tick + 1}"
        result = self.send(c.Command(c.Fire(sid, tick, generation, task, manual),
                                     self.next_rid(), tick + late))
        event(f"fire: {result.get('outcome') or result['error']}")

    @rule(sid=st.sampled_from(SCHEDULES), paused=st.booleans())
    def pause_schedule(self, sid: str, paused: bool) -> None:
        self.send(self.stamp(c.PauseSchedule(sid, paused)))

    @rule(sid=st.sampled_from(SCHEDULES))
    def delete_schedule(self, sid: str) -> None:
        self.send(self.stamp(c.DeleteSchedule(sid)))

    @rule(data=st.data(), late=lateness)
    def cancel(self, data: st.DataObject, late: int) -> None:
        self.send(self.stamp(c.Cancel(data.draw(st.sampled_from(IDS))), late))

    @rule(data=st.data(), late=lateness)
    def requeue(self, data: st.DataObject, late: int) -> None:
        dead = self.tasks_in(Status.DEAD)
        task_id = data.draw(st.sampled_from(dead) if dead else st.sampled_from(IDS))
        self.send(self.stamp(c.Requeue(task_id), late))

    @rule(data=st.data(), late=lateness)
    def retry_now(self, data: st.DataObject, late: int) -> None:
        waiting = [i for i in self.tasks_in(Status.SCHEDULED) if self.model.tasks[i].attempts]
        task_id = data.draw(st.sampled_from(waiting) if waiting else st.sampled_from(IDS))
        result = self.send(self.stamp(c.RetryNow(task_id), late))
        event(f"retry_now: {result.get('status') or result['error']}")

    @rule(data=st.data(), one=st.booleans(), queue=st.sampled_from([None, *QUEUES]))
    def purge(self, data: st.DataObject, one: bool, queue: str | None) -> None:
        if one:
            dead = self.tasks_in(Status.DEAD)
            task_id = data.draw(st.sampled_from(dead) if dead else st.sampled_from(IDS))
            self.send(self.stamp(c.Purge(task_id)))
        else:
            self.send(self.stamp(c.Purge(None, queue)))

    @rule(advance_ms=st.integers(0, 3_000) | st.sampled_from([100_000, 400_000]),
          send=st.booleans(), skew_ms=st.sampled_from([0, 0, 5, -5, 30_000, -30_000]),
          stale=st.sampled_from([0, 0, 0, -1, 1]))
    def tick(self, advance_ms: int, send: bool, skew_ms: int, stale: int) -> None:
        """Time passes; only a tick carries it into the state. The leader's wall clock
        may be off (``skew_ms``), and a tick measured from another than the latest
        tick (``stale``) moves nothing."""
        self.now_ms += advance_ms
        self.unsent_ms += advance_ms
        if send:
            result = self.send(self.stamp(
                self.a_tick(self.unsent_ms, skew_ms, self.model.ticks + stale)))
            if result["advanced"]:
                self.unsent_ms = 0

    @rule(data=st.data(), n=st.integers(1, 3))
    def group(self, data: st.DataObject, n: int) -> None:
        cmds = []
        for _ in range(n):
            body = data.draw(st.one_of(
                st.builds(c.Submit, st.lists(task_specs(self.now_ms), min_size=1, max_size=2)),
                st.builds(c.Claim, st.sampled_from(WORKERS), st.just(QUEUES), st.integers(0, 2),
                          st.just(2_000)),
                st.builds(c.Cancel, st.sampled_from(IDS)),
                st.just(self.a_tick()),
            ))
            cmds.append(self.stamp(body))
        self.send(c.Group(cmds))

    @precondition(lambda self: self.sent)
    @rule(data=st.data(), late=st.integers(0, 1_000))
    def replay(self, data: st.DataObject, late: int) -> None:
        """An entry delivered again (same request ids) changes nothing and answers the same."""
        entry, first = data.draw(st.sampled_from(self.sent))
        digest = snapshot.digest(self.state)
        assert self.state.apply(encoding.decode(entry)) == first
        assert snapshot.digest(self.state) == digest

    @rule()
    def restore_from_snapshot(self) -> None:
        digest = snapshot.digest(self.state)
        self.state = recording(snapshot.loads(snapshot.dumps(self.state)))
        assert snapshot.digest(self.state) == digest

    # ----------------------------------------------------------- invariants

    @invariant()
    def agrees_with_the_model(self) -> None:
        state, model = self.state, self.model
        assert (state.clock_ms, state.ticks, state.wall_offset_ms) == (
            model.clock_ms, model.ticks, model.wall_offset_ms)
        assert set(state.tasks) == set(model.tasks)
        for task_id, want in model.tasks.items():
            got = state.tasks[task_id]
            assert (got.status, got.attempts, got.queue, got.priority, len(got.errors)) == (
                want.status, want.attempts, want.queue, want.priority, want.errors
            ), task_id
            if got.status is Status.LEASED:
                assert (got.lease_token, got.lease_worker, got.lease_expires_ms) == (
                    want.token, want.worker, want.lease_expires_ms
                )
            if got.status is Status.SCHEDULED:
                assert got.ready_at_ms == want.ready_at_ms
            assert got.expires_at_ms == want.expires_at_ms, task_id
            assert [e[2]["type"] for e in got.errors
                    if e[2]["type"] in ("LeaseExpired", "WorkerDied")] == want.expired_leases
        assert {w["worker_id"]: (w["last_seen_ms"], w["running"]) for w in state.workers_view()} \
            == {w: (seen, model.running(w)) for w, seen in model.workers.items()}
        assert {w: (r.names, r.heartbeat_ms, r.forget_ms, control_view(r))
                for w, r in state.presence.items()} == {
            w: (r.names, r.heartbeat_ms, r.forget_ms, r.control())
            for w, r in model.presence.items()}
        assert state.task_defs == model.defs

    @invariant()
    def schedules_agree_with_the_model(self) -> None:
        got = {sid: (s.spec, s.generation, s.cursor_ms, s.paused, s.last_task_id, s.buffered,
                     s.fired, s.skipped, s.history)
               for sid, s in self.state.schedules.items()}
        want = {sid: (s.spec, s.generation, s.cursor_ms, s.paused, s.last_task_id, s.buffered,
                      s.fired, s.skipped, s.history[-20:])
                for sid, s in self.model.schedules.items()}
        assert got == want
        assert list(self.state.buffered_schedules) == list(self.model.buffered_ids)

    @invariant()
    def turns_agree_with_the_model(self) -> None:
        got = {}
        for key, level in self.state.levels.items():
            ring = level.turn_order()
            used = level.used if level.ring and level.ring[0] is (ring or [None])[0] else 0
            got[key] = ([ln.tenant for ln in ring], used if ring else 0,
                        {t: ln.gate for t, ln in level.lines.items() if ln.gate})
        want = {key: (lv.ring, lv.used if lv.ring else 0, lv.gated)
                for key, lv in self.model.levels.items() if lv.ring or lv.gated}
        assert got == want
        assert self.state.held == {i: t.held for i, t in self.model.tasks.items() if t.held}

    @invariant()
    def limits_hold(self) -> None:
        """Concurrency never above its max when a lease begins; over any stretch of the
        replicated clock a rate key admits at most burst + (t2 - h1) * rate / per_ms
        (h1: the horizon when the stretch began) since its limit was last set."""
        assert self.model.over_max == []
        for key, starts in self.model.starts.items():
            rate = self.model.rates[key]
            for i, (_, h1) in enumerate(starts):
                for j in range(i, len(starts)):
                    t2 = starts[j][0]
                    assert (j - i + 1) * rate.per_ms <= (rate.burst * rate.per_ms
                                                         + (t2 - h1) * rate.rate), key

    @invariant()
    def no_task_lost(self) -> None:
        for task_id in self.model.submitted:
            assert task_id in self.state.tasks or self.model.gone.get(task_id) in ("ttl", "purge")

    @invariant()
    def indexes_agree_with_tasks(self) -> None:
        check_consistency(self.state)

    @invariant()
    def only_allowed_transitions(self) -> None:
        for old, new in self.state.moves:
            assert new in TRANSITIONS[old], (old, new)
        self.state.moves.clear()


StateMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None
)
TestStateMachine = StateMachine.TestCase
