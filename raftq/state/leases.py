"""Claims and fenced leases.

A claim takes ready tasks in priority order, tenants taking turns within a
level (``raftq.state.fair``; limits may set some aside, ``raftq.state.flow``),
and from its ``steal_from`` queues only when its own have none; it leases each
with a new token from a counter; extend and release must present the task's current token, so
a worker whose lease was lost can no longer touch the task. A lease that
passes its expiry on the replicated clock puts the task back in its queue,
or among the dead letters when its attempts are spent; its error says
``WorkerDied`` when the holder had also stopped its heartbeats. A claim that
names task names (a worker announces the ones it runs) leases only tasks of
those names (the ready tasks are kept per queue and name: ``raftq.state.fair``).
"""

from __future__ import annotations

import heapq
from typing import Any

from raftq.state.commands import Claim, Extend, Leave, Release
from raftq.state.fair import SET_ASIDE_PER_CLAIM
from raftq.state.indexes import DEAD, LEASED, Indexes, Result
from raftq.state.model import Task


class Leases(Indexes):
    def _claim(self, claim: Claim) -> Result:
        self._touch_worker(claim.worker_id, claim.host, claim.pid, claim.queues)
        leased: list[dict[str, Any]] = []
        self.budget = SET_ASIDE_PER_CLAIM
        lanes = self._lanes_of(claim.queues, claim.names)  # a claim changes no queue's state
        steal = self._lanes_of(claim.steal_from, claim.names) if claim.steal_from else []
        while len(leased) < claim.max:
            task = self._pop_ready(lanes)
            if task is None and steal:
                task = self._pop_ready(steal)
            if task is None:
                break
            token = self.next_token
            self.next_token += 1
            task.attempts += 1
            if self.progress:  # a new attempt starts from nothing
                self.progress.pop(task.id, None)
            task.lease_token = token
            task.lease_worker = claim.worker_id
            task.lease_expires_ms = self.clock_ms + claim.lease_ms
            self._move(task, LEASED)
            if self.limits_on:
                self._lease_started(task)
            heapq.heappush(self.lease_heap, (task.lease_expires_ms, token, task.id))
            self.worker_leases.setdefault(claim.worker_id, {})[task.id] = None
            leased.append(
                {
                    "id": task.id,
                    "lease_token": token,
                    "lease_expires_ms": task.lease_expires_ms,
                    "attempt": task.attempts,
                }
            )
        return {"tasks": leased}

    def _extend(self, ext: Extend) -> Result:
        self._touch_worker(ext.worker_id)
        out: list[dict[str, Any]] = []
        for task_id, token in ext.leases:
            task = self._leased(task_id, token)
            if task is None:
                out.append({"id": task_id, "ok": False, "code": "stale_lease"})
                continue
            task.lease_expires_ms = self.clock_ms + ext.lease_ms
            task.updated_ms = self.clock_ms
            heapq.heappush(self.lease_heap, (task.lease_expires_ms, token, task.id))
            out.append({"id": task_id, "ok": True, "lease_expires_ms": task.lease_expires_ms})
        return {"leases": out}

    def _release(self, rel: Release) -> Result:
        self._touch_worker(rel.worker_id)
        out: list[dict[str, Any]] = []
        for task_id, token in rel.leases:
            task = self._leased(task_id, token)
            if task is None:
                out.append({"id": task_id, "ok": False, "code": "stale_lease"})
                continue
            self._clear_lease(task)
            self._enqueue(task)  # recorded with the attempt handed back (State.changes)
            task.attempts -= 1  # it never ran: the attempt is not spent
            out.append({"id": task_id, "ok": True})
        return {"leases": out}

    def _leave(self, leave: Leave) -> Result:
        """Forget a worker that stopped cleanly; one still holding leases stays
        listed until they are delivered or expire (then the tick forgets it)."""
        held = len(self.worker_leases.get(leave.worker_id, {}))
        if held:
            return {"worker_id": leave.worker_id, "removed": False, "leases": held}
        removed = self._drop_worker(leave.worker_id)
        return {"worker_id": leave.worker_id, "removed": removed, "leases": 0}

    def _lease_expired(self, task: Task) -> None:
        worker = task.lease_worker
        silent_ms = self._silent_ms(worker)
        if silent_ms is None:
            error = {"type": "LeaseExpired", "message": f"lease of worker {worker} expired",
                     "traceback": ""}
        else:
            # The worker stopped beating: its process died (os.abort, OOM kill, kill -9)
            # or it lost the cluster, and nobody else can say which.
            error = {"type": "WorkerDied",
                     "message": f"worker {worker} died or lost the cluster: no heartbeat for "
                                f"{silent_ms / 1000:.1f} s, and its lease expired",
                     "traceback": ""}
        task.errors = [*task.errors, [task.attempts, self.clock_ms, error]]
        self._clear_lease(task)
        if task.attempts >= task.max_attempts:
            self._move(task, DEAD)
        else:
            self._enqueue(task)
