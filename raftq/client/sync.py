"""The synchronous Python client: ``Client`` and its ``TaskHandle``.

``Client`` talks JSON over HTTP (``raftq.client.syncwire``: kept-alive
connections per node, safe to share between threads) to the cluster's leader
when it can tell which node that is, else to any node, fails
over to another node on connection errors and 502/503/504, and retries every
mutating call so that a retry can never act twice: submissions carry a task id
made here, other mutating calls an ``Idempotency-Key`` that every retry reuses.
Errors come back as the ``raftq.errors`` tree. What each call sends is defined
once in ``raftq.client.calls``; ``AsyncClient`` (in ``raftq.client.asyncclient``) mirrors this
class as coroutines and is re-exported here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from raftq import errors
from raftq.client import access, batching, calls, failover
from raftq.client.asyncclient import AsyncClient, AsyncTaskHandle
from raftq.client.batching import Pipeline
from raftq.client.calls import Call, Json, JsonList
from raftq.client.flow import FlowCalls
from raftq.client.following import EventCalls
from raftq.client.schedules import ScheduleCalls
from raftq.client.syncwire import Pool
from raftq.client.transport import tls_context
from raftq.client.types import PurgeResult, Queues, TaskInfo, TaskList, TaskPage, WorkerList
from raftq.client.workflows import WorkflowCalls

__all__ = ["AsyncClient", "AsyncTaskHandle", "Client", "TaskHandle"]

log = logging.getLogger("raftq.client")


class TaskHandle:
    """A submitted task: its id, plus shortcuts to read it and wait for its result.

    A handle made inside ``with client.pipeline():`` is pending until its
    batch is sent (``pending``); reading it sends the batch first."""

    def __init__(self, client: Client, task_id: str, task: Json | None = None,
                 created: bool = True, pending: Pipeline | None = None) -> None:
        self.client = client
        self.id = task_id
        self.task = task or {}
        self.created = created
        self._pipeline = pending

    @property
    def pending(self) -> bool:
        """True until the node has answered for this task (pipelined submissions only)."""
        return self._pipeline is not None

    def settle(self, answer: Json) -> None:
        self.task, self.created = batching.submitted_fields(answer)
        self._pipeline = None

    def _sent(self) -> None:
        if self._pipeline is not None:
            self._pipeline.flush()

    def get(self) -> TaskInfo:
        self._sent()
        return self.client.get(self.id)

    def result(self, timeout: float | None = None) -> Any:
        self._sent()
        return self.client.result(self.id, timeout=timeout)

    def __repr__(self) -> str:
        return f"TaskHandle({self.id!r})"


class Client(ScheduleCalls, EventCalls, FlowCalls, WorkflowCalls):
    """Sync client for a raftq cluster.

    ``nodes``: node URLs (a list or a comma-separated string); default
    ``RAFTQ_NODES``, else the three local nodes of ``make up``. ``timeout`` is
    the socket timeout of one request (long-polls add their wait to it);
    ``retry_for`` bounds how long one call keeps failing over before it raises
    the last ``Unavailable``. ``api_key`` (default ``RAFTQ_API_KEY``) is sent
    as a bearer token; ``ca_file`` (default ``RAFTQ_CA_FILE``, else the
    system's CAs) verifies ``https://`` nodes. ``prefer_leader``: find the
    leader (``GET /v1/cluster``, again after a failover and every 30 s) and
    send to it, rather than through a follower that would forward to it.
    """

    def __init__(
        self,
        nodes: Sequence[str] | str | None = None,
        *,
        timeout: float = 10.0,
        retry_for: float = 30.0,
        api_key: str | None = None,
        ca_file: str | None = None,
        prefer_leader: bool = True,
    ) -> None:
        self.nodes = calls.resolve_nodes(nodes, os.environ)
        self.api_key = access.resolve_api_key(api_key, os.environ)
        self.ca_file = access.resolve_ca_file(ca_file, os.environ)
        self.timeout = timeout
        self._failover = failover.Failover(self.nodes, retry_for, prefer_leader)
        self._pool = Pool(tls_context(self.ca_file) if self.ca_file else None)
        self._pipelines = threading.local()  # .current: this thread's open pipeline

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.close()

    def pipeline(self) -> Pipeline:
        """``with client.pipeline():`` submissions on this thread inside the block
        (``submit``, and ``.delay()`` when this is the default client) go as
        batch requests of up to 1,000 when the block ends; their handles are
        ``pending`` until then. A block inside another joins it."""
        current: Pipeline | None = getattr(self._pipelines, "current", None)
        return current if current is not None else Pipeline(self)

    # -- transport ------------------------------------------------------------

    def _send(self, node: str, call: Call, timeout: float | None = None) -> tuple[int, Any,
                                                                                 float | None]:
        payload = None if call.body is None else json.dumps(call.body).encode()
        answer = self._pool.request(node, call.method, call.target, payload,
                                    call.headers(self.api_key),
                                    timeout if timeout is not None else self.timeout + call.wait_s)
        self._failover.epoch_announced(answer.headers.get(calls.MEMBERS_HEADER))
        retry_after = calls.retry_after_seconds(answer.headers.get("retry-after"))
        return answer.status, calls.decode_body(answer.body), retry_after

    def _find_leader(self) -> None:
        """Ask the current node who leads, and stick to it (``Failover.leader_seen``)."""
        node = self._failover.nodes[self._failover.current]
        try:
            status, body, _ = self._send(node, calls.cluster(), timeout=min(self.timeout, 2.0))
        except OSError:
            body, status = None, 0
        self._failover.leader_seen(body if status == 200 else None)

    def _call(self, call: Call, node: str | None = None) -> Any:
        if node is None and self._failover.leader_check_due():
            self._find_leader()
        attempts = self._failover.attempts()
        while True:
            target = node or attempts.node
            retry_after = None
            try:
                status, body, retry_after = self._send(target, call)
            except OSError as exc:
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
            time.sleep(delay)

    # -- tasks ----------------------------------------------------------------

    def submit(
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
    ) -> TaskHandle:
        spec = calls.task_spec({
            "name": name, "args": args, "kwargs": dict(kwargs or {}), "queue": queue,
            "priority": priority, "delay": delay, "eta": eta, "id": id,
            "max_attempts": max_attempts, "timeout": timeout, "retry_backoff": retry_backoff,
            "result_ttl": result_ttl, "expires": expires, "expires_at": expires_at,
            "tenant": tenant, "rate_key": rate_key, "concurrency_key": concurrency_key,
            "unique_key": unique_key, "unique_for": unique_for,
        })
        pipeline: Pipeline | None = getattr(self._pipelines, "current", None)
        if pipeline is not None:
            return pipeline.add(spec)
        body = self._call(calls.submit(spec))
        task, created = body.get("task"), bool(body.get("created", True))
        task_id = spec["id"]
        if not created and isinstance(task, dict) and "id" in task:
            task_id = task["id"]  # the holder of the spec's unique_key, or the spec's own
        return TaskHandle(self, task_id, task, created)

    def submit_many(self, specs: Sequence[Mapping[str, Any]]) -> list[TaskHandle]:
        """Submit many tasks through the batch endpoint, 1,000 per request, in order."""
        wire = [calls.task_spec(spec) for spec in specs]
        handles: list[TaskHandle] = []
        for start in range(0, len(wire), calls.MAX_BATCH):
            chunk = wire[start:start + calls.MAX_BATCH]
            results = self._call(calls.submit_batch(chunk))
            for spec, answer in zip(chunk, batching.batch_answers(chunk, results), strict=True):
                task, created = batching.submitted_fields(answer)
                task_id = spec["id"] if created else str(answer.get("id") or spec["id"])
                handles.append(TaskHandle(self, task_id, task, created))
        return handles

    def get(self, id: str, *, wait: float | None = None) -> TaskInfo:
        wait_ms = 0 if wait is None else min(calls.MAX_WAIT_MS, int(wait * 1000))
        task: TaskInfo = self._call(calls.get_task(id, wait_ms))
        return task

    def result(self, id: str, timeout: float | None = None) -> Any:
        """Wait for the task to finish; its result, ``TaskFailed`` or ``TimeoutError``.

        ``timeout=None`` waits for as long as it takes; ``0`` looks once.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait_ms = calls.wait_ms_for(deadline, time.monotonic())
            task = self._call(calls.get_task(id, wait_ms))
            if task.get("status") in calls.TERMINAL:
                return calls.outcome(task)
            if deadline is not None and time.monotonic() >= deadline:
                raise calls.not_done(id, str(task.get("status")), timeout)

    def list(self, status: str | None = None, queue: str | None = None,
             limit: int = 100, *, name: str | None = None,
             tenant: str | None = None) -> TaskList:
        """The newest ``limit`` tasks matching the filters (``list_page`` goes further)."""
        page: TaskPage = self._call(calls.list_tasks(status, queue, limit, name,
                                                    tenant=tenant))
        return page["tasks"]

    def list_page(self, status: str | None = None, queue: str | None = None,
                  limit: int = 100, *, name: str | None = None,
                  cursor: str | None = None, tenant: str | None = None) -> TaskPage:
        """One page of tasks, newest first; pass its ``next_cursor`` for the next one."""
        page: TaskPage = self._call(calls.list_tasks(status, queue, limit, name, cursor,
                                                    tenant))
        return page

    def cancel(self, id: str) -> TaskInfo:
        task: TaskInfo = self._call(calls.cancel(id))
        return task

    def dead_letters(self, queue: str | None = None,
                     limit: int = 100) -> TaskList:
        tasks: TaskList = self._call(calls.dead_letters(queue, limit))
        return tasks

    def requeue(self, id: str) -> TaskInfo:
        task: TaskInfo = self._call(calls.requeue(id))
        return task

    def retry_now(self, id: str) -> TaskInfo:
        """Make a task waiting out its retry backoff due now (an admin key)."""
        task: TaskInfo = self._call(calls.retry_now(id))
        return task

    def purge(self, id: str | None = None, queue: str | None = None) -> PurgeResult:
        """Delete one dead letter (``id``) or all (of ``queue``): how many went."""
        body: PurgeResult = self._call(calls.purge(id, queue))
        return body

    # -- cluster --------------------------------------------------------------

    def queues(self) -> Queues:
        """Task counts by queue: ``{"default": {"queued": 3, ...}, ...}``."""
        body: Queues = self._call(calls.queues())
        return body

    def workers(self) -> WorkerList:
        body: WorkerList = self._call(calls.workers())
        return body

    def leave(self, worker_id: str) -> Json:
        """Tell the cluster a worker stopped: ``{"worker_id", "removed", "leases"}``."""
        body: Json = self._call(calls.leave(worker_id))
        return body

    def control_worker(self, worker_id: str, action: str,
                       concurrency: int | None = None) -> Json:
        """pause | resume | drain | concurrency (admin): ``{"worker_id", "control"}``."""
        body: Json = self._call(calls.control_worker(worker_id, action, concurrency))
        return body

    def cluster(self) -> Json:
        body: Json = self._call(calls.cluster())
        return body

    def members(self) -> Json:
        """The cluster's membership: ``{"epoch", "members": [{"id", "raft_address",
        "http_url"}], "leader", "self"}``."""
        body: Json = self._call(calls.members())
        return body

    def add_node(self, node_id: str, raft_address: str, http_url: str) -> Json:
        """Add a voting node (admin); the membership after the change."""
        body: Json = self._call(calls.add_node(node_id, raft_address, http_url))
        return body

    def remove_node(self, node_id: str) -> Json:
        """Remove a node (admin); the membership after the change."""
        body: Json = self._call(calls.remove_node(node_id))
        return body

    def node(self, url: str | None = None) -> Json:
        """One node's own view (``url``: that node, no failover; default: any node)."""
        body: Json = self._call(calls.node(), node=url.rstrip("/") if url else None)
        return body

    # -- worker-facing --------------------------------------------------------

    def claim(self, worker_id: str, queues: Sequence[str] = ("default",), max: int = 1, *,
              lease_ms: int = 30_000, wait_ms: int = 0, host: str = "", pid: int = 0,
              names: Sequence[str] | None = None) -> JsonList:
        """Lease up to ``max`` ready tasks (only of ``names``, when given)."""
        tasks: JsonList = self._call(
            calls.claim(worker_id, queues, max, lease_ms, wait_ms, host, pid, names))
        return tasks

    def extend(self, worker_id: str, leases: Sequence[tuple[str, int]],
               lease_ms: int = 30_000) -> JsonList:
        out: JsonList = self._call(calls.extend(worker_id, leases, lease_ms))
        return out

    def release(self, worker_id: str, leases: Sequence[tuple[str, int]]) -> JsonList:
        out: JsonList = self._call(calls.release(worker_id, leases))
        return out

    def complete(self, id: str, lease_token: int, result: Any = None) -> Json:
        task: Json = self._call(calls.complete(id, lease_token, result))
        return task

    def fail(self, id: str, lease_token: int, error: Json | str, retry: bool = True) -> Json:
        task: Json = self._call(calls.fail(id, lease_token, error, retry))
        return task

    def complete_many(self, worker_id: str, items: JsonList) -> JsonList:
        out: JsonList = self._call(calls.complete_many(worker_id, items))
        return out

    def progress(self, worker_id: str, items: JsonList) -> JsonList:
        """Report running tasks' progress: items ``{"id", "lease_token", "fraction",
        "message"}`` (fraction 0-1); what a task's ``current_task().progress()`` sends."""
        out: JsonList = self._call(calls.progress(worker_id, items))
        return out

    # -- keys and audit (admin) ----------------------------------------------

    def create_key(self, name: str, role: str) -> Json:
        """A new API key: ``{"key": {...}, "token": ...}``; the token is shown only here."""
        body: Json = self._call(access.create_key(name, role))
        return body

    def keys(self) -> JsonList:
        out: JsonList = self._call(access.list_keys())
        return out

    def revoke_key(self, name: str) -> Json:
        key: Json = self._call(access.revoke_key(name))
        return key

    def audit(self, after: int | None = None, limit: int = 100) -> JsonList:
        out: JsonList = self._call(access.audit(after, limit))
        return out

