"""Dependencies and workflows: fan-in decided in ``apply``, in log order.

A task with parents is created ``waiting``. Each parent, when it first ends
(succeeded, dead, cancelled or expired), tells its children, in the order they
were created; a child decides in the same ``apply``:

- ``run_when`` success (the default): queued once every parent succeeded. A
  parent that ended otherwise cancels it at once (``on_parent_failure``
  cancel, the default; the reason, naming the parent, is its error entry, and
  its own children follow in turn), or counts as done (``run``).
- ``run_when`` failure: an error handler, queued once every parent ended if
  one of them ended dead, else cancelled as not needed.
- ``run_when`` always: queued once every parent ended.

A parent that already ended when the child is created counts at once. Parents
must exist when the child is created (earlier in the same command counts), so
a cycle cannot be built. A dead parent that is requeued later does not undo
what its children decided.

Results are kept while they may be needed: a task that ended is not dropped
by its result TTL while any child has not ended, nor while its workflow has a
task that has not ended.

The cascade runs as a work list, never by recursion (a chain of 10,000
cancels would overflow the stack); ``_settling`` is empty between commands.
"""

from __future__ import annotations

import heapq
from typing import Any

from raftq.state.commands import CancelWorkflow, Deps, Linked, TaskSpec
from raftq.state.graph import (
    CANCEL,
    FAILURE,
    ON_PARENT_FAILURE,
    RUN_WHEN,
    SUCCESS,
    Flow,
    Link,
)
from raftq.state.indexes import (
    CANCELLED,
    DEAD,
    QUEUED,
    SCHEDULED,
    SUCCEEDED,
    WAITING,
    Indexes,
    Result,
    reject,
)
from raftq.state.model import EXPIRING, TERMINAL, Status, Task

# The largest workflow one command may create (the edge says so with a 400 first).
MAX_WORKFLOW_TASKS = 10_000
# What ``workflow_status`` answers.
WORKFLOW_STATUSES = ("running", "succeeded", "failed", "cancelled")


