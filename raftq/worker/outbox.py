"""A worker's leases, their extension and the outbox that delivers their outcomes.

``Lease`` is one task a worker holds, from its claim until a node has taken
its outcome; ``keep_leases`` extends them. ``Outbox`` holds finished leases and drains them through
``POST /v1/completions`` in batches of up to ``BATCH``: a batch that no node
takes stays and is retried, on other nodes, until one does, so a worker that
loses its node keeps its results. Repeating a delivery is safe: a retry of
the same request (the client keeps its Idempotency-Key) gets its first
answer, and a later one is answered ``already_finished``. A batch the
node refuses as such (too large, one bad item, a node error) is resent one
by one, so one bad outcome never holds up the others; a result refused on its
own as invalid becomes the task's failure (``ResultRejected``, no retry)
rather than being lost, and any other refused outcome is given up on (its
lease expires and the task is redelivered).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raftq import errors
from raftq.client.asyncclient import AsyncClient
from raftq.client.calls import Json
from raftq.worker.jobs import Job, Outcome

log = logging.getLogger("raftq.worker")

BATCH = 500
REJECTED = "ResultRejected"


@dataclass(eq=False)
class Lease:
    """A task a worker holds a lease on, from claim until its outcome lands."""

    id: str
    token: int
    claimed: Json
    started: bool = False
    outcome: Outcome | None = None
    lost: bool = False

    def job(self) -> Job:
        timeout_ms = self.claimed.get("timeout_ms")
        args = list(self.claimed.get("args") or [])
        parents = self.claimed.get("parent_results")
        if isinstance(parents, list):
            args.insert(0, parents_argument(parents))
        return Job(self.id, str(self.claimed.get("name")), args,
                   dict(self.claimed.get("kwargs") or {}),
                   timeout_ms / 1000 if timeout_ms else None,
                   int(self.claimed.get("attempt") or 0))


def parents_argument(parents: list[Json]) -> Any:
    """What a task with ``pass_results`` gets first: one parent's value, or the list
    of its parents' values in the order of ``depends_on``. A parent's value is its
    result if it succeeded, else ``{"id", "status", "error"}`` (its last error)."""
    values = [p.get("result") if p.get("status") == "succeeded"
              else {"id": p.get("id"), "status": p.get("status"), "error": p.get("error")}
              for p in parents]
    return values[0] if len(values) == 1 else values


async def keep_leases(client: AsyncClient, worker_id: str, held: dict[str, Lease],
                      lease_ms: int) -> None:
    """Every ``lease_ms / 3`` extend every lease still held, also of tasks whose outcome
    is not delivered yet (a slow delivery never lets the lease lapse); a lease the
    cluster reports lost (``stale_lease``) is marked so."""
    while True:
        await asyncio.sleep(lease_ms / 3000)
        leases = [lease for lease in held.values() if not lease.lost]
        try:
            answers = await client.extend(worker_id, [(lease.id, lease.token)
                                                      for lease in leases], lease_ms)
        except Exception as exc:
            log.warning("could not extend %d leases: %s: %s", len(leases),
                        type(exc).__name__, exc)
            continue
        for answer in answers:
            lease = held.get(str(answer.get("id")))
            if lease is not None and not answer.get("ok"):
                log.warning("lost the lease of task %s (%s)", lease.id, answer.get("code"))
                lease.lost = True


class Outbox:
    """Finished leases whose outcomes no node has accepted yet."""

    def __init__(self, worker_id: str, changed: asyncio.Event,
                 answered: Callable[[Lease, Json], None]) -> None:
        self.worker_id = worker_id
        self.pending: deque[Lease] = deque()
        self._changed = changed  # set when something is added, and after each delivery
        self._answered = answered

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, lease: Lease) -> None:
        self.pending.append(lease)
        self._changed.set()

    async def deliver_forever(self, client: AsyncClient) -> None:
        failures = 0
        while True:
            if not self.pending:
                self._changed.clear()
                await self._changed.wait()
                continue
            batch = [self.pending[i] for i in range(min(BATCH, len(self.pending)))]
            try:
                answers = await self._send(client, batch)
            except Exception as exc:
                failures += 1
                log.warning("could not deliver %d outcomes (%s: %s); keeping them", len(batch),
                            type(exc).__name__, exc)
                await asyncio.sleep(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            failures = 0
            for _ in batch:
                self.pending.popleft()
            for lease, answer in zip(batch, answers, strict=False):
                self._answered(lease, answer)
            self._changed.set()

    async def _send(self, client: AsyncClient, batch: list[Lease]) -> list[Json]:
        items: list[Json] = []
        for lease in batch:
            assert lease.outcome is not None
            items.append(lease.outcome.item(lease.id, lease.token))
        try:
            return await client.complete_many(self.worker_id, items)
        except errors.Unavailable:
            raise
        except errors.RaftqError as exc:
            if len(batch) == 1:
                return [await self._send_refused(client, batch[0], exc)]
            answers: list[Json] = []
            for lease in batch:
                answers.extend(await self._send(client, [lease]))
            return answers

    async def _send_refused(self, client: AsyncClient, lease: Lease,
                            exc: errors.RaftqError) -> Json:
        assert lease.outcome is not None
        if lease.outcome.error is not None or not isinstance(exc, errors.InvalidRequest):
            # Given up on; the lease expires and the task is redelivered.
            return {"id": lease.id, "ok": False, "code": exc.code, "message": exc.message}
        lease.outcome = Outcome.failure(REJECTED, f"the node refused the result: {exc}",
                                        retry=False)
        return (await self._send(client, [lease]))[0]
