"""The asyncio Python client: ``AsyncClient`` and its ``AsyncTaskHandle``.

The coroutine twin of ``raftq.client.Client`` (over ``raftq.client.transport``), with the same
failover and idempotent retries (both come from ``raftq.client.calls``), plus the
worker-facing calls (claim, extend, release, complete, fail, complete_many)
that the worker runtime drives. Its connections are opened lazily inside
the running loop; close them with ``await client.close()`` or ``async with``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from raftq import errors
from raftq.client import access, batching, calls, failover
from raftq.client.calls import Call, Json, JsonList
from raftq.client.flow import AsyncFlowCalls
from raftq.client.following import AsyncEventCalls
from raftq.client.schedules import AsyncScheduleCalls
from raftq.client.transport import Pool, tls_context
from raftq.client.types import PurgeResult, Queues, TaskInfo, TaskList, TaskPage, WorkerList
from raftq.client.workflows import AsyncWorkflowCalls

log = logging.getLogger("raftq.client")


class AsyncTaskHandle:
    """A submitted task, for coroutines: its id, ``await get()`` and ``await result()``."""

    def __init__(self, client: AsyncClient, task_id: str, task: Json | None = None,
                 created: bool = True) -> None:
        self.client = client
        self.id = task_id
        self.task = task or {}
        self.created = created

    async def get(self) -> TaskInfo:
        return await self.client.get(self.id)

    async def result(self, timeout: float | None = None) -> Any:
        return await self.client.result(self.id, timeout=timeout)

    def __repr__(self) -> str:
        return f"AsyncTaskHandle({self.id!r})"


class AsyncClient(AsyncScheduleCalls, AsyncEventCalls, AsyncFlowCalls, AsyncWorkflowCalls):
    """Async client for a raftq cluster; arguments as for ``raftq.Client``
    (``prefer_leader`` too).

    ``coalesce`` (default on): submissions made in the same turn of the event
    loop, or while an earlier batch is on the wire, travel together as one
    batch request (``raftq.client.batching``); each ``submit`` still returns
    only once the node answered for its task.
    """

    def __init__(
        self,
        nodes: Sequence[str] | str | None = None,
        *,
        timeout: float = 10.0,
        retry_for: float = 30.0,
        coalesce: bool = True,
        api_key: str | None = None,
        ca_file: str | None = None,
        prefer_leader: bool = True,
    ) -> None:
        self.nodes = calls.resolve_nodes(nodes, os.environ)
        self.api_key = access.resolve_api_key(api_key, os.environ)
        self.ca_file = access.resolve_ca_file(ca_file, os.environ)
        self.timeout = timeout
        self._failover = failover.Failover(self.nodes, retry_for, prefer_leader)
        self._pool: Pool | None = None  # made inside the running loop
        self._coalescer = batching.Coalescer(self._submit_one, self._submit_batch) \
            if coalesce else None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    # -- transport ------------------------------------------------------------

    async def _send(self, node: str, call: Call,
                    timeout: float | None = None) -> tuple[int, Any, float | None]:
        if self._pool is None:
            self._pool = Pool(tls_context(self.ca_file) if self.ca_file else None)
        body = None if call.body is None else json.dumps(call.body).encode()
        answer = await self._pool.request(
            node, call.method, call.target, body, call.headers(self.api_key),
            timeout if timeout is not None else self.timeout + call.wait_s)
        self._failover.epoch_announced(answer.headers.get(calls.MEMBERS_HEADER))
        retry_after = calls.retry_after_seconds(answer.headers.get("retry-after"))
        return answer.status, calls.decode_body(answer.body), retry_after

    async def _find_leader(self) -> None:
        """Ask the current node who leads, and stick to it (``Failover.leader_seen``)."""
        node = self._failover.nodes[self._failover.current]
        try:
            status, body, _ = await self._send(node, calls.cluster(),
                                               timeout=min(self.timeout, 2.0))
        except (TimeoutError, OSError):
            body, status = None, 0
        self._failover.leader_seen(body if status == 200 else None)

    async def _call(self, call: Call, node: str | None = None) -> Any:
        if node is None and self._failover.leader_check_due():
            await self._find_leader()
        attempts = self._failover.attempts()
        while True:
            target = node or attempts.node
            retry_after = None
            try:
                status, body, retry_after = await self._send(target, call)
            except (TimeoutError, OSError) as exc:
                error: errors.RaftqError = calls.unreachable(target, exc)
            else:
                if status < 300:
                    return call.pick(body)
                error = errors.from_json(status, body)
                if status not in calls.RETRY_STATUSES:
                    raise error
            if node is not None:
                raise error
            delay = attempts.retry_delay(error, retry_after)
            log.debug("%s %s failed on %s (%s); retrying in %.2fs", call.method, call.path,
                      target, error, delay)
            await asyncio.sleep(delay)

    # -- tasks ----------------------------------------------------------------

    async def submit(
        self,
        name: str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue: str | None = None,
        priority: str | int | None = None,
        delay: float | None = None,
        eta: Any = None,
        id: str | None = None,
        max_attempts: int | None = None,
        timeout: float | None = None,
        retry_backoff: float | None = None,
        result_ttl: float | None = None,
        expires: float | None = None,
        expires_at: Any = None,
        tenant: str | None = None,
        rate_key: str | None = None,
        concurrency_key: str | None = None,
        unique_key: str | None = None,
        unique_for: float | None = None,
    ) -> AsyncTaskHandle:
        spec = calls.task_spec({
            "name": name, "args": args, "kwargs": dict(kwargs or {}), "queue": queue,
            "priority": priority, "delay": delay, "eta": eta, "id": id,
            "max_attempts": max_attempts, "timeout": timeout, "retry_backoff": retry_backoff,
            "result_ttl": result_ttl, "expires": expires, "expires_at": expires_at,
            "tenant": tenant, "rate_key": rate_key, "concurrency_key": concurrency_key,
            "unique_key": unique_key, "unique_for": unique_for,
        })
        if self._coalescer is not None:
            answer = await self._coalescer.submit(spec)
        else:
            answer = await self._submit_one(spec)
        task, created = batching.submitted_fields(answer)
        task_id = spec["id"] if created else str(task.get("id") or answer.get("id") or spec["id"])
        return AsyncTaskHandle(self, task_id, task, created)  # not created: a unique key's holder

    async def _submit_one(self, spec: Json) -> batching.Submitted:
        answer: batching.Submitted = await self._call(calls.submit(spec))
        return answer

    async def _submit_batch(self, specs: JsonList) -> list[batching.Submitted]:
        return batching.batch_answers(specs, await self._call(calls.submit_batch(specs)))

    async def submit_many(self, specs: Sequence[Mapping[str, Any]]) -> list[AsyncTaskHandle]:
        """Submit many tasks through the batch endpoint, 1,000 per request, in order."""
        wire = [calls.task_spec(spec) for spec in specs]
        handles: list[AsyncTaskHandle] = []
        for start in range(0, len(wire), calls.MAX_BATCH):
            chunk = wire[start:start + calls.MAX_BATCH]
            for spec, answer in zip(chunk, await self._submit_batch(chunk), strict=True):
                handles.append(AsyncTaskHandle(self, spec["id"],
                                               *batching.submitted_fields(answer)))
        return handles

    async def get(self, id: str, *, wait: float | None = None) -> TaskInfo:
        wait_ms = 0 if wait is None else min(calls.MAX_WAIT_MS, int(wait * 1000))
        task: TaskInfo = await self._call(calls.get_task(id, wait_ms))
        return task

    async def result(self, id: str, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait_ms = calls.wait_ms_for(deadline, time.monotonic())
            task = await self._call(calls.get_task(id, wait_ms))
            if task.get("status") in calls.TERMINAL:
                return calls.outcome(task)
            if deadline is not None and time.monotonic() >= deadline:
                raise calls.not_done(id, str(task.get("status")), timeout)

    async def list(self, status: str | None = None, queue: str | None = None,
             limit: int = 100, *, name: str | None = None,
             tenant: str | None = None) -> TaskList:
        """The newest ``limit`` tasks matching the filters (``list_page`` goes further)."""
        page: TaskPage = await self._call(calls.list_tasks(status, queue, limit, name,
                                                          tenant=tenant))
        return page["tasks"]

    async def list_page(self, status: str | None = None, queue: str | None = None,
                  limit: int = 100, *, name: str | None = None,
                  cursor: str | None = None, tenant: str | None = None) -> TaskPage:
        """One page of tasks, newest first; pass its ``next_cursor`` for the next one."""
        page: TaskPage = await self._call(calls.list_tasks(status, queue, limit, name, cursor,
                                                          tenant))
        return page

    async def cancel(self, id: str) -> TaskInfo:
        task: TaskInfo = await self._call(calls.cancel(id))
        return task

    async def dead_letters(self, queue: str | None = None,
                     limit: int = 100) -> TaskList:
        tasks: TaskList = await self._call(calls.dead_letters(queue, limit))
        return tasks

    async def requeue(self, id: str) -> TaskInfo:
        task: TaskInfo = await self._call(calls.requeue(id))
        return task

    async def retry_now(self, id: str) -> TaskInfo:
        """Make a task waiting out its retry backoff due now (an admin key)."""
        task: TaskInfo = await self._call(calls.retry_now(id))
        return task

    async def purge(self, id: str | None = None, queue: str | None = None) -> PurgeResult:
        """Delete one dead letter (``id``) or all (of ``queue``): how many went."""
        body: PurgeResult = await self._call(calls.purge(id, queue))
        return body

    # -- cluster --------------------------------------------------------------

    async def queues(self) -> Queues:
        """Task counts by queue: ``{"default": {"queued": 3, ...}, ...}``."""
        body: Queues = await self._call(calls.queues())
        return body

    async def workers(self) -> WorkerList:
        body: WorkerList = await self._call(calls.workers())
        return body

    async def leave(self, worker_id: str) -> Json:
        """Tell the cluster a worker stopped: ``{"worker_id", "removed", "leases"}``."""
        body: Json = await self._call(calls.leave(worker_id))
        return body

    async def control_worker(self, worker_id: str, action: str,
                             concurrency: int | None = None) -> Json:
        """pause | resume | drain | concurrency (admin): ``{"worker_id", "control"}``."""
        body: Json = await self._call(calls.control_worker(worker_id, action, concurrency))
        return body

    async def cluster(self) -> Json:
        body: Json = await self._call(calls.cluster())
        return body

    async def members(self) -> Json:
        body: Json = await self._call(calls.members())
        return body

    async def add_node(self, node_id: str, raft_address: str, http_url: str) -> Json:
        body: Json = await self._call(calls.add_node(node_id, raft_address, http_url))
        return body

    async def remove_node(self, node_id: str) -> Json:
        body: Json = await self._call(calls.remove_node(node_id))
        return body

    async def node(self, url: str | None = None) -> Json:
        body: Json = await self._call(calls.node(), node=url.rstrip("/") if url else None)
        return body

    # -- worker-facing --------------------------------------------------------

    async def claim(self, worker_id: str, queues: Sequence[str] = ("default",), max: int = 1, *,
                    lease_ms: int = 30_000, wait_ms: int = 0, host: str = "",
                    pid: int = 0, names: Sequence[str] | None = None) -> JsonList:
        """Lease up to ``max`` ready tasks (only of ``names``, when given)."""
        tasks: JsonList = await self._call(
            calls.claim(worker_id, queues, max, lease_ms, wait_ms, host, pid, names))
        return tasks

    async def heartbeat(self, worker_id: str, body: Json) -> Json:
        """A worker's announcement and heartbeat; the answer holds its control."""
        out: Json = await self._call(calls.heartbeat(worker_id, body))
        return out

    async def extend(self, worker_id: str, leases: Sequence[tuple[str, int]],
                     lease_ms: int = 30_000) -> JsonList:
        out: JsonList = await self._call(calls.extend(worker_id, leases, lease_ms))
        return out

    async def release(self, worker_id: str, leases: Sequence[tuple[str, int]]) -> JsonList:
        out: JsonList = await self._call(calls.release(worker_id, leases))
        return out

    async def complete(self, id: str, lease_token: int, result: Any = None) -> Json:
        task: Json = await self._call(calls.complete(id, lease_token, result))
        return task

    async def fail(self, id: str, lease_token: int, error: Json | str,
                   retry: bool = True) -> Json:
        task: Json = await self._call(calls.fail(id, lease_token, error, retry))
        return task

    async def complete_many(self, worker_id: str, items: JsonList) -> JsonList:
        out: JsonList = await self._call(calls.complete_many(worker_id, items))
        return out

    async def progress(self, worker_id: str, items: JsonList) -> JsonList:
        """Report running tasks' progress: items ``{"id", "lease_token", "fraction",
        "message"}`` (fraction 0-1); what a task's ``current_task().progress()`` sends."""
        out: JsonList = await self._call(calls.progress(worker_id, items))
        return out

    # -- keys and audit (admin) ----------------------------------------------

    async def create_key(self, name: str, role: str) -> Json:
        """A new API key: ``{"key": {...}, "token": ...}``; the token is shown only here."""
        body: Json = await self._call(access.create_key(name, role))
        return body

    async def keys(self) -> JsonList:
        out: JsonList = await self._call(access.list_keys())
        return out

    async def revoke_key(self, name: str) -> Json:
        key: Json = await self._call(access.revoke_key(name))
        return key

    async def audit(self, after: int | None = None, limit: int = 100) -> JsonList:
        out: JsonList = await self._call(access.audit(after, limit))
        return out