class Workflows(Indexes):
    def __init__(self) -> None:
        super().__init__()
        self._settling: list[Task] = []  # parents that ended, to tell their children
        self._draining = False

    # ------------------------------------------------------------- commands

    def _linked(self, cmd: Linked) -> Result:
        wid, tasks = cmd.workflow_id, self.tasks
        if wid and wid in self.flows:
            return self.workflow_created(wid, created=False)
        if len(cmd.tasks) != len(cmd.deps) or len(cmd.tasks) > MAX_WORKFLOW_TASKS:
            return reject("invalid", "a workflow has 1 deps entry per task, "
                          f"at most {MAX_WORKFLOW_TASKS} tasks")
        earlier: dict[str, None] = {}
        for spec, deps in zip(cmd.tasks, cmd.deps, strict=True):
            problem = self._check(spec, deps, earlier, whole=bool(wid))
            if problem is not None:
                return problem
            earlier[spec.id] = None
        flow = None
        if wid:
            flow = self.flows[wid] = Flow(self.clock_ms)
            flow.keys = list(cmd.keys) if len(cmd.keys) == len(cmd.tasks) else []
        out: list[dict[str, Any]] = []
        for spec, deps in zip(cmd.tasks, cmd.deps, strict=True):
            existing = tasks.get(spec.id)
            if existing is not None:
                out.append({"id": spec.id, "created": False, "status": str(existing.status)})
                continue
            task = self._create(spec, deps, flow, wid)
            out.append({"id": spec.id, "created": True, "status": str(task.status)})
        if wid:
            return self.workflow_created(wid, created=True)
        return out

    def _check(
        self, spec: TaskSpec, deps: Deps, earlier: dict[str, None], whole: bool
    ) -> dict[str, Any] | None:
        if deps.on_parent_failure not in ON_PARENT_FAILURE:
            return reject("invalid", f"on_parent_failure must be one of {ON_PARENT_FAILURE}",
                          id=spec.id)
        if deps.run_when not in RUN_WHEN:
            return reject("invalid", f"run_when must be one of {RUN_WHEN}", id=spec.id)
        for parent in deps.parents:
            if parent not in self.tasks and parent not in earlier:
                return reject("unknown_parent", f"task {spec.id} depends on {parent}, "
                              "which does not exist", id=spec.id, parent=parent)
        if whole and (spec.id in self.tasks or spec.id in earlier):
            return reject("conflict", f"task {spec.id} exists already", id=spec.id)
        return None

    def _create(self, spec: TaskSpec, deps: Deps, flow: Flow | None, wid: str) -> Task:
        task = self.tasks[spec.id] = Task(
            spec.id, spec.name, spec.queue, spec.priority, spec.payload, spec.max_attempts,
            spec.timeout_ms, spec.retry_backoff_ms, spec.result_ttl_ms, self.clock_ms,
        )
        self._flow_fields(task, spec)
        if spec.expires_ms or spec.expires_at_ms:
            self._set_expiry(task, spec)
        parents = list(dict.fromkeys(deps.parents))
        link = self.links[spec.id] = Link(parents, deps.on_parent_failure, deps.run_when,
                                          deps.pass_results, wid)
        if flow is not None:
            flow.ids.append(spec.id)
            flow.open += 1
            flow.alive += 1
        if not parents:
            ready_at = self.clock_ms + spec.delay_ms
            if spec.eta_ms:
                ready_at = max(ready_at, spec.eta_ms - self.wall_offset_ms)
            if ready_at <= self.clock_ms:
                self._enqueue(task)
            else:
                self._schedule(task, ready_at)
            return task
        self._move(task, WAITING)
        for parent_id in parents:
            parent = self.tasks[parent_id]
            plink = self.links.get(parent_id)
            if plink is None:
                plink = self.links[parent_id] = Link()
            plink.children.append(spec.id)
            plink.open_children += 1
            if parent.status in TERMINAL:
                self._heard(task, link, parent)
            else:
                plink.notify.append(spec.id)
                link.waiting += 1
        if task.status is WAITING:
            self._decide(task, link)
        self._drain()
        return task

    def _cancel_workflow(self, cmd: CancelWorkflow) -> Result:
        flow = self.flows.get(cmd.id)
        if flow is None:
            return reject("not_found", f"no workflow {cmd.id}")
        flow.cancelled = True
        before = self._count_cancelled(flow)
        for task_id in flow.ids:  # parents first: their children follow in the cascade
            task = self.tasks.get(task_id)
            if task is not None and task.status in (WAITING, QUEUED, SCHEDULED):
                self._skip(task, "WorkflowCancelled", f"workflow {cmd.id} was cancelled")
        self._drain()
        return {"workflow_id": cmd.id, "cancelled": self._count_cancelled(flow) - before}

    def _count_cancelled(self, flow: Flow) -> int:
        tasks = self.tasks
        return sum(1 for i in flow.ids if i in tasks and tasks[i].status is CANCELLED)

    # ----------------------------------------------------- the cascade's rules

    def _linked_moved(self, task: Task, old: Status | None) -> None:
        """Called by ``_move`` for a task with a link: keep the counts of what has
        not ended, and tell the children of a task that ended."""
        ended = task.status in TERMINAL
        if ended == (old in TERMINAL):
            return
        link = self.links[task.id]
        step = -1 if ended else 1
        for parent_id in link.parents:
            plink = self.links.get(parent_id)
            if plink is not None:
                plink.open_children += step
                if plink.open_children == 0:
                    self._unpin(parent_id)
        if link.workflow_id:
            flow = self.flows.get(link.workflow_id)
            if flow is not None:
                flow.open += step
                if flow.open == 0:
                    for member in flow.ids:
                        self._unpin(member)
        if ended and link.notify:
            self._settling.append(task)
            self._drain()

    def _drain(self) -> None:
        if self._draining:
            return
        self._draining = True
        try:
            settling, i = self._settling, 0
            while i < len(settling):
                self._tell_children(settling[i])
                i += 1
        finally:
            self._settling = []
            self._draining = False

    def _tell_children(self, parent: Task) -> None:
        plink = self.links.get(parent.id)
        if plink is None:
            return
        notify, plink.notify = plink.notify, []
        for child_id in notify:
            child = self.tasks.get(child_id)
            if child is None or child.status is not WAITING:
                continue
            link = self.links[child_id]
            link.waiting -= 1
            self._heard(child, link, parent)
            if child.status is WAITING:
                self._decide(child, link)

    def _heard(self, child: Task, link: Link, parent: Task) -> None:
        """``parent`` ended: note how, and cancel at once when the policy says so."""
        if parent.status is SUCCEEDED:
            return
        if parent.status is DEAD:
            link.dead = True
        if not link.failed:
            link.failed = parent.id
            if link.run_when == SUCCESS and link.on_parent_failure == CANCEL:
                self._skip(child, "ParentFailed", f"parent {parent.id} ended {parent.status}")

    def _decide(self, child: Task, link: Link) -> None:
        if link.waiting:
            return
        if link.run_when == FAILURE and not link.dead:
            self._skip(child, "NotNeeded", "no parent ended dead (run_when failure)")
        else:
            self._enqueue(child)

    def _skip(self, task: Task, kind: str, message: str) -> None:
        error = {"type": kind, "message": message, "traceback": ""}
        task.errors = [*task.errors, [task.attempts, self.clock_ms, error]]
        self._move(task, CANCELLED)

    # ------------------------------------------------------- keeping results

    def _pinned(self, task: Task) -> bool:
        """Whether an ended task's result is still needed (not dropped yet)."""
        link = self.links.get(task.id)
        if link is None:
            return False
        if link.open_children:
            return True
        flow = self.flows.get(link.workflow_id) if link.workflow_id else None
        return flow is not None and flow.open > 0

    def _unpin(self, task_id: str) -> None:
        task = self.tasks.get(task_id)
        if (task is not None and task.status in EXPIRING and task.finished_ms is not None
                and not self._pinned(task)):
            heapq.heappush(self.expiry_heap, (task.finished_ms + task.result_ttl_ms, task_id))

    def _unlink(self, task: Task) -> None:
        """Called by ``_drop``: forget the dropped task's link (and its workflow
        after its last task)."""
        link = self.links.pop(task.id, None)
        if link is None or not link.workflow_id:
            return
        flow = self.flows.get(link.workflow_id)
        if flow is not None:
            flow.alive -= 1
            if flow.alive <= 0:
                del self.flows[link.workflow_id]

    # ------------------------------------------------------------------ reads

    def workflow_created(self, wid: str, created: bool) -> dict[str, Any]:
        flow = self.flows[wid]
        tasks = [{"id": i, "status": self.status_of(i)} for i in flow.ids]
        return {"workflow_id": wid, "created": created, "tasks": tasks}

    def status_of(self, task_id: str) -> str:
        task = self.tasks.get(task_id)
        return "gone" if task is None else str(task.status)

    def workflow_status(self, wid: str) -> str:
        """running, succeeded, failed (a task ended dead or expired) or cancelled."""
        flow = self.flows[wid]
        if flow.open > 0:
            return "running"
        failed = cancelled = False
        for task_id in flow.ids:
            task = self.tasks.get(task_id)
            if task is None or task.status is SUCCEEDED:
                continue
            if task.status is CANCELLED:
                kinds = [e[2].get("type") for e in task.errors]
                cancelled = cancelled or not kinds or kinds[-1] != "NotNeeded"
            else:
                failed = True
        if failed:
            return "failed"
        return "cancelled" if cancelled or flow.cancelled else "succeeded"

    def graph_view(self, task_id: str) -> dict[str, Any]:
        """A task's place in the graph for its view ({} without one)."""
        link = self.links.get(task_id)
        if link is None or not (link.parents or link.children or link.workflow_id):
            return {}
        return {"depends_on": list(link.parents), "children": list(link.children),
                "run_when": link.run_when, "on_parent_failure": link.on_parent_failure,
                "pass_results": link.pass_results, "workflow_id": link.workflow_id or None}

    def parent_results(self, task_id: str) -> list[Any] | None:
        """What a task with ``pass_results`` gets: per parent, in the order named,
        ``[id, status, result bytes or None, last error or None]``; None without."""
        link = self.links.get(task_id)
        if link is None or not link.pass_results:
            return None
        out: list[Any] = []
        for parent_id in link.parents:
            parent = self.tasks.get(parent_id)
            if parent is None:
                out.append([parent_id, "gone", None, None])
                continue
            last_error = parent.errors[-1][2] if parent.errors else None
            out.append([parent_id, str(parent.status), parent.result, last_error])
        return out
