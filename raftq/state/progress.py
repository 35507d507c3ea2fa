"""Progress of running tasks, as their workers report it.

A worker holding a task's lease may say how far it is: a fraction (in
thousandths, so the state holds no floats) and a short message. The lease
token fences it like every other call of a worker. The last report stays
with the task until its next attempt starts (a claim clears it) or the task
is dropped; each report is a ``progress`` change in the event stream
(``State.changes``: the same status before and after).
"""

from __future__ import annotations

from typing import Any

from raftq.state.commands import Progress
from raftq.state.indexes import LEASED, Indexes, Result

MAX_MESSAGE = 200


class Reports(Indexes):
    def _progress(self, body: Progress) -> Result:
        self._touch_worker(body.worker_id)
        out: list[dict[str, Any]] = []
        for task_id, token, permille, message in body.items:
            task = self._leased(task_id, token)
            if task is None:
                out.append({"id": task_id, "ok": False, "code": "stale_lease"})
                continue
            self.progress[task_id] = [min(max(permille, 0), 1000), message[:MAX_MESSAGE],
                                      self.clock_ms]
            if self.changes is not None:
                self.changes.append((task, LEASED, LEASED, task.attempts))
            out.append({"id": task_id, "ok": True})
        return {"results": out}

    def progress_view(self, task_id: str) -> dict[str, Any] | None:
        """``{"fraction", "message", "at_ms"}`` (wall time), or None."""
        report = self.progress.get(task_id)
        if report is None:
            return None
        permille, message, at_ms = report
        return {"fraction": permille / 1000, "message": message,
                "at_ms": at_ms + self.wall_offset_ms}
