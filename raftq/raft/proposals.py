"""Proposals into Raft entries: group commit, the window of entries in flight,
and the futures that wait for them.

Proposals made in the same event-loop turn are coalesced into one Raft entry
(group commit): one ``Group`` command whose result is the list of the members'
results. At most ``max_entries_in_flight`` entries of this node are in flight;
proposals arriving while the window is full wait and go together in the next
entry, so throughput grows with load instead of the entry count. Each proposal
has its own timeout: one that times out has an *unknown* outcome (Raft may
still commit it), which the request ids and the state's dedupe table make safe
to retry. The owner (``raftq.raft.replica.Replica``) hands an entry to Raft
(``send``) and ticks Raft once a flush sent something (``after_send``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from pysyncobj import FAIL_REASON

from raftq.raft.outcomes import Entry, expire, failure
from raftq.raft.tuning import RaftTuning
from raftq.state.commands import Command, Group
from raftq.state.encoding import encode

log = logging.getLogger(__name__)

# Hands ``data`` to Raft; PySyncObj calls the callback with (result, error) in a tick.
Send = Callable[[bytes, Callable[[Any, int], None]], None]


class Proposals:
    def __init__(self, tuning: RaftTuning, timeout_s: float, send: Send,
                 after_send: Callable[[], None]) -> None:
        self.tuning = tuning
        self.timeout_s = timeout_s
        self._send_entry = send
        self._after_send = after_send
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending: list[tuple[Command, asyncio.Future[Any]]] = []
        self.entries_in_flight = 0
        self.inflight = 0  # proposals not yet answered
        self._flush_scheduled = False
        # Called with the commands about to be proposed, just before they go
        # into entries; it may add more with ``add_to_next_entry``.
        self.before_flush: Callable[[list[Command]], None] | None = None
        self.on_commit_latency: Callable[[float], None] | None = None

    @property
    def lone(self) -> bool:
        """One entry in flight at most and nothing waiting to be proposed."""
        return self.entries_in_flight <= 1 and not self.pending

    async def propose(self, cmd: Command, timeout_s: float | None) -> Any:
        fut, timer = self._pend(cmd, timeout_s)
        self._schedule_flush()
        try:
            return await fut
        finally:
            timer.cancel()
            self.inflight -= 1

    def add_to_next_entry(self, cmd: Command) -> asyncio.Future[Any]:
        """Put ``cmd`` in the entry being formed; for ``before_flush`` hooks.

        The returned future has ``propose``'s timeout and outcomes.
        """
        fut, timer = self._pend(cmd, None)

        def done(_: asyncio.Future[Any]) -> None:
            timer.cancel()
            self.inflight -= 1

        fut.add_done_callback(done)
        return fut

    def _pend(self, cmd: Command, timeout_s: float | None
              ) -> tuple[asyncio.Future[Any], asyncio.TimerHandle]:
        """Queue ``cmd`` for the next entry; its future fails with OutcomeUnknown
        after the timeout. The caller cancels the timer and counts the
        proposal out of ``inflight`` once the future is done."""
        assert self.loop is not None
        fut: asyncio.Future[Any] = self.loop.create_future()
        self.inflight += 1
        self.pending.append((cmd, fut))
        # A timer rather than asyncio.wait_for(shield(...)): the answer then
        # reaches the handler in one event-loop step instead of four, and a
        # late answer finds the future done and is dropped.
        return fut, self.loop.call_later(timeout_s or self.timeout_s, expire, fut)

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled:
            assert self.loop is not None
            self._flush_scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        step = self.tuning.max_group
        window = self.tuning.max_entries_in_flight
        sent = False
        if self.before_flush is not None and self.pending and self.entries_in_flight < window:
            self.before_flush([c for c, _ in self.pending])
        while self.pending and self.entries_in_flight < window:
            batch, self.pending = self.pending[:step], self.pending[step:]
            self._send(batch)
            sent = True
        if sent:  # hand the entries to Raft now rather than one loop step later
            self._after_send()

    def _send(self, batch: list[tuple[Command, asyncio.Future[Any]]]) -> None:
        assert self.loop is not None
        futures = [f for _, f in batch]
        data = encode(batch[0][0]) if len(batch) == 1 else encode(Group([c for c, _ in batch]))
        entry = Entry(futures, time.perf_counter())
        self.entries_in_flight += 1
        # PySyncObj may never call back (a resync drops pending callbacks):
        # the window slot is freed after the proposal timeout regardless.
        entry.timer = self.loop.call_later(self.timeout_s, self._entry_done, entry)

        def on_result(result: Any, error: int) -> None:  # called inside a tick
            self._resolve(entry, result, error)

        try:
            self._send_entry(data, on_result)
        except Exception:  # defensive: never leave futures hanging
            log.exception("proposal failed to enqueue")
            self._resolve(entry, None, FAIL_REASON.REQUEST_DENIED)

    def _entry_done(self, entry: Entry) -> None:
        if entry.done:
            return
        entry.done = True
        if entry.timer is not None:
            entry.timer.cancel()
        self.entries_in_flight -= 1
        if self.pending:
            self._schedule_flush()

    def _resolve(self, entry: Entry, result: Any, error: int) -> None:
        self._entry_done(entry)
        if error == FAIL_REASON.SUCCESS and self.on_commit_latency is not None:
            self.on_commit_latency(time.perf_counter() - entry.started)
        futures = entry.futures
        for i, fut in enumerate(futures):
            if fut.done():
                continue
            if error != FAIL_REASON.SUCCESS:
                fut.set_exception(failure(error))
            elif len(futures) == 1:
                fut.set_result(result)
            elif isinstance(result, list) and len(result) == len(futures):
                fut.set_result(result[i])
            else:  # the group itself was rejected (e.g. an internal error)
                fut.set_result(result)
