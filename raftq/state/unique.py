"""Unique tasks: a submission whose ``unique_key`` is held returns the holder.

A task submitted with a ``unique_key`` holds the key while it has not
finished, and besides for ``unique_for_ms`` after it was created (on the
replicated clock), finished or not. A submission with a key that is held
creates nothing and answers with the holder (``created: False``), whatever its
own id; once the key is free the next submission with it creates a task and
holds it. Decided in ``apply``, in log order, so it holds across nodes, retries
and the tasks of one batch. A holder that is dropped (its result TTL, or a
purged dead letter) frees the key.
"""

from __future__ import annotations

from raftq.state.commands import TaskSpec
from raftq.state.indexes import Indexes
from raftq.state.model import TERMINAL, Task


class Unique(Indexes):
    def __init__(self) -> None:
        super().__init__()
        self.unique: dict[str, tuple[str, int]] = {}  # key -> (task id, held at least until)

    def _unique_holder(self, key: str) -> Task | None:
        entry = self.unique.get(key)
        if entry is None:
            return None
        task = self.tasks.get(entry[0])
        if task is None:
            return None
        if task.status in TERMINAL and self.clock_ms >= entry[1]:
            return None
        return task

    def _unique_hold(self, task: Task, spec: TaskSpec) -> None:
        self.unique[spec.unique_key] = (task.id, self.clock_ms + spec.unique_for_ms)

    def _unique_dropped(self, task: Task) -> None:
        key = task.flow_keys[2] if task.flow_keys is not None else ""
        entry = self.unique.get(key)
        if entry is not None and entry[0] == task.id:
            del self.unique[key]
