"""The event stream: every task status change, keyed by the Raft log index that made it.

Each node derives the same events from the same log: the replica hands over
the status changes each entry's ``apply`` made (``State.changes``, pure and
deterministic) with the entry's index, and ``EventLog`` keeps them in a
bounded ring. ``GET /v1/events?since=INDEX`` serves them as Server-Sent
Events, one message per log entry (``id:`` is its index), so a client that
reconnects with the last index it saw, to this node or another, gets every
later change once. A node that no longer holds the changes after ``since``
(its ring moved on, it restarted from a snapshot, or it was resynced from the
leader's) answers with a ``gone`` event: the client must resync from the
task API.

Messages (``event:`` name, JSON ``data:``):

- ``changes`` (``id:`` the index): ``{"index", "at_ms", "changes": [...]}``,
  each change ``{"type", "task_id", "name", "queue", "status", "attempt"}``
  and, where it has one, ``error`` (``{"type", "message"}``) or
  ``progress`` (``{"fraction", "message"}``).
- ``position`` (``id:`` the index): every change up to this index that the
  filters match has been sent; sent when the backlog is out and on each
  heartbeat, so a filtered consumer's resume point moves on too.
- ``gone``: ``{"since", "oldest", "message"}``; the stream then ends.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Mapping
from typing import Any

import orjson

from raftq.errors import InvalidRequest
from raftq.server.http import Request, Response, json_response
from raftq.server.rates import Rates
from raftq.state.machine import State
from raftq.state.model import Status, Task

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 200_000  # changes held per node
HEARTBEAT_S = 10.0
MAX_BUFFERED = 4 << 20  # a consumer this far behind is cut off (it resumes by its index)

# (type, task id, name, queue, status, attempt, error or progress or None)
Row = tuple[str, str, str, str, str, int, Any]

_KIND = {Status.LEASED: "leased", Status.SUCCEEDED: "succeeded", Status.DEAD: "dead",
         Status.CANCELLED: "cancelled", Status.EXPIRED: "expired"}


def change_type(old: Status | None, new: Status, error: Any) -> str:
    """What a status change means to a watcher."""
    if old is None:
        return "submitted"
    if old is new:
        return "progress"
    kind = _KIND.get(new)
    if kind is not None:
        return kind
    if old is Status.LEASED:  # waits to run again
        return "failed" if error is not None else "retried"
    return "requeued" if old is Status.DEAD else "ready"


# The type of each (old, new) pair, and the status's name: looked up once per change.
_TYPES = {(old, new): change_type(old, new, None) for old in (None, *Status) for new in Status}
_NAMES = {status: str(status) for status in Status}
_FAILING = frozenset({Status.QUEUED, Status.SCHEDULED, Status.DEAD, Status.EXPIRED})


def _rows(changes: list[Any], state: State) -> list[Row]:
    rows: list[Row] = []
    append = rows.append
    for task, old, new, attempt in changes:
        if old is Status.LEASED and new in _FAILING or old is new:
            append(_row(task, old, new, attempt, state))
        else:
            append((_TYPES[old, new], task.id, task.name, task.queue, _NAMES[new], attempt,
                    None))
    return rows


def _row(task: Task, old: Status | None, new: Status, attempt: int, state: State) -> Row:
    """A change that may carry an error (or progress)."""
    extra: Any = None
    if old is new:
        report = state.progress_view(task.id)
        if report is not None:
            extra = {"fraction": report["fraction"], "message": report["message"]}
    elif task.errors:
        number, _at, error = task.errors[-1]
        if number == attempt:
            extra = {"type": error.get("type", ""), "message": error.get("message", "")}
    return (change_type(old, new, extra), task.id, task.name, task.queue, str(new), attempt,
            extra)


def _change_json(row: Row) -> dict[str, Any]:
    out = {"type": row[0], "task_id": row[1], "name": row[2], "queue": row[3],
           "status": row[4], "attempt": row[5]}
    if row[6] is not None:
        out["progress" if row[0] == "progress" else "error"] = row[6]
    return out


class _Entry:
    __slots__ = ("index", "at_ms", "rows", "_sse")

    def __init__(self, index: int, at_ms: int, rows: list[Row]) -> None:
        self.index = index
        self.at_ms = at_ms
        self.rows = rows
        self._sse: bytes | None = None

    def sse(self, match: Filter | None) -> bytes:
        """The entry as one message (the unfiltered one encoded once for every stream)."""
        if match is None:
            if self._sse is None:
                self._sse = self._encode(self.rows)
            return self._sse
        rows = [r for r in self.rows if match.matches(r)]
        return self._encode(rows) if rows else b""

    def _encode(self, rows: list[Row]) -> bytes:
        data = orjson.dumps({"index": self.index, "at_ms": self.at_ms,
                             "changes": [_change_json(r) for r in rows]})
        return b"id: %d\nevent: changes\ndata: %s\n\n" % (self.index, data)


class Filter:
    __slots__ = ("queue", "name", "task_id")

    def __init__(self, queue: str | None, name: str | None, task_id: str | None) -> None:
        self.queue, self.name, self.task_id = queue, name, task_id

    def matches(self, row: Row) -> bool:
        return ((self.queue is None or row[3] == self.queue)
                and (self.name is None or row[2] == self.name)
                and (self.task_id is None or row[1] == self.task_id))


class EventLog:
    """The ring of recent changes on this node, by log index."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self.capacity = capacity
        self._indexes: list[int] = []
        self._entries: list[_Entry] = []
        self._first = 0  # the oldest kept, in both lists
        self._held = 0  # changes held
        self.base = 0  # every change of the entries after this index is held
        self.last = 0  # the latest index applied here
        self.rates = Rates()
        self._changed = asyncio.Event()
        self._waiting = 0

    def record(self, index: int, changes: list[Any], state: State) -> None:
        """The replica's hook: entry ``index`` made ``changes``."""
        self.last = index
        if not changes:
            return
        rows = _rows(changes, state)
        at_ms = state.clock_ms + state.wall_offset_ms
        self._indexes.append(index)
        self._entries.append(_Entry(index, at_ms, rows))
        self._held += len(rows)
        self.rates.count(at_ms, rows)
        while self._held > self.capacity and self._first < len(self._entries) - 1:
            oldest = self._entries[self._first]
            self._held -= len(oldest.rows)
            self.base = oldest.index
            self._first += 1
        if self._first > 1024 and self._first * 2 > len(self._entries):
            del self._entries[:self._first], self._indexes[:self._first]
            self._first = 0
        self._notify()

    def restored(self, index: int) -> None:
        """The replica's hook: the state was replaced by a snapshot ending at ``index``."""
        self._indexes, self._entries = [], []
        self._first = self._held = 0
        self.base = self.last = index
        self._notify()

    def _notify(self) -> None:
        if self._waiting:
            event, self._changed = self._changed, asyncio.Event()
            event.set()

    async def wait(self, timeout_s: float) -> None:
        self._waiting += 1
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
        except TimeoutError:
            pass
        finally:
            self._waiting -= 1

    def after(self, since: int) -> list[_Entry] | None:
        """The entries after ``since``; None when this node no longer holds them all."""
        if since < self.base:
            return None
        i = bisect.bisect_right(self._indexes, since, lo=self._first)
        return self._entries[i:]

    def oldest(self) -> int:
        return self.base


