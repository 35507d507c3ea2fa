"""Listing tasks newest first, a page at a time (a read, never part of ``apply``).

``state.tasks`` keeps creation order and ``created_ms`` never goes down along
it (it is the replicated clock, which only moves forward), so walking the
dict backwards is newest first. Many tasks share a millisecond (a batch, or
everything between two ticks), so a page ends with a cursor naming its last
task, its ``created_ms`` and its rank among the tasks of that millisecond
counted from the newest: ``"<created_ms>:<rank>:<id>"``. The next page starts
right after that task; if the task is gone meanwhile (its result expired), at
the same rank of the same millisecond, which repeats or skips at most as many
tasks as expired there.
"""

from __future__ import annotations

from collections.abc import Iterator

from raftq.state.indexes import Indexes
from raftq.state.model import Status

Cursor = tuple[int, int, str]  # created_ms, rank within that millisecond, task id


class BadCursor(ValueError):
    """The cursor was not made by ``page``."""


def encode_cursor(created_ms: int, rank: int, task_id: str) -> str:
    return f"{created_ms}:{rank}:{task_id}"


def decode_cursor(cursor: str) -> Cursor:
    created, _, rest = cursor.partition(":")
    rank, _, task_id = rest.partition(":")
    if not created.isdigit() or not rank.isdigit() or int(rank) < 1 or not task_id:
        raise BadCursor(f"not a cursor: {cursor[:80]!r}")
    return int(created), int(rank), task_id


def _after(state: Indexes, cursor: Cursor | None) -> Iterator[str]:
    """Task ids newest first, starting after the cursor's task."""
    ids = reversed(state.tasks)
    if cursor is None:
        yield from ids
        return
    created_ms, rank, cursor_id = cursor
    same_ms: list[str] = []  # the cursor's millisecond, newest first, as passed
    for task_id in ids:
        if task_id == cursor_id:
            break
        task_ms = state.tasks[task_id].created_ms
        if task_ms == created_ms:
            same_ms.append(task_id)
        elif task_ms < created_ms:  # passed where the cursor's task was: it is gone
            yield from same_ms[rank - 1:]
            yield task_id
            break
    else:
        yield from same_ms[rank - 1:]
    yield from ids


def page(state: Indexes, *, status: Status | None = None, queue: str | None = None,
         name: str | None = None, tenant: str | None = None, limit: int = 100,
         cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to ``limit`` task ids matching the filters, newest first, and the
    cursor of the next page (``None`` when this is the last)."""
    tasks = state.tasks
    start = decode_cursor(cursor) if cursor else None
    # The rank of each task passed within its millisecond, counted from the newest.
    run_ms, run = (start[0], start[1]) if start else (-1, 0)
    out: list[str] = []
    last: tuple[int, int] = (0, 0)
    for task_id in _after(state, start):
        task = tasks[task_id]
        run = run + 1 if task.created_ms == run_ms else 1
        run_ms = task.created_ms
        if ((status is None or task.status is status)
                and (queue is None or task.queue == queue)
                and (name is None or task.name == name)
                and (tenant is None or task.tenant == tenant)):
            if len(out) == limit:
                return out, encode_cursor(last[0], last[1], out[-1])
            out.append(task_id)
            last = (run_ms, run)
    return out, None
