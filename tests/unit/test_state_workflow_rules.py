"""A hypothesis state machine for dependencies: random graphs, outcomes, cancels,
requeues, time and snapshots, checked against the rules of ``raftq.state.workflows``.

Rather than a second implementation predicting every result, each step checks
the properties the rules promise:

- a child becomes queued only when its parents allow it: every parent
  succeeded (``run_when`` success with ``on_parent_failure`` cancel), every
  parent ended (``run`` or ``always``), or every parent ended and one ended dead
  (``failure``); a succeeded parent is still there to give its result;
- a parent that failed leaves no ``success``/``cancel`` child waiting (the
  cascade cancelled it, and its descendants in turn);
- nothing waits forever: a waiting task always has a parent that has not
  ended and will tell it;
- the graph's counters agree with the tasks, every index agrees with the
  tasks, every status change is in the table, and replay and snapshot give the
  same digest.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from state_helpers import ERROR, PAYLOAD, check_consistency, internal_errors

from raftq.state import commands as c
from raftq.state import encoding, snapshot
from raftq.state.machine import State
from raftq.state.model import TERMINAL, TRANSITIONS, Status, Task

S = Status


class Watched(State):
    """A State that checks each release of a waiting task as it happens."""

    moves: list[tuple[Status | None, Status]]
    ended_once: set[str]
    was_dead: set[str]

    def _move(self, task: Task, new: Status) -> None:
        self.moves.append((task.status, new))
        if task.status is S.WAITING and new is S.QUEUED:
            self.check_release(task)
        if new in TERMINAL:
            self.ended_once.add(task.id)
        if new is S.DEAD:
            self.was_dead.add(task.id)
        super()._move(task, new)

    def check_release(self, task: Task) -> None:
        link = self.links[task.id]
        assert all(p in self.ended_once for p in link.parents), (task.id, link.parents)
        if link.run_when == "success" and link.on_parent_failure == "cancel":
            for p in link.parents:
                parent = self.tasks.get(p)
                assert parent is not None and parent.status is S.SUCCEEDED, (task.id, p)
        if link.run_when == "failure":
            assert any(p in self.was_dead for p in link.parents), task.id


def watched(state: State, old: Watched | None = None) -> Watched:
    rec = Watched.__new__(Watched)
    rec.__dict__.update(state.__dict__)
    rec.moves = []
    rec.ended_once = set() if old is None else old.ended_once
    rec.was_dead = set() if old is None else old.was_dead
    return rec


class Graphs(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = watched(State())
        self.now_ms = 1_000
        self.rid = 0
        self.next_id = 0
        self.sent: list[tuple[bytes, Any]] = []
        self.send(c.Tick(0, self.now_ms, 0, "leader"), rid="")

    def send(self, body: c.Body, rid: str | None = None) -> Any:
        self.rid += 1
        cmd = c.Command(body, f"r{self.rid}" if rid is None else rid, self.now_ms)
        data = encoding.encode(cmd)
        result = self.state.apply(encoding.decode(data))
        assert not internal_errors(result), result
        self.sent.append((data, result))
        return result

    def new_spec(self, ttl_ms: int, attempts: int) -> c.TaskSpec:
        self.next_id += 1
        return c.TaskSpec(f"t{self.next_id}", "job", "q", 128, PAYLOAD, 0, 0, attempts, 1_000,
                          0, ttl_ms)

    def ids(self, *statuses: Status) -> list[str]:
        return [i for i, t in self.state.tasks.items() if not statuses or t.status in statuses]

    # ---------------------------------------------------------------- rules

    @rule(data=st.data(), n=st.integers(1, 5), workflow=st.booleans(),
          ttl_ms=st.sampled_from([0, 100, 1_000_000]))
    def create(self, data: st.DataObject, n: int, workflow: bool, ttl_ms: int) -> None:
        self.send(c.Tick(0, self.now_ms, self.state.ticks, "leader"), rid="")  # TTLs run out
        existing = self.ids()
        specs: list[c.TaskSpec] = []
        deps: list[c.Deps] = []
        for _ in range(n):
            pool = existing + [s.id for s in specs]
            parents = data.draw(st.lists(st.sampled_from(pool), max_size=3)) if pool else []
            if data.draw(st.integers(0, 30)) == 0:
                parents.append("missing")  # rejected, all or none
            deps.append(c.Deps(parents, data.draw(st.sampled_from(["cancel", "run"])),
                               data.draw(st.sampled_from(["success", "success", "failure",
                                                          "always"])),
                               data.draw(st.booleans())))
            specs.append(self.new_spec(ttl_ms, data.draw(st.integers(1, 2))))
        wid = f"w{self.rid}" if workflow else ""
        before = set(self.state.tasks)
        out = self.send(c.Linked(specs, deps, wid, [s.id for s in specs] if wid else []))
        if any("missing" in d.parents for d in deps):
            assert out["error"] == "unknown_parent"
            assert set(self.state.tasks) == before
        else:
            assert "error" not in out, out

    @rule(n=st.integers(1, 4), worker=st.sampled_from(["w1", "w2"]))
    def claim(self, n: int, worker: str) -> None:
        self.send(c.Claim(worker, ["q"], n, 1_000, "h", 1))

    @precondition(lambda self: self.ids(S.LEASED))
    @rule(data=st.data(), ok=st.booleans(), retry=st.booleans())
    def finish(self, data: st.DataObject, ok: bool, retry: bool) -> None:
        task = self.state.tasks[data.draw(st.sampled_from(self.ids(S.LEASED)))]
        outcome = (c.Outcome(task.id, task.lease_token, b"\x01") if ok else
                   c.Outcome(task.id, task.lease_token, None, dict(ERROR), retry))
        self.send(c.Finish(task.lease_worker, [outcome]))

    @precondition(lambda self: self.state.tasks)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.send(c.Cancel(data.draw(st.sampled_from(self.ids()))))

    @precondition(lambda self: self.ids(S.DEAD))
    @rule(data=st.data())
    def requeue(self, data: st.DataObject) -> None:
        self.send(c.Requeue(data.draw(st.sampled_from(self.ids(S.DEAD)))))

    @precondition(lambda self: self.ids(S.DEAD))
    @rule(data=st.data())
    def purge(self, data: st.DataObject) -> None:
        self.send(c.Purge(data.draw(st.sampled_from(self.ids(S.DEAD)))))

    @precondition(lambda self: self.state.flows)
    @rule(data=st.data())
    def cancel_workflow(self, data: st.DataObject) -> None:
        self.send(c.CancelWorkflow(data.draw(st.sampled_from(sorted(self.state.flows)))))

    @rule(advance_ms=st.sampled_from([0, 50, 500, 2_000]))
    def tick(self, advance_ms: int) -> None:
        self.now_ms += advance_ms
        self.send(c.Tick(advance_ms, self.now_ms, self.state.ticks, "leader"), rid="")

    @rule()
    def restore_from_snapshot(self) -> None:
        digest = snapshot.digest(self.state)
        self.state = watched(snapshot.loads(snapshot.dumps(self.state)), self.state)
        assert snapshot.digest(self.state) == digest

    @precondition(lambda self: len(self.sent) > 1)
    @rule()
    def replay_the_log(self) -> None:
        again = State()
        for data, _ in self.sent:
            again.apply(encoding.decode(data))
        assert snapshot.digest(again) == snapshot.digest(self.state)

    # ----------------------------------------------------------- invariants

    @invariant()
    def nothing_waits_forever(self) -> None:
        state = self.state
        for task_id in state.by_status[S.WAITING]:
            link = state.links[task_id]
            told_by = [p for p in link.parents if p in state.tasks
                       and state.tasks[p].status not in TERMINAL
                       and task_id in state.links[p].notify]
            assert told_by, f"{task_id} waits for parents that all ended"
            assert link.waiting == len(told_by)
            if link.run_when == "success" and link.on_parent_failure == "cancel":
                assert not link.failed, f"{task_id} waits after parent {link.failed} failed"

    @invariant()
    def graph_counts_agree(self) -> None:
        state = self.state
        for task_id, link in state.links.items():
            open_children = sum(1 for ch in link.children
                                if ch in state.tasks and state.tasks[ch].status not in TERMINAL)
            assert link.open_children == open_children, task_id
        for wid, flow in state.flows.items():
            members = [state.tasks[i] for i in flow.ids if i in state.tasks]
            assert flow.alive == len(members), wid
            assert flow.open == sum(1 for t in members if t.status not in TERMINAL), wid

    @invariant()
    def indexes_agree(self) -> None:
        check_consistency(self.state)
        assert set(self.state.links) <= set(self.state.tasks)

    @invariant()
    def only_allowed_transitions(self) -> None:
        for old, new in self.state.moves:
            assert new in TRANSITIONS[old], (old, new)
        self.state.moves.clear()


Graphs.TestCase.settings = settings(max_examples=100, stateful_step_count=40, deadline=None)
TestGraphs = Graphs.TestCase
