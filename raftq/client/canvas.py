"""The canvas: signatures, chains, groups and chords, each sent as one workflow.

``add.s(2, 3)`` is a ``Signature``: a task call not yet made. ``chain(a, b,
c)`` runs its parts one after another, each getting the result of the one
before as its first argument; ``group(a, b)`` runs its parts side by side and
its result is the list of theirs; ``chord(group(...), callback)`` runs the
callback with that list once the whole group has succeeded.
``sig.on_success(other)`` and ``sig.on_failure(handler)`` attach callbacks
(the handler gets the failed task's ``{"id", "status", "error"}``).

Whatever the shape, ``submit()`` (or ``await submit_async()``) sends it as
one ``POST /v1/workflows`` (all tasks are created, or none) and returns a
handle whose ``result()`` waits for the final result: the last task's, or a
list for a group. When a task fails, what depends on it is cancelled by the
cluster (``on_parent_failure`` cancel) and ``result()`` raises ``TaskFailed``.

How a task receives its parents' results (``pass_results``), as the worker
passes them: one parent's result as the first positional argument; with
several parents (a chord's callback, a chain after a group) one list of
their results, in the order of ``depends_on``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union, cast
from urllib.parse import quote

from raftq.client import calls
from raftq.client.calls import Call, Json

if TYPE_CHECKING:
    from raftq.client.asyncclient import AsyncClient
    from raftq.client.sync import Client

Part = Union["Signature", "Chain", "Group", "Chord"]


# -- the calls ----------------------------------------------------------------


def create_call(tasks: list[Json], workflow_id: str) -> Call:
    return Call("POST", "/v1/workflows", body={"id": workflow_id, "tasks": tasks},
                idempotency_key=workflow_id)


def get_call(workflow_id: str, wait_ms: int = 0) -> Call:
    query = {"wait_ms": wait_ms} if wait_ms > 0 else {}
    return Call("GET", f"/v1/workflows/{quote(workflow_id, safe='')}", query,
                unwrap="workflow", wait_s=wait_ms / 1000)


def cancel_call(workflow_id: str) -> Call:
    return Call("DELETE", f"/v1/workflows/{quote(workflow_id, safe='')}")


def get_workflow(client: Client, workflow_id: str, wait: float | None = None) -> Json:
    """A workflow's status and its tasks (``wait``: until it ends, at most this long)."""
    wait_ms = 0 if wait is None else min(calls.MAX_WAIT_MS, int(wait * 1000))
    view: Json = client._call(get_call(workflow_id, wait_ms))
    return view


def cancel_workflow(client: Client, workflow_id: str) -> Json:
    """Cancel what has not started: ``{"workflow": ..., "cancelled": n}``."""
    answer: Json = client._call(cancel_call(workflow_id))
    return answer


# -- the shapes ---------------------------------------------------------------


class _Submits:
    """``submit`` and ``submit_async`` of every canvas shape: one POST /v1/workflows."""

    def submit(self, client: Client | None = None) -> WorkflowHandle:
        return _submit(cast(Part, self), client)

    async def submit_async(self, client: AsyncClient | None = None) -> AsyncWorkflowHandle:
        return await _submit_async(cast(Part, self), client)


@dataclass
class Signature(_Submits):
    """One task call: its name, arguments and submission options."""

    name: str
    args: Sequence[Any] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    callbacks: list[tuple[str, Signature]] = field(default_factory=list)

    def set(self, **options: Any) -> Signature:
        """Submission options (``queue``, ``priority``, ``max_attempts``, ``timeout``...)."""
        self.options = {**self.options, **options}
        return self

    def on_success(self, callback: Signature) -> Signature:
        """Run ``callback`` with this task's result once it succeeded."""
        self.callbacks.append(("success", callback))
        return self

    def on_failure(self, handler: Signature) -> Signature:
        """Run ``handler`` only if this task ends dead; it gets ``{"id", "status", "error"}``."""
        self.callbacks.append(("failure", handler))
        return self


@dataclass
class Chain(_Submits):
    parts: list[Part]


@dataclass
class Group(_Submits):
    parts: list[Part]


@dataclass
class Chord(_Submits):
    header: Group
    body: Part


def chain(*parts: Part) -> Chain:
    if not parts:
        raise ValueError("a chain needs at least one part")
    return Chain(list(parts))


def group(*parts: Part | Iterable[Part]) -> Group:
    """``group(a, b, c)`` or ``group([a, b, c])``."""
    flat: list[Part] = []
    for part in parts:
        if isinstance(part, Signature | Chain | Group | Chord):
            flat.append(part)
        else:
            flat.extend(part)
    if not flat:
        raise ValueError("a group needs at least one part")
    return Group(flat)


