"""The task table of a snapshot (format 5 on), column by column.

A snapshot of a million queued tasks is a million tasks that mostly repeat each
other: the same name, queue, priority, limits and status, no lease, no result.
Written as rows (formats 1-4) each task was a list of 24 values, every one of
them a new object when loaded, and a task a dozen Python calls. Here each field
(``Task.FIELDS``, in order) is one column, and a column is written as runs of
equal values, ``[values, counts]``, except the ones that hardly ever repeat
(``_PLAIN``: ``[values, None]``). Loading expands the runs with ``repeat`` (one
object per run: the task table holds one name string for a million tasks, as the
state that applied the log does, see ``raftq.state.sharing``) and builds the
tasks from the columns in one pass (``Task.restore``).

Only immutable values are run together: a list (a task's errors, its flow keys)
is written once per task, so that no two tasks share a list; an empty errors
list loads as the shared empty tuple a new task starts with. The encoding is a
function of the tasks alone, in the table's order, so the digest stays the same
on every replica.

Lists of task ids elsewhere in the snapshot (the status index, a bulk submit's
answer in the dedupe table) mostly name runs of consecutive tasks of the table:
``ids_to_plain`` writes them as ``[start, count]`` pairs of table positions, an
id the table lacks as itself, and ``ids_from_plain`` slices the table's own id
strings back (no string decoded, hashed or held twice).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, groupby, repeat
from operator import attrgetter
from typing import Any

from raftq.state.model import Status, Task
from raftq.state.sharing import Shared

_PLAIN = frozenset({"id", "payload", "seq"})
_STATUS_OF = {str(s): s for s in Status}
_ERRORS = Task.FIELDS.index("errors")
_STATUS = Task.FIELDS.index("status")
_TEXTS = frozenset(Task.FIELDS.index(f) for f in ("name", "queue", "lease_worker", "tenant"))
_NUMBERS = frozenset(Task.FIELDS.index(f) for f in
                     ("priority", "max_attempts", "timeout_ms", "retry_backoff_ms",
                      "result_ttl_ms"))


def tasks_to_plain(tasks: Iterable[Task]) -> list[list[Any]]:
    """The columns of ``tasks``, each ``[values, counts]`` (counts None: one per task)."""
    table = list(tasks)
    columns: list[list[Any]] = []
    for field in Task.FIELDS:
        values = list(map(attrgetter(field), table))
        if field == "status":
            values = [str(s) for s in values]
        columns.append([values, None] if field in _PLAIN else _runs(values))
    return columns


def _runs(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    counts: list[int] = []
    for value, group in groupby(values):
        if type(value) is list or type(value) is tuple:  # never shared between tasks
            for item in group:
                out.append(item)
                counts.append(1)
        else:
            out.append(value)
            counts.append(sum(1 for _ in group))
    return [out, counts]


def tasks_from_plain(columns: list[list[Any]], shared: Shared) -> dict[str, Task]:
    """The task table (id -> task, in the table's order) from ``tasks_to_plain``'s form."""
    if len(columns) != len(Task.FIELDS):
        raise ValueError(f"a task table has {len(Task.FIELDS)} columns, not {len(columns)}")
    expanded: list[Iterable[Any]] = []
    for i, (values, counts) in enumerate(columns):
        if i == _STATUS:
            values = [_STATUS_OF[v] for v in values]
        elif i in _TEXTS:
            values = [shared.texts.setdefault(v, v) for v in values]
        elif i in _NUMBERS:
            values = [shared.numbers.setdefault(v, v) for v in values]
        elif i == _ERRORS:
            values = [v if v else () for v in values]
        expanded.append(values if counts is None
                        else chain.from_iterable(map(repeat, values, counts)))
    return {task.id: task for task in Task.restore(zip(*expanded, strict=True))}


def positions(tasks: Iterable[str]) -> dict[str, int]:
    """Each task id's position in the table (for ``ids_to_plain``)."""
    return {task_id: i for i, task_id in enumerate(tasks)}


def ids_to_plain(ids: Iterable[str], at: dict[str, int]) -> list[Any]:
    """``ids`` as runs of table positions, ``start, count`` flat, an id not in the table
    as the string itself."""
    out: list[Any] = []
    start = end = -1
    for task_id in ids:
        i = at.get(task_id, -1)
        if i >= 0 and i == end:
            end += 1
            continue
        if end > start:
            out += (start, end - start)
        if i < 0:
            out.append(task_id)
            start = end = -1
        else:
            start, end = i, i + 1
    if end > start:
        out += (start, end - start)
    return out


def ids_from_plain(items: list[Any], table: list[str]) -> list[str]:
    """The ids ``ids_to_plain`` wrote, as the table's own strings."""
    out: list[str] = []
    i, n = 0, len(items)
    while i < n:
        item = items[i]
        if type(item) is str:
            out.append(item)
            i += 1
        else:
            out += table[item:item + items[i + 1]]
            i += 2
    return out
