"""``events()`` on both clients: follow ``GET /v1/events`` across reconnects and failover.

A stream that breaks (a node killed, a connection dropped, a read timeout)
is opened again on the next node from the index the follower had (see
``raftq.client.events.Follow``); the usual failover budget (``retry_for``)
bounds how long it keeps trying without getting a message. Mixed into
``Client`` and ``AsyncClient``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

from raftq import errors
from raftq.client import calls
from raftq.client.events import READ_TIMEOUT_S, Buffer, Follow, Json, Message, Parser
from raftq.client.failover import Failover
from raftq.client.syncwire import _Conn
from raftq.client.transport import MAX_HEAD, Node, parse_head, request_bytes, tls_context

log = logging.getLogger(__name__)


class _Refused(Exception):
    def __init__(self, error: errors.RaftqError, retryable: bool) -> None:
        super().__init__(str(error))
        self.error, self.retryable = error, retryable


def _refusal(status: int, body: bytes) -> _Refused:
    error = errors.from_json(status, calls.decode_body(body))
    return _Refused(error, status in calls.RETRY_STATUSES)


class EventStream:
    """What ``Client.events`` returns: an iterator of changes. ``since`` is the index a
    new stream would resume from: every change up to it has been handed out."""

    def __init__(self, messages: Iterator[Message], state: Follow) -> None:
        self._messages = messages
        self._state = state
        self._buffer = Buffer(state)

    @property
    def since(self) -> int | None:
        return self._state.since

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Json:
        buffer = self._buffer
        while not buffer.changes:
            if self._state.done:
                self.close()
                raise StopIteration
            buffer.fill(*self._state.take(next(self._messages)))
        return buffer.pop()

    def close(self) -> None:
        close = getattr(self._messages, "close", None)
        if close is not None:
            close()


class AsyncEventStream:
    """What ``AsyncClient.events`` returns: ``EventStream``'s async twin."""

    def __init__(self, messages: AsyncIterator[Message], state: Follow) -> None:
        self._messages = messages
        self._state = state
        self._buffer = Buffer(state)

    @property
    def since(self) -> int | None:
        return self._state.since

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Json:
        buffer = self._buffer
        while not buffer.changes:
            if self._state.done:
                await self.aclose()
                raise StopAsyncIteration
            buffer.fill(*self._state.take(await anext(self._messages)))
        return buffer.pop()

    async def aclose(self) -> None:
        aclose = getattr(self._messages, "aclose", None)
        if aclose is not None:
            await aclose()


class EventCalls:
    """``Client.events``."""

    _failover: Failover
    api_key: str | None
    ca_file: str | None

    def events(self, since: int | None = None, *, queue: str | None = None,
               name: str | None = None, task: str | None = None,
               follow: bool = True) -> EventStream:
        """Every task change after log index ``since`` (default: from now), each a dict
        with ``index``, ``at_ms``, ``type``, ``task_id``, ``name``, ``queue``,
        ``status``, ``attempt`` (and ``error`` or ``progress``). With ``follow``
        it never ends; without, it ends once the node's backlog is out. Raises
        ``EventsGone`` when the node no longer holds the changes after ``since``."""
        state = Follow(since, queue, name, task, follow)
        return EventStream(self._follow(state), state)

    def _follow(self, state: Follow) -> Iterator[Message]:
        attempts = self._failover.attempts()
        while True:
            node = attempts.node
            try:
                for message in self._messages(node, state):
                    yield message
                    attempts = self._failover.attempts()  # it answered: a fresh budget
                error: errors.RaftqError = errors.Unavailable(f"{node} ended the stream")
            except _Refused as exc:
                if not exc.retryable:
                    raise exc.error from None
                error = exc.error
            except OSError as exc:
                error = calls.unreachable(node, exc)
            delay = attempts.retry_delay(error)
            log.debug("event stream from %s broke (%s); resuming from %s in %.2fs", node,
                      error, state.since, delay)
            time.sleep(delay)

    def _messages(self, url: str, state: Follow) -> Iterator[Message]:
        node = Node.of(url)
        call = state.call()
        tls = tls_context(self.ca_file) if node.tls else None
        conn = _Conn(node, READ_TIMEOUT_S, tls)
        try:
            conn.sock.sendall(request_bytes(node, "GET", call.target, None,
                                            call.headers(self.api_key)))
            head: list[bytes] = []
            while not head or head[-1] not in (b"\r\n", b"\n"):
                line = conn.reader.readline(MAX_HEAD)
                if not line:
                    raise ConnectionError("closed before answering")
                head.append(line)
            status, headers = parse_head(b"".join(head))
            if status != 200:
                raise _refusal(status, conn.reader.read(int(headers.get("content-length", 0))))
            parser = Parser()
            while True:
                line = conn.reader.readline(1 << 24)
                if not line:
                    return
                message = parser.feed(line)
                if message is not None:
                    yield message
        finally:
            conn.close()


class AsyncEventCalls:
    """``AsyncClient.events``."""

    _failover: Failover
    api_key: str | None
    ca_file: str | None

    def events(self, since: int | None = None, *, queue: str | None = None,
               name: str | None = None, task: str | None = None,
               follow: bool = True) -> AsyncEventStream:
        """As ``Client.events``: ``async for change in client.events(): ...``."""
        state = Follow(since, queue, name, task, follow)
        return AsyncEventStream(self._follow(state), state)

    async def _follow(self, state: Follow) -> AsyncIterator[Message]:
        attempts = self._failover.attempts()
        while True:
            node = attempts.node
            try:
                async for message in self._messages(node, state):
                    yield message
                    attempts = self._failover.attempts()
                error: errors.RaftqError = errors.Unavailable(f"{node} ended the stream")
            except _Refused as exc:
                if not exc.retryable:
                    raise exc.error from None
                error = exc.error
            except (OSError, TimeoutError) as exc:
                error = calls.unreachable(node, exc)
            await asyncio.sleep(attempts.retry_delay(error))

    async def _messages(self, url: str, state: Follow) -> AsyncIterator[Message]:
        node = Node.of(url)
        call = state.call()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            node.host, node.port, ssl=tls_context(self.ca_file) if node.tls else None,
            limit=1 << 24), READ_TIMEOUT_S)
        try:
            writer.write(request_bytes(node, "GET", call.target, None,
                                       call.headers(self.api_key)))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            status, headers = parse_head(head)
            if status != 200:
                body = await reader.readexactly(int(headers.get("content-length", 0)))
                raise _refusal(status, body)
            parser = Parser()
            while True:
                line = await asyncio.wait_for(reader.readline(), READ_TIMEOUT_S)
                if not line:
                    return
                message = parser.feed(line)
                if message is not None:
                    yield message
        except asyncio.IncompleteReadError as exc:
            raise ConnectionError("the stream was cut") from exc
        finally:
            writer.close()


__all__ = ["AsyncEventCalls", "EventCalls"]