def _query(q: Mapping[str, str], last_event_id: str | None
           ) -> tuple[int | None, Filter | None, bool]:
    unknown = sorted(set(q) - {"since", "queue", "name", "task", "follow"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    raw = q.get("since", last_event_id)
    since = None
    if raw is not None and raw != "":
        if not raw.isdigit() or len(raw) > 18:
            raise InvalidRequest("since must be a log index (a non-negative integer)",
                                 field="since")
        since = int(raw)
    for key in ("queue", "name", "task"):
        if key in q and not 0 < len(q[key]) <= 200:
            raise InvalidRequest(f"{key} must be 1-200 characters", field=key)
    if q.get("follow", "true") not in ("true", "false"):
        raise InvalidRequest("follow must be true or false", field="follow")
    match = None
    if q.get("queue") or q.get("name") or q.get("task"):
        match = Filter(q.get("queue"), q.get("name"), q.get("task"))
    return since, match, q.get("follow", "true") == "true"


class EventsApi:
    """``GET /v1/events``: the stream of one consumer."""

    def __init__(self, events: EventLog) -> None:
        self.log = events

    async def stream(self, request: Request) -> Response:
        since, match, follow = _query(request.query, request.headers.get("last-event-id"))
        start = self.log.last if since is None else since

        async def produce(transport: asyncio.Transport) -> None:
            await self._produce(transport, start, match, follow)

        return Response(content_type="text/event-stream",
                        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
                        stream=produce)

    async def rates(self, request: Request) -> Response:
        """Changes per second over the last 15 minutes, cluster-wide."""
        return json_response(self.log.rates.series(int(time.time())))

    async def _produce(self, transport: asyncio.Transport, pos: int,
                       match: Filter | None, follow: bool) -> None:
        events = self.log
        transport.write(b"retry: 1000\n\n")
        announced, announced_at = -1, 0.0
        while not transport.is_closing():
            entries = events.after(pos)
            if entries is None:
                gone = {"since": pos, "oldest": events.oldest(),
                        "message": f"this node no longer holds the changes after index {pos} "
                                   f"(it holds those after {events.oldest()}): resync from "
                                   "the task API, then follow from the index it had"}
                transport.write(b"event: gone\ndata: %s\n\n" % orjson.dumps(gone))
                return
            for entry in entries:
                data = entry.sse(match)
                if data:
                    transport.write(data)
                pos = entry.index
                while transport.get_write_buffer_size() > MAX_BUFFERED // 4:
                    if transport.is_closing():
                        return
                    await asyncio.sleep(0.02)
            pos = max(pos, events.last)
            now = time.monotonic()
            if announced != pos and (announced < 0 or now - announced_at >= HEARTBEAT_S):
                announced, announced_at = pos, now
                transport.write(b"id: %d\nevent: position\ndata: {\"index\":%d}\n\n" % (pos, pos))
            if not follow:
                return
            if transport.get_write_buffer_size() > MAX_BUFFERED:
                return
            before = events.last
            await events.wait(HEARTBEAT_S)
            if events.last == before and not transport.is_closing():
                transport.write(b": keepalive\n\n")
