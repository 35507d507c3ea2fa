"""Workers the cluster knows: their announcements, heartbeats and control.

A worker announces itself when it starts and again with every heartbeat
(``WorkerBeat``): the task names it runs with each one's decorator defaults,
its queues, its concurrency and pool, what it is doing (running, paused,
draining) and its process's CPU and memory, measured at the worker. The
latest announcement of a task name is its definition (``task_defs``): a
submission by name that leaves a field out gets it from there, decided at
the edge (``raftq.server``) so the command carries the values. ``runners``
indexes which workers run each name.

An announced worker silent for three of its heartbeats is lost; one silent
for its ``forget_ms`` (stamped from the node's config into each beat) and
holding no lease is forgotten on a tick. An operator's ``WorkerControl``
(pause, resume, drain, concurrency) is stored with a version; the worker
picks it up in the answer to its next heartbeat and reports the version it
acted on.

Below the class are pure reads on a state, for the API and other features
(``live_runners``, ``task_defaults``, ``no_runner``): time is the replicated
clock's, never a wall clock.
"""

from __future__ import annotations

from typing import Any

from raftq.state.commands import TaskDef, WorkerBeat, WorkerControl
from raftq.state.indexes import Indexes, Result, reject
from raftq.state.model import LOST_AFTER_BEATS, Presence

# A worker that never announced itself (it claims without task names) counts as
# lost after this long unseen; it is seen at every claim and lease extension.
UNANNOUNCED_LOST_MS = 30_000
MAX_CONCURRENCY = 10_000
ACTIONS = ("pause", "resume", "drain", "concurrency")
RUNNING_SHOWN = 100  # task ids listed per worker


class Workers(Indexes):
    def _beat(self, beat: WorkerBeat) -> Result:
        worker_id = beat.worker_id
        if not worker_id:
            return reject("invalid", "a heartbeat needs a worker id")
        self._touch_worker(worker_id, beat.host, beat.pid, beat.queues)
        record = self.presence.get(worker_id)
        if record is None:
            record = self.presence[worker_id] = Presence()
        names = list(dict.fromkeys(d.name for d in beat.tasks))
        if names != record.names:
            kept = dict.fromkeys(names)
            for name in record.names:
                if name not in kept:
                    self._unrun(name, worker_id)
            for name in names:
                self.runners.setdefault(name, {})[worker_id] = None
            record.names = names
        for definition in beat.tasks:
            self.task_defs[definition.name] = definition
        record.heartbeat_ms = max(beat.heartbeat_ms, 1)
        record.forget_ms = max(beat.forget_ms, 0)
        record.concurrency = beat.concurrency
        record.pool = beat.pool
        record.mode = beat.mode
        record.cpu_permille = beat.cpu_permille
        record.rss_kb = beat.rss_kb
        record.beat_ms = self.clock_ms
        record.acted = beat.acted
        return {"worker_id": worker_id, "control": control_view(record)}

    def _control(self, cmd: WorkerControl) -> Result:
        record = self.presence.get(cmd.worker_id)
        if record is None:
            if cmd.worker_id in self.workers:
                return reject("conflict", f"worker {cmd.worker_id} does not announce itself "
                                          "(it claims without task names) and takes no control")
            return reject("not_found", f"no worker {cmd.worker_id}")
        if cmd.action == "pause":
            record.paused = True
        elif cmd.action == "resume":
            record.paused = False
        elif cmd.action == "drain":
            record.draining = True
        elif cmd.action == "concurrency" and 1 <= cmd.concurrency <= MAX_CONCURRENCY:
            record.want_concurrency = cmd.concurrency
        elif cmd.action == "concurrency":
            return reject("invalid", f"concurrency must be 1-{MAX_CONCURRENCY}")
        else:
            return reject("invalid", f"action must be one of {', '.join(ACTIONS)}")
        record.control_version += 1
        return {"worker_id": cmd.worker_id, "control": control_view(record)}

    # ------------------------------------------------------------------ reads

    def worker_lost(self, worker_id: str) -> bool:
        info = self.workers.get(worker_id)
        if info is None:
            return True
        record = self.presence.get(worker_id)
        limit = (LOST_AFTER_BEATS * record.heartbeat_ms if record is not None
                 else UNANNOUNCED_LOST_MS)
        silent: int = self.clock_ms - info[3]
        return silent > limit

    def workers_view(self) -> list[dict[str, Any]]:
        out = []
        for worker_id, info in self.workers.items():
            running = list(self.worker_leases.get(worker_id, {}))
            row: dict[str, Any] = {
                "worker_id": worker_id,
                "host": info[0],
                "pid": info[1],
                "queues": info[2],
                "running": len(running),
                "running_ids": running[:RUNNING_SHOWN],
                "last_seen_ms": info[3],
                "silent_ms": self.clock_ms - info[3],
                "state": "lost" if self.worker_lost(worker_id) else "active",
                "announced": worker_id in self.presence,
            }
            record = self.presence.get(worker_id)
            if record is not None:
                row |= {
                    "tasks": record.names,
                    "concurrency": record.concurrency,
                    "pool": record.pool,
                    "mode": record.mode,
                    "cpu_pct": record.cpu_permille / 10,
                    "rss_kb": record.rss_kb,
                    "heartbeat_ms": record.heartbeat_ms,
                    "forget_ms": record.forget_ms,
                    "last_heartbeat_ms": record.beat_ms,
                    "control": control_view(record),
                    "acted": record.acted,
                }
            out.append(row)
        return out


