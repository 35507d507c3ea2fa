"""Long-poll claims waiting for work, and the submits that wake them.

A worker with nothing to do sits in a long-poll claim. Without help, a task
submitted for it costs two Raft commits in a row before the worker hears of
it: the submit, then (once the worker's node has applied it) the claim. The
node instead keeps its waiting claims here, and when it is about to propose
an entry that submits a ready task to a queue such a claim is waiting on, it
puts the claim in the same entry, right after the submits. The state machine
applies them in that order, so the claim leases the new task (or a better
one) in the same commit. Nothing about the state machine changes: the claim
is the command the long-poll would have proposed a moment later, with the
request id it would have used.

Only claims parked on the node that also receives the submit ride along;
the others wake up on the apply and claim as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from raftq.state.commands import Claim, Command, Submit


class Parked:
    """One waiting claim; ``future`` is set once it rides in an entry."""

    __slots__ = ("claim", "request_id", "gone", "future")

    def __init__(self, claim: Claim, request_id: str, gone: Callable[[], bool]) -> None:
        self.claim = claim
        self.request_id = request_id
        self.gone = gone  # True once the worker hung up: it must not lease anything
        self.future: asyncio.Future[Any] | None = None


class Parking:
    def __init__(self, add_to_next_entry: Callable[[Command], asyncio.Future[Any]],
                 now_ms: Callable[[], int]) -> None:
        self._add = add_to_next_entry
        self._now_ms = now_ms
        self._waiting: list[Parked] = []  # oldest first: the longest-waiting worker goes first

    def park(self, claim: Claim, request_id: str,
             gone: Callable[[], bool] = lambda: False) -> Parked:
        parked = Parked(claim, request_id, gone)
        self._waiting.append(parked)
        return parked

    def leave(self, parked: Parked) -> None:
        if parked.future is None:
            self._waiting.remove(parked)

    def before_flush(self, pending: list[Command]) -> None:
        """Add a waiting claim for each queue that ``pending`` makes ready work in."""
        if not self._waiting:
            return
        ready: dict[tuple[str, str], int] = {}  # (queue, task name) -> new ready tasks
        for cmd in pending:
            body = cmd.body
            if isinstance(body, Submit):
                for spec in body.tasks:
                    if spec.delay_ms == 0 and spec.eta_ms == 0:
                        key = (spec.queue, spec.name)
                        ready[key] = ready.get(key, 0) + 1
        if not ready:
            return
        for parked in list(self._waiting):
            claim = parked.claim
            # A claim naming task names (a worker that announced them) rides only for
            # tasks of those names.
            wanted = [k for k in ready if ready[k] > 0 and k[0] in claim.queues
                      and (claim.names is None or k[1] in claim.names)]
            if not wanted or parked.gone():
                continue
            self._waiting.remove(parked)
            parked.future = self._add(Command(claim, parked.request_id, self._now_ms()))
            # Count what this claim may take, so later claims ride only if work is left.
            take = claim.max
            for k in wanted:
                used = min(take, ready[k])
                ready[k] -= used
                take -= used
