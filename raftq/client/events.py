"""Following the event stream (``GET /v1/events``), shared by both clients.

The stream is Server-Sent Events, one message per Raft log entry with its
index as the message id (see ``raftq.server.events``). ``Follow`` holds what
a follower needs across reconnects: the index it has seen everything up to
(the last complete message's, or the last ``position``), so a follower that
reconnects, to the same node or another, resumes there and sees every later
change once. The clients' ``events()`` drive it; the reading of lines is
theirs (blocking or asyncio).
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from raftq import errors
from raftq.client.calls import Call

Json = dict[str, Any]
READ_TIMEOUT_S = 30.0  # the node sends something at least every 10 s


@dataclass(slots=True)
class Message:
    event: str = "message"
    data: str = ""
    id: str | None = None


class Parser:
    """Server-Sent Events lines in, complete messages out (a message cut off by a
    dropped connection never comes out)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, raw: bytes) -> Message | None:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if not line:
            if not self._data and self._event == "":
                return None
            message = Message(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data, self._id = "", [], None
            return message
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None


@dataclass(slots=True)
class Follow:
    """One follower's place in the stream and its filters."""

    since: int | None = None
    queue: str | None = None
    name: str | None = None
    task_id: str | None = None
    follow: bool = True
    done: bool = field(default=False)

    def call(self) -> Call:
        query = {"since": self.since, "queue": self.queue, "name": self.name,
                 "task": self.task_id, "follow": None if self.follow else "false"}
        return Call("GET", "/v1/events", query=query)

    def take(self, message: Message) -> tuple[list[Json], int | None]:
        """The changes a message carries (each with its ``index`` and ``at_ms``) and the
        index to resume after once they are all handed out; a ``position`` moves
        the resume point at once. Raises ``EventsGone``."""
        if message.event == "changes":
            entry = json.loads(message.data)
            index = int(entry["index"])
            return [{"index": index, "at_ms": entry["at_ms"], **change}
                    for change in entry["changes"]], index
        if message.event == "position":
            self.since = int(json.loads(message.data)["index"])
            if not self.follow:
                self.done = True
        elif message.event == "gone":
            data = json.loads(message.data)
            raise errors.EventsGone(str(data.get("message", "gone")),
                                    since=int(data.get("since", 0)),
                                    oldest=int(data.get("oldest", 0)))
        return [], None


class Buffer:
    """The changes of the entry being handed out; ``since`` moves past the entry when
    its last change is out (``Follow.since`` is where a new stream resumes)."""

    def __init__(self, state: Follow) -> None:
        self.state = state
        self.changes: deque[Json] = deque()
        self.index: int | None = None

    def fill(self, changes: list[Json], index: int | None) -> None:
        self.changes.extend(changes)
        self.index = index
        if not changes and index is not None:
            self.state.since = index

    def pop(self) -> Json:
        change = self.changes.popleft()
        if not self.changes and self.index is not None:
            self.state.since = self.index
        return change
