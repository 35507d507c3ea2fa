"""The reference model of what workers announce and the control they get, for the
stateful test (a mixin of ``state_model.Model``): ``raftq.state.workers`` written as
plainly as possible."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from raftq.state import commands as c
from raftq.state.model import LOST_AFTER_BEATS, WORKER_FORGET_MS


@dataclass
class ModelPresence:
    names: list[str] = field(default_factory=list)
    heartbeat_ms: int = 1
    forget_ms: int = 0
    paused: bool = False
    draining: bool = False
    concurrency: int = 0
    version: int = 0

    def control(self) -> dict[str, Any]:
        return {"paused": self.paused, "draining": self.draining,
                "concurrency": self.concurrency or None, "version": self.version}


class WorkerModel:
    clock_ms: int

    def __init__(self) -> None:
        self.workers: dict[str, int] = {}  # worker_id -> last seen
        self.presence: dict[str, ModelPresence] = {}
        self.defs: dict[str, c.TaskDef] = {}

    def running(self, worker_id: str) -> int:
        raise NotImplementedError

    def _touch(self, worker_id: str) -> None:
        if worker_id:
            self.workers[worker_id] = self.clock_ms

    def silent(self, worker_id: str) -> int | None:
        """How long an announced worker has been silent if that makes it lost."""
        record = self.presence.get(worker_id)
        if record is None or worker_id not in self.workers:
            return None
        silent = self.clock_ms - self.workers[worker_id]
        return silent if silent > LOST_AFTER_BEATS * record.heartbeat_ms else None

    def forget_workers(self) -> None:
        for worker_id, seen in list(self.workers.items()):
            record = self.presence.get(worker_id)
            forget = record.forget_ms if record is not None else WORKER_FORGET_MS
            if seen + forget <= self.clock_ms and not self.running(worker_id):
                self.leave(worker_id)

    def leave(self, worker_id: str) -> Any:
        held = self.running(worker_id)
        if held:
            return {"worker_id": worker_id, "removed": False, "leases": held}
        removed = self.workers.pop(worker_id, None) is not None
        self.presence.pop(worker_id, None)
        return {"worker_id": worker_id, "removed": removed, "leases": 0}

    def beat(self, beat: c.WorkerBeat) -> Any:
        if not beat.worker_id:
            return {"error": "invalid"}
        self._touch(beat.worker_id)
        record = self.presence.setdefault(beat.worker_id, ModelPresence())
        record.names = list(dict.fromkeys(d.name for d in beat.tasks))
        record.heartbeat_ms = max(beat.heartbeat_ms, 1)
        record.forget_ms = max(beat.forget_ms, 0)
        for d in beat.tasks:
            self.defs[d.name] = d
        return {"worker_id": beat.worker_id, "control": record.control()}

    def control(self, cmd: c.WorkerControl) -> Any:
        record = self.presence.get(cmd.worker_id)
        if record is None:
            return {"error": "conflict" if cmd.worker_id in self.workers else "not_found"}
        if cmd.action == "pause":
            record.paused = True
        elif cmd.action == "resume":
            record.paused = False
        elif cmd.action == "drain":
            record.draining = True
        elif cmd.action == "concurrency" and 1 <= cmd.concurrency <= 10_000:
            record.concurrency = cmd.concurrency
        else:
            return {"error": "invalid"}
        record.version += 1
        return {"worker_id": cmd.worker_id, "control": record.control()}