def control_view(record: Presence) -> dict[str, Any]:
    return {"paused": record.paused, "draining": record.draining,
            "concurrency": record.want_concurrency or None, "version": record.control_version}


def live_runners(state: Workers, name: str, queue: str | None = None) -> list[str]:
    """The live workers that run task ``name`` (from ``queue``, if given): announced
    ones that name it, and unannounced ones (they claim any name). Pure: the
    replicated clock decides who is live."""
    out = []
    for worker_id in state.runners.get(name, {}):
        if not state.worker_lost(worker_id) and (
                queue is None or queue in state.workers[worker_id][2]):
            out.append(worker_id)
    for worker_id, info in state.workers.items():
        if (worker_id not in state.presence and not state.worker_lost(worker_id)
                and (queue is None or queue in info[2])):
            out.append(worker_id)
    return out


def task_defaults(state: Workers, name: str) -> dict[str, Any]:
    """The fields a submission of task ``name`` gets when it leaves them out, from the
    latest announcement of the name (``{}`` when no worker announced it), with the
    HTTP API's names."""
    definition: TaskDef | None = state.task_defs.get(name)
    if definition is None:
        return {}
    out: dict[str, Any] = {"queue": definition.queue, "priority": definition.priority}
    if definition.max_attempts is not None:
        out["max_attempts"] = definition.max_attempts
    if definition.timeout_ms is not None:
        out["timeout_ms"] = definition.timeout_ms
    if definition.retry_backoff_ms is not None:
        out["retry_backoff_ms"] = definition.retry_backoff_ms
    return out


def unrun(state: Workers) -> list[tuple[str, str, int]]:
    """``(queue, name, n)``: the ``n`` ready tasks of each queue and name that no live
    worker runs from that queue."""
    return [(queue, name, n) for (queue, name), n in sorted(state.name_ready.items())
            if not live_runners(state, name, queue)]


def no_runner(state: Workers, name: str, queue: str) -> str | None:
    """Why a queued task of ``name`` in ``queue`` does not run, if no live worker runs
    it there: ``"no worker runs 'slow'"`` (or ``"... from queue 'q'"`` when some worker
    runs it from another queue); None when one does."""
    if live_runners(state, name, queue):
        return None
    if live_runners(state, name):
        return f"no worker runs {name!r} from queue {queue!r}"
    return f"no worker runs {name!r}"
