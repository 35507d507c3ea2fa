"""The worker runtime: claim, run, heartbeat, report, shut down gracefully.

One asyncio loop drives five activities around a table of held leases:

- **claiming**: long-poll ``POST /v1/claims`` for at most the free slots
  (concurrency plus prefetch, minus what is running or waiting to start), so
  an idle worker sits in one cheap request and a busy one claims in batches;
  the prefetch is fixed, or by default follows the measured claim round trip
  and task time (``raftq.worker.prefetch``);
  a claim names the tasks this worker runs, so it is never given another's;
- **presence**: announce the tasks and their defaults at start and with a
  heartbeat every ``heartbeat_s``, and obey the control the answer carries
  (pause, resume, concurrency, drain; ``raftq.worker.presence``);
- **running**: each claimed task goes to the pool (``raftq.worker.pools``), which
  enforces its timeout (the task's, or the decorator's if that is shorter) and
  turns it into an outcome;
- **leases**: every ``lease_ms / 3`` one ``POST /v1/leases/extend`` renews
  every lease still held, including tasks whose outcome is not yet delivered,
  so a slow delivery never lets another worker run the task a second time;
- **delivery**: outcomes queue in an outbox (``raftq.worker.outbox``) that ``POST /v1/completions``
  drains in batches; a batch that no node takes stays in the outbox and is
  retried (on other nodes) until one does.

The first SIGTERM/SIGINT stops claiming, hands back tasks claimed but not
started (``/v1/leases/release``), lets running tasks finish up to
``shutdown_timeout`` and delivers their outcomes; a second signal stops at
once (those leases then expire and the tasks are redelivered).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from raftq import errors
from raftq.client.asyncclient import AsyncClient
from raftq.client.calls import Json
from raftq.client.task import Registry, default_registry
from raftq.worker.outbox import Lease, Outbox, keep_leases
from raftq.worker.pools import Outcome, Pool, make_pool
from raftq.worker.prefetch import AutoPrefetch
from raftq.worker.presence import Heartbeat
from raftq.worker.progress import ProgressSender

log = logging.getLogger("raftq.worker")

@dataclass
class WorkerConfig:
    app: Sequence[str] = ()  # modules holding the tasks (process pool children import them)
    nodes: Sequence[str] | str | None = None
    queues: Sequence[str] = ("default",)
    concurrency: int = 8
    pool: str = "thread"
    lease_ms: int = 30_000
    claim_wait_ms: int = 5_000
    prefetch: int | None = None  # None: follow what the worker measures (AutoPrefetch)
    shutdown_timeout: float = 30.0
    worker_id: str = ""
    api_key: str | None = None  # default: RAFTQ_API_KEY
    ca_file: str | None = None  # default: RAFTQ_CA_FILE
    heartbeat_s: float = 2.0
    max_tasks_per_child: int = 0  # process pool: replace a child after this many; 0: never
    max_memory_per_child: int = 0  # process pool: ... once it holds more KiB; 0: never

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise errors.ConfigError("--concurrency must be at least 1")
        if self.prefetch is not None and self.prefetch < 0:
            raise errors.ConfigError("--prefetch must be 'auto' or at least 0")
        if self.lease_ms < 1_000:
            raise errors.ConfigError("--lease-ms must be at least 1000")
        if not self.queues:
            raise errors.ConfigError("--queues must name at least one queue")
        if not 0.1 <= self.heartbeat_s <= 3600:
            raise errors.ConfigError("--heartbeat must be 0.1-3600 seconds")
        if not self.worker_id:
            self.worker_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Stats:
    claimed: int = 0
    succeeded: int = 0
    failed: int = 0
    released: int = 0
    rejected: int = 0  # outcomes a node refused (stale lease: another worker owns the task)


class Worker:
    def __init__(self, config: WorkerConfig, *, registry: Registry | None = None,
                 client: AsyncClient | None = None, pool: Pool | None = None) -> None:
        self.config = config
        self.id = config.worker_id
        self.registry = registry if registry is not None else default_registry
        self._client = client
        self._pool = pool
        self.held: dict[str, Lease] = {}
        self.auto_prefetch = AutoPrefetch(config.concurrency)
        self.waiting: deque[Lease] = deque()  # claimed, not started
        self.stats = Stats()
        self._stopping = asyncio.Event()
        self._halt = asyncio.Event()
        self._changed = asyncio.Event()  # a slot freed, an outcome queued, a stop asked
        self.outbox = Outbox(self.id, self._changed, self._answered)  # finished, not delivered
        self.progress = ProgressSender(self.id, lambda: self.client)
        self._running: set[asyncio.Task[None]] = set()
        self._starting = 0
        self.host, self.pid = socket.gethostname(), os.getpid()
        self.paused = False
        self.presence = Heartbeat(self)

    # -- control --------------------------------------------------------------

    def stop(self) -> None:
        """Graceful stop (what the first signal does)."""
        self._stopping.set()
        self._changed.set()

    def halt(self) -> None:
        """Stop at once (what the second signal does)."""
        self._stopping.set()
        self._halt.set()
        self._changed.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def mode(self) -> str:
        return "draining" if self.stopping else "paused" if self.paused else "running"

    def pause(self, paused: bool) -> None:
        """Claim nothing new (running tasks go on), or claim again."""
        self.paused = paused
        if paused and self.waiting:  # claimed, not started: another worker can run them
            leases = list(self.waiting)
            self.waiting.clear()
            task = asyncio.create_task(self._release(leases))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        self._changed.set()

    def resize(self, concurrency: int) -> None:
        """Run up to ``concurrency`` tasks at once from now on."""
        self.config.concurrency = self.auto_prefetch.concurrency = concurrency
        self.pool.resize(concurrency)
        self._start_waiting()
        self._changed.set()

    @property
    def in_use(self) -> int:
        """Execution slots taken: in the pool, or handed to it but not yet inside."""
        return self.pool.busy + self._starting

    @property
    def prefetch(self) -> int:
        fixed = self.config.prefetch
        return self.auto_prefetch.value if fixed is None else fixed

    @property
    def free_slots(self) -> int:
        return self.config.concurrency + self.prefetch - self.in_use - len(self.waiting)

    @property
    def pool(self) -> Pool:
        assert self._pool is not None
        return self._pool

    @property
    def client(self) -> AsyncClient:
        assert self._client is not None
        return self._client

    # -- main -----------------------------------------------------------------

    async def run(self) -> None:
        """Work until stopped; returns once leases are delivered or handed back."""
        cfg = self.config
        own_client = self._client is None
        if self._client is None:
            self._client = AsyncClient(cfg.nodes, retry_for=max(5.0, cfg.lease_ms / 3000),
                                       api_key=cfg.api_key, ca_file=cfg.ca_file)
        if self._pool is None:
            self._pool = make_pool(cfg.pool, cfg.concurrency, self.registry, cfg.app,
                                   cfg.max_tasks_per_child, cfg.max_memory_per_child)
        self.pool.on_free = self._changed.set
        await self.pool.start()
        log.info("worker %s: %s pool x%d, queues %s, tasks %s", self.id, cfg.pool,
                 cfg.concurrency, ",".join(cfg.queues), ",".join(self.registry.names()))
        await self.presence.beat()  # announce before the first claim (claims name the tasks)
        background = [asyncio.create_task(coro) for coro in (
            keep_leases(self.client, self.id, self.held, cfg.lease_ms),
            self.outbox.deliver_forever(self.client), self.presence.run_forever())]
        halted = asyncio.create_task(self._halt.wait())
        try:
            claimer = asyncio.create_task(self._claim_loop())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait([claimer, stopping, halted], return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            # A claim in flight is awaited, not cut: its answer may hold leases,
            # which are then handed back instead of left to expire.
            await self._unless_halted(claimer, halted,
                                      cfg.claim_wait_ms / 1000 + self.client.timeout)
            await self._unless_halted(asyncio.create_task(self._release(list(self.waiting))),
                                      halted)
            await self._unless_halted(asyncio.create_task(self._drain()), halted)
            if not self.held and not self.outbox:
                await self._unless_halted(asyncio.create_task(self._leave()), halted, 5.0)
        finally:
            for task in [halted, *background, *self._running]:
                task.cancel()
            await asyncio.gather(halted, *background, *self._running, return_exceptions=True)
            await self.pool.close(kill=True)
            if own_client:
                await self.client.close()
        if self.outbox or self.held:
            log.warning("worker %s stopped holding %d leases (%d outcomes undelivered); "
                        "they will expire and be redelivered", self.id, len(self.held),
                        len(self.outbox))

    @staticmethod
    async def _unless_halted(step: asyncio.Task[Any], halted: asyncio.Task[Any],
                             timeout: float | None = None) -> None:
        """Wait for ``step`` (at most ``timeout``), cancelling it on a halt."""
        if halted.done():
            step.cancel()
            return
        await asyncio.wait([step, halted], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if not step.done():
            step.cancel()
        elif not step.cancelled() and step.exception() is not None:
            log.error("worker step failed", exc_info=step.exception())

    async def _leave(self) -> None:
        """Tell the cluster this worker is gone, so ``raftq workers`` stops listing it."""
        try:
            await self.client.leave(self.id)
        except errors.RaftqError as exc:
            log.info("worker %s: could not say goodbye (%s); the cluster forgets it later",
                     self.id, exc)

    async def _drain(self) -> None:
        """Let running tasks finish up to the deadline, then deliver their outcomes."""
        deadline = time.monotonic() + self.config.shutdown_timeout
        while any(lease.started and lease.outcome is None for lease in self.held.values()):
            if not await self._wait_change(deadline):
                log.warning("shutdown deadline passed with tasks still running")
                return
        deadline = time.monotonic() + self.config.shutdown_timeout
        while self.outbox:
            if not await self._wait_change(deadline):
                log.error("could not deliver %d outcomes before the deadline", len(self.outbox))
                return

    async def _wait_change(self, deadline: float) -> bool:
        self._changed.clear()
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            await asyncio.wait_for(self._changed.wait(), remaining)
        except TimeoutError:
            return False
        return True

    # -- claiming and running --------------------------------------------------

    async def _claim_loop(self) -> None:
        cfg = self.config
        failures = 0
        # While prefetched tasks still wait to start there is no hurry: claim
        # when a quarter of the slots is free rather than one round trip per
        # finished task.
        names = self.registry.names()
        while not self._stopping.is_set():
            batch = max(1, (cfg.concurrency + self.prefetch) // 4)
            if self.paused or self.free_slots <= 0 or (self.waiting and self.free_slots < batch):
                self._changed.clear()
                if self.paused or self.free_slots <= 0 or (
                        self.waiting and self.free_slots < batch):
                    await self._changed.wait()
                continue
            free = self.free_slots
            started = time.monotonic()
            try:
                claimed = await self.client.claim(
                    self.id, cfg.queues, free, lease_ms=cfg.lease_ms,
                    wait_ms=cfg.claim_wait_ms, host=self.host, pid=self.pid, names=names)
            except Exception as exc:
                # Whatever went wrong, the worker keeps claiming: a node that
                # errs is waited out like one that does not answer.
                failures += 1
                log.log(logging.WARNING if isinstance(exc, errors.RaftqError) else logging.ERROR,
                        "claim failed (%s: %s); retrying", type(exc).__name__, exc)
                await self._sleep_unless_stopping(min(5.0, 0.2 * 2 ** min(failures, 5)))
                continue
            failures = 0
            self.auto_prefetch.claimed(time.monotonic() - started, len(claimed), free)
            if log.isEnabledFor(logging.DEBUG):
                log.debug("claimed %d of %d: %s", len(claimed), free, " ".join(
                    f"{t.get('id')}/{t.get('lease_token')}#{t.get('attempt')}" for t in claimed))
            for task in claimed:
                lease = Lease(str(task["id"]), int(task["lease_token"]), task)
                self.held[lease.id] = lease
                self.waiting.append(lease)
            self.stats.claimed += len(claimed)
            if self._stopping.is_set():
                return  # the waiting ones are released by run()
            if self.paused:  # paused while the claim was out: hand them back
                await self._release(list(self.waiting))
            self._start_waiting()

    def _start_waiting(self) -> None:
        while self.waiting and self.in_use < self.config.concurrency:
            lease = self.waiting.popleft()
            if lease.lost:  # its lease ran out before it could start: not ours any more
                self.held.pop(lease.id, None)
                continue
            lease.started = True
            self._starting += 1
            task = asyncio.create_task(self._execute(lease))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _execute(self, lease: Lease) -> None:
        # The pool counts the job as busy before its first await, so the slot
        # passes from _starting to pool.busy without a moment in neither.
        self._starting -= 1
        job = lease.job()
        fn = self.registry.get(job.name)
        if fn is not None and fn.options.timeout is not None:
            # The decorator's timeout holds even for a task submitted with a longer one.
            job.timeout_s = min(job.timeout_s or fn.options.timeout, fn.options.timeout)
        started = time.monotonic()
        try:
            job.report = self.progress.reporter(lease)
            outcome = await self.pool.run(job)
            await self.progress.flush(lease)
        except Exception as exc:  # a bug in the pool must not strand the lease
            log.exception("pool failed running task %s", lease.id)
            outcome = Outcome.from_exception(exc)
        lease.outcome = outcome
        self.auto_prefetch.ran(time.monotonic() - started)
        if outcome.error is None:
            self.stats.succeeded += 1
        else:
            self.stats.failed += 1
            log.info("task %s (%s) failed: %s: %s", lease.id, job.name,
                     outcome.error.get("type"), outcome.error.get("message"))
        if lease.lost:
            self.held.pop(lease.id, None)
        else:
            self.outbox.add(lease)
        if not self._stopping.is_set():
            self._start_waiting()
        self._changed.set()

    async def _release(self, leases: list[Lease]) -> None:
        self.waiting.clear()
        if not leases:
            return
        try:
            await self.client.release(self.id, [(lease.id, lease.token) for lease in leases])
        except errors.RaftqError as exc:
            log.warning("could not hand back %d unstarted tasks (%s); their leases will expire",
                        len(leases), exc)
            return
        for lease in leases:
            self.held.pop(lease.id, None)
        self.stats.released += len(leases)

    # -- heartbeat and delivery -----------------------------------------------

    def _answered(self, lease: Lease, answer: Json) -> None:
        self.held.pop(lease.id, None)
        if answer.get("code") == "already_finished":
            # Finished under another request: ours, if an earlier delivery landed
            # and its answer was lost; or someone else's.
            log.info("task %s was already finished: %s", lease.id, answer.get("message", ""))
        elif not answer.get("ok"):
            self.stats.rejected += 1
            log.warning("outcome of task %s refused: %s %s", lease.id, answer.get("code"),
                        answer.get("message", ""))

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
