"""When a leader sends AppendEntries: once per tick when its log moved, and
soon after when only the commit index did.

Left to itself (``appendEntriesUseBatch=False``) PySyncObj sends every
follower a message for each command it appends and again after each apply,
and pokes a pipe for each proposal: several small messages per entry, each a
pickle, a compression, an encryption and a loopback send, and each answered.
Batching on (heartbeats every ``append_entries_period_s``) plus one send per
tick (``after_tick``) carries the same news in one message.

A commit index alone waits ``push_after_s`` (the client has its answer
already; only the followers' apply waits): new entries meanwhile carry it, so
under a steady stream of proposals, even one at a time, each entry costs one
message and one answer per follower instead of two.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any


class AppendPacer:
    def __init__(self, push_after_s: float, machine: Callable[[], Any]) -> None:
        self.push_after_s = push_after_s
        self._machine = machine  # the node's SyncObj, or None once stopped
        self.sent: tuple[int, int] = (0, 0)  # (log index, commit index) last sent
        self._push: asyncio.TimerHandle | None = None

    def after_tick(self, machine: Any, loop: asyncio.AbstractEventLoop) -> None:
        """After a leader's tick: send what moved (``machine`` is a SyncObj)."""
        log_index = machine._SyncObj__getCurrentLogIndex()
        commit = machine._SyncObj__raftCommitIndex
        if log_index != self.sent[0]:
            self._send(machine, log_index, commit)
        elif commit != self.sent[1] and self._push is None:
            self._push = loop.call_later(self.push_after_s, self._push_commit)

    def cancel(self) -> None:
        if self._push is not None:
            self._push.cancel()
            self._push = None

    def _push_commit(self) -> None:
        self._push = None
        machine = self._machine()
        if machine is None or not machine._isLeader():
            return
        commit = machine._SyncObj__raftCommitIndex
        if commit != self.sent[1]:
            self._send(machine, machine._SyncObj__getCurrentLogIndex(), commit)

    def _send(self, machine: Any, log_index: int, commit: int) -> None:
        self.sent = (log_index, commit)
        machine._SyncObj__sendAppendEntries()
