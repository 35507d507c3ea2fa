"""Listing tasks and workflows newest first, a page at a time (a read, never part of
``apply``).

``state.tasks`` (and ``state.flows``, likewise) keeps creation order and
``created_ms`` never goes down along it (it is the replicated clock, which only
moves forward), so walking the dict backwards is newest first. Many tasks
share a millisecond (a batch, or everything between two ticks), so a page
ends with a cursor naming its last task, its ``created_ms`` and its rank among
the tasks of that millisecond counted from the newest:
``"<created_ms>:<rank>:<id>"``. The next page starts right after that task; if
the task is gone meanwhile (its result expired), at the same rank of the same
millisecond, which repeats or skips at most as many tasks as expired there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol, TypeVar

from raftq.state.graph import Flow
from raftq.state.indexes import Indexes
from raftq.state.model import Status, Task
from raftq.state.workflows import Workflows

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


class Dated(Protocol):
    created_ms: int


D = TypeVar("D", bound=Dated)


def _after(items: dict[str, D], cursor: Cursor | None) -> Iterator[str]:
    """Ids newest first, starting after the cursor's."""
    ids = reversed(items)
    if cursor is None:
        yield from ids
        return
    created_ms, rank, cursor_id = cursor
    same_ms: list[str] = []  # the cursor's millisecond, newest first, as passed
    for item_id in ids:
        if item_id == cursor_id:
            break
        item_ms = items[item_id].created_ms
        if item_ms == created_ms:
            same_ms.append(item_id)
        elif item_ms < created_ms:  # passed where the cursor's item was: it is gone
            yield from same_ms[rank - 1:]
            yield item_id
            break
    else:
        yield from same_ms[rank - 1:]
    yield from ids


def _page(items: dict[str, D], keep: Callable[[str, D], bool], limit: int,
          cursor: str | None) -> tuple[list[str], str | None]:
    """Up to ``limit`` ids of ``items`` (in creation order, ``created_ms`` never going
    down) that ``keep``, newest first, and the cursor of the next page (``None`` when
    this is the last)."""
    start = decode_cursor(cursor) if cursor else None
    # The rank of each item passed within its millisecond, counted from the newest.
    run_ms, run = (start[0], start[1]) if start else (-1, 0)
    out: list[str] = []
    last: tuple[int, int] = (0, 0)
    for item_id in _after(items, start):
        item = items[item_id]
        run = run + 1 if item.created_ms == run_ms else 1
        run_ms = item.created_ms
        if keep(item_id, item):
            if len(out) == limit:
                return out, encode_cursor(last[0], last[1], out[-1])
            out.append(item_id)
            last = (run_ms, run)
    return out, None


def page(state: Indexes, *, status: Status | None = None, queue: str | None = None,
         name: str | None = None, tenant: str | None = None, limit: int = 100,
         cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to ``limit`` task ids matching the filters, newest first, and the
    cursor of the next page (``None`` when this is the last)."""
    def keep(task_id: str, task: Task) -> bool:
        return ((status is None or task.status is status)
                and (queue is None or task.queue == queue)
                and (name is None or task.name == name)
                and (tenant is None or task.tenant == tenant))

    return _page(state.tasks, keep, limit, cursor)


def workflow_page(state: Workflows, *, status: str | None = None, limit: int = 100,
                  cursor: str | None = None) -> tuple[list[str], str | None]:
    """Up to ``limit`` workflow ids (of ``status``: running, succeeded, failed or
    cancelled), newest first, and the cursor of the next page. A workflow is held
    until its last task is dropped, so finished ones go as their results expire."""

    def keep(wid: str, flow: Flow) -> bool:
        return status is None or state.workflow_status(wid) == status

    return _page(state.flows, keep, limit, cursor)
