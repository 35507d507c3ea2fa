"""Submissions that travel together without the caller batching them.

Two shapes, one rule: a handle stands for a committed task only once the
node's answer for it came back.

``Coalescer`` (``AsyncClient``): every ``submit`` of one client puts its spec
in a queue and awaits a future. The queue is sent at the next turn of the
event loop: so concurrent ``delay_async`` calls (a ``gather``, a hundred
producers in one process, the handlers of a web server) made in the same turn
go as one ``POST /v1/tasks/batch``, and the calls made while a batch is on the
wire go as the next one (at most two requests on the wire). A lone
submission waits one loop turn and goes to ``POST /v1/tasks`` as before. One
spec the node refuses (400 or 413) must not fail the others: then each spec
of that batch is sent again on its own, so each caller gets its own answer or
error. Resending is safe: every spec carries its client-made task id, and
the node refuses a batch as a whole.

``Pipeline`` (``Client``): inside ``with client.pipeline():`` submissions
on that thread are queued instead of sent, and go as batch requests of up to
1,000 when the block ends (or when 1,000 are queued). The handles come back
at once, pending; reading one (``get``, ``result``) sends the queue first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from raftq import errors
from raftq.client import calls
from raftq.client.calls import Json, JsonList

if TYPE_CHECKING:
    from raftq.client.sync import Client, TaskHandle

# What a submission's future resolves to: the answer of POST /v1/tasks
# (``{"task": {...}, "created": bool}``), or its batch twin.
Submitted = Json
SendBatch = Callable[[JsonList], Awaitable[list[Submitted]]]
SendOne = Callable[[Json], Awaitable[Submitted]]


class Coalescer:
    """Concurrent submissions of one event loop, sent as batch requests.

    At most ``max_in_flight`` requests are on the wire at once; what comes in
    meanwhile waits and goes as the next batch (up to ``calls.MAX_BATCH``).
    """

    def __init__(self, send_one: SendOne, send_batch: SendBatch, max_in_flight: int = 2,
                 max_batch: int = calls.MAX_BATCH) -> None:
        self._send_one = send_one
        self._send_batch = send_batch
        self.max_in_flight = max_in_flight
        self.max_batch = max_batch
        self._queue: list[tuple[Json, asyncio.Future[Submitted]]] = []
        self._in_flight = 0
        self._scheduled = False
        self._sending: set[asyncio.Task[None]] = set()

    def submit(self, spec: Json) -> asyncio.Future[Submitted]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Submitted] = loop.create_future()
        self._queue.append((spec, future))
        self._schedule(loop)
        return future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._queue and self._in_flight < self.max_in_flight:
            # One loop turn later: the submissions of this turn join the batch.
            self._scheduled = True
            loop.call_soon(self._flush, loop)

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = False
        while self._queue and self._in_flight < self.max_in_flight:
            batch = self._queue[:self.max_batch]
            del self._queue[:self.max_batch]
            self._in_flight += 1
            task = loop.create_task(self._send(batch, loop))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[tuple[Json, asyncio.Future[Submitted]]],
                    loop: asyncio.AbstractEventLoop) -> None:
        try:
            live = [(spec, future) for spec, future in batch if not future.cancelled()]
            if len(live) == 1:
                await _settle(live[0][1], self._send_one(live[0][0]))
            elif live:
                await self._send_many(live)
        finally:
            self._in_flight -= 1
            self._schedule(loop)

    async def _send_many(self, batch: list[tuple[Json, asyncio.Future[Submitted]]]) -> None:
        try:
            answers = await self._send_batch([spec for spec, _ in batch])
        except errors.RaftqError as exc:
            if not isinstance(exc, errors.InvalidRequest):
                _fail_all(batch, exc)
                return
            # One refused spec must not fail the others: each on its own.
            await asyncio.gather(*(_settle(future, self._send_one(spec))
                                   for spec, future in batch))
            return
        except BaseException as exc:
            _fail_all(batch, exc)
            raise
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():
                future.set_result(answer)


async def _settle(future: asyncio.Future[Submitted], answer: Awaitable[Submitted]) -> None:
    try:
        result = await answer
    except Exception as exc:  # noqa: BLE001 - handed to the caller that awaits it
        if not future.done():
            future.set_exception(exc)
        return
    except BaseException as exc:
        if not future.done():
            future.set_exception(exc)
        raise
    if not future.done():
        future.set_result(result)


def _fail_all(batch: list[tuple[Json, asyncio.Future[Submitted]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)


def batch_answers(specs: JsonList, results: JsonList) -> list[Submitted]:
    """The batch endpoint's results as the single endpoint's answers, in order."""
    if len(results) != len(specs):
        raise errors.RaftqError(f"a batch of {len(specs)} got {len(results)} results")
    return [{"task": calls.batch_view(res), "created": bool(res.get("created", True))}
            for res in results]


class Pipeline:
    """``with client.pipeline():``: the thread's submissions go as batch requests."""

    def __init__(self, client: Client, size: int = calls.MAX_BATCH) -> None:
        self.client = client
        self.size = size
        self._queued: list[tuple[Json, TaskHandle]] = []
        self._depth = 0

    def __enter__(self) -> Pipeline:
        self._depth += 1
        self.client._pipelines.current = self  # noqa: SLF001 - the client's own hook
        return self

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0:
            self.client._pipelines.current = None  # noqa: SLF001
            # Sent also when the block raised: without the block each call
            # before the error would have been submitted.
            self.flush()

    def add(self, spec: Json) -> TaskHandle:
        from raftq.client.sync import TaskHandle

        handle = TaskHandle(self.client, spec["id"], pending=self)
        self._queued.append((spec, handle))
        if len(self._queued) >= self.size:
            self.flush()
        return handle

    def flush(self) -> None:
        """Send what is queued; each handle then holds its task's answer."""
        queued, self._queued = self._queued, []
        if not queued:
            return
        specs = [spec for spec, _ in queued]
        if len(specs) == 1:
            answers = [self.client._call(calls.submit(specs[0]))]  # noqa: SLF001
        else:
            results = self.client._call(calls.submit_batch(specs))  # noqa: SLF001
            answers = batch_answers(specs, results)
        for (_, handle), answer in zip(queued, answers, strict=True):
            handle.settle(answer)

    def __len__(self) -> int:
        return len(self._queued)


def submitted_fields(answer: Submitted) -> tuple[Json, bool]:
    task = answer.get("task")
    return (task if isinstance(task, dict) else {}), bool(answer.get("created", True))