def chord(header: Group | Iterable[Part], body: Part) -> Chord:
    return Chord(header if isinstance(header, Group) else group(header), body)


# -- compiling a shape into workflow tasks --------------------------------------


_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "args": ([],), "kwargs": ({},), "queue": ("default",), "priority": ("normal",),
}


class _Builder:
    def __init__(self) -> None:
        self.tasks: list[Json] = []

    def add(self, part: Part, parents: list[str]) -> list[str]:
        """Add ``part`` after ``parents``; the keys whose results are its result."""
        if isinstance(part, Signature):
            return [self.task(part, parents, "success")]
        if isinstance(part, Chain):
            tails = parents
            for item in part.parts:
                tails = self.add(item, tails)
            return tails
        if isinstance(part, Group):
            return [key for item in part.parts for key in self.add(item, parents)]
        return self.add(part.body, self.add(part.header, parents))

    def task(self, sig: Signature, parents: list[str], run_when: str) -> str:
        key = f"t{len(self.tasks)}"
        spec = calls.task_spec({"name": sig.name, "args": list(sig.args),
                                "kwargs": dict(sig.kwargs), **sig.options})
        # What the node would fill in anyway stays out: a 10,000-task workflow must fit
        # in one request. Task ids are the node's: the workflow id makes a retry safe.
        spec = {k: x for k, x in spec.items()
                if (k != "id" or "id" in sig.options) and x not in _DEFAULTS.get(k, ())}
        spec["key"] = key
        if parents:
            spec.update(depends_on=list(parents), pass_results=True)
        if run_when != "success":
            spec["run_when"] = run_when
        self.tasks.append(spec)
        for when, callback in sig.callbacks:
            self.task(callback, [key], when)
        return key


def build(part: Part) -> tuple[list[Json], list[str], bool]:
    """The workflow's tasks, the keys of its final result, and whether that is a list."""
    builder = _Builder()
    tails = builder.add(part, [])
    return builder.tasks, tails, isinstance(part, Group)


# -- handles ------------------------------------------------------------------


class WorkflowHandle:
    """A submitted workflow: ``result()`` waits for its final result."""

    def __init__(self, client: Client, workflow: Json, tails: list[str], many: bool) -> None:
        self.client = client
        self.id: str = workflow["id"]
        self.ids: dict[str, str] = {t["key"]: t["id"] for t in workflow["tasks"]}
        self._tails, self._many = [self.ids[k] for k in tails], many

    def get(self, wait: float | None = None) -> Json:
        """The workflow's status and its tasks (``wait``: until it ends, at most this long)."""
        return get_workflow(self.client, self.id, wait)

    def cancel(self) -> Json:
        """Cancel what has not started: ``{"workflow": ..., "cancelled": n}``."""
        return cancel_workflow(self.client, self.id)

    def result(self, timeout: float | None = None) -> Any:
        deadline = None if timeout is None else time.monotonic() + timeout
        out = []
        for task_id in self._tails:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            out.append(self.client.result(task_id, timeout=left))
        return out if self._many else out[0]

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id}>"


class AsyncWorkflowHandle:
    def __init__(self, client: AsyncClient, workflow: Json, tails: list[str],
                 many: bool) -> None:
        self.client = client
        self.id: str = workflow["id"]
        self.ids: dict[str, str] = {t["key"]: t["id"] for t in workflow["tasks"]}
        self._tails, self._many = [self.ids[k] for k in tails], many

    async def get(self, wait: float | None = None) -> Json:
        wait_ms = 0 if wait is None else min(calls.MAX_WAIT_MS, int(wait * 1000))
        view: Json = await self.client._call(get_call(self.id, wait_ms))
        return view

    async def cancel(self) -> Json:
        view: Json = await self.client._call(cancel_call(self.id))
        return view

    async def result(self, timeout: float | None = None) -> Any:
        results = await asyncio.gather(*(self.client.result(i, timeout=timeout)
                                         for i in self._tails))
        return list(results) if self._many else results[0]

    def __repr__(self) -> str:
        return f"<AsyncWorkflowHandle {self.id}>"


def _submit(part: Part, client: Client | None) -> WorkflowHandle:
    from raftq.client.task import defaults

    client = client or defaults.client()
    tasks, tails, many = build(part)
    body = client._call(create_call(tasks, calls.new_id()))
    return WorkflowHandle(client, body["workflow"], tails, many)


async def _submit_async(part: Part, client: AsyncClient | None) -> AsyncWorkflowHandle:
    from raftq.client.task import defaults

    client = client or defaults.async_client()
    tasks, tails, many = build(part)
    body = await client._call(create_call(tasks, calls.new_id()))
    return AsyncWorkflowHandle(client, body["workflow"], tails, many)
