"""What a finished task means to the caller: its result, or ``TaskFailed`` for a
dead, cancelled or expired one; and the long-poll arithmetic of waiting for it."""

from __future__ import annotations

from typing import Any

from raftq import errors
from raftq.client.request import Json

TERMINAL = frozenset({"succeeded", "dead", "cancelled", "expired"})
MAX_WAIT_MS = 60_000


def outcome(task: Json) -> Any:
    """The result of a terminal task, or ``TaskFailed`` for a dead, cancelled or expired
    one."""
    status = task.get("status")
    if status == "succeeded":
        return task.get("result")
    task_errors = list(task.get("errors") or [])
    what = f"task {task.get('id')} ({task.get('name')}) is {status}"
    if task_errors:
        last = task_errors[-1].get("error") or {}
        if isinstance(last, dict):
            what += f" after {len(task_errors)} failed attempt(s): {last.get('type', 'Error')}"
            what += f": {last.get('message', '')}"
        else:
            what += f": {last}"
    raise errors.TaskFailed(
        what, task_id=str(task.get("id", "")), status=str(status), errors=task_errors
    )


def batch_view(result: Json) -> Json:
    """What a batch submission tells of one task (``id`` and ``status``; older nodes: the task)."""
    task = result.get("task")
    if isinstance(task, dict):
        return task
    return {k: v for k, v in result.items() if k != "created"}


def wait_ms_for(deadline: float | None, now: float) -> int:
    if deadline is None:
        return MAX_WAIT_MS
    return max(0, min(MAX_WAIT_MS, int((deadline - now) * 1000)))


def not_done(task_id: str, status: str, timeout: float | None) -> TimeoutError:
    return TimeoutError(f"task {task_id} is still {status} after {timeout}s")
