"""Listing tasks newest first, a page at a time (a read, never part of ``apply``).

``state.tasks`` keeps creation order and ``created_ms`` never goes down along
it (it is the replicated clock, which only moves forward), so walking the
dict backwards is newest first. A page ends with a cursor naming its last
task: ``"<created_ms>:<id>"``. The next page starts after that task; if the
task is gone meanwhile (its result expired), after the first older one.
"""

from __future__ import annotations

from collections.abc import Iterator

from raftq.state.indexes import Indexes
from raftq.state.model import Status


class BadCursor(ValueError):
    """The cursor was not made by ``page``."""


def encode_cursor(created_ms: int, task_id: str) -> str:
    return f"{created_ms}:{task_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    created, sep, task_id = cursor.partition(":")
    if not sep or not created.isdigit() or not task_id:
        raise BadCursor(f"not a cursor: {cursor[:80]!r}")
    return int(created), task_id


def _newest_first(state: Indexes, cursor: tuple[int, str] | None) -> Iterator[str]:
    ids = reversed(state.tasks)
    if cursor is None:
        yield from ids
        return
    created_ms, cursor_id = cursor
    for task_id in ids:
        if task_id == cursor_id:
            break
        if state.tasks[task_id].created_ms < created_ms:  # the cursor's task is gone
            yield task_id
            break
    yield from ids


def page(state: Indexes, *, status: Status | None = None, queue: str | None = None,
         name: str | None = None, limit: int = 100,
         cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to ``limit`` task ids matching the filters, newest first, and the
    cursor of the next page (``None`` when this is the last)."""
    tasks = state.tasks
    out: list[str] = []
    for task_id in _newest_first(state, decode_cursor(cursor) if cursor else None):
        task = tasks[task_id]
        if ((status is None or task.status is status)
                and (queue is None or task.queue == queue)
                and (name is None or task.name == name)):
            if len(out) == limit:
                last = tasks[out[-1]]
                return out, encode_cursor(last.created_ms, last.id)
            out.append(task_id)
    return out, None
