"""The ``@task`` decorator, the task registry and the default client behind ``.delay()``.

``@task`` registers a function (sync or ``async def``) under a name in a
``Registry`` (the process-wide ``default_registry`` unless one is given) and returns a
``TaskFunction``: calling it runs the function here and now, while
``.delay()``, ``.submit()`` and ``await .delay_async()`` submit it to the
cluster. The worker runtime looks tasks up by name in the same registry.

Which cluster ``.delay()`` talks to is decided on first use, never at import:
``raftq.configure(nodes=...)`` if it was called, else ``RAFTQ_NODES``, else the
local defaults.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from raftq import errors
from raftq.client.asyncclient import AsyncClient, AsyncTaskHandle
from raftq.client.batching import Pipeline
from raftq.client.canvas import Signature
from raftq.client.schedules import schedule_body
from raftq.client.sync import Client, TaskHandle

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """Per-task submission defaults; ``None`` leaves the node's default."""

    queue: str = "default"
    priority: str | int = "normal"
    max_attempts: int | None = None
    timeout: float | None = None
    retry_backoff: float | None = None
    rate_limit: tuple[int, int] | None = None  # (starts, per ms), for the limit task:{name}


_RATE_UNITS = {"s": 1_000, "m": 60_000, "h": 3_600_000}


def parse_rate(text: str) -> tuple[int, int]:
    """``"100/s"``, ``"10/m"``, ``"5/h"`` or ``"3/10s"`` as (starts, per milliseconds)."""
    count, _, per = text.partition("/")
    unit = per[-1:]
    amount = per[:-1] or "1"
    if not count.isdigit() or int(count) < 1 or unit not in _RATE_UNITS \
            or not amount.isdigit() or int(amount) < 1:
        raise ValueError(f"rate_limit {text!r} is not like 100/s, 10/m, 5/h or 3/10s")
    return int(count), int(amount) * _RATE_UNITS[unit]


@dataclass(frozen=True, slots=True)
class Periodic:
    """A schedule declared on a task (``@task(cron=...)`` or ``every=``): its id, the
    arguments of each run and the options of ``raftq.client.schedules.schedule_body``."""

    id: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)


class TaskFunction(Generic[P, R]):
    """A registered task. Call it to run it locally; ``delay`` it to run it on a worker."""

    def __init__(self, fn: Callable[P, R], name: str, options: TaskOptions,
                 defaults: Defaults, periodic: Periodic | None = None) -> None:
        self.fn = fn
        self.name = name
        self.options = options
        self.periodic = periodic
        self.is_async = inspect.iscoroutinefunction(fn)
        self._defaults = defaults
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", name)
        self.__qualname__ = getattr(fn, "__qualname__", name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<task {self.name!r} ({self.__module__}.{self.__qualname__})>"

    def _submit_kwargs(self, queue: str | None, priority: str | int | None,
                       delay: float | None, id: str | None) -> dict[str, Any]:
        opts = self.options
        return {
            "queue": queue or opts.queue,
            "priority": opts.priority if priority is None else priority,
            "delay": delay,
            "id": id,
            "max_attempts": opts.max_attempts,
            "timeout": opts.timeout,
            "retry_backoff": opts.retry_backoff,
        }

    def s(self, *args: Any, **kwargs: Any) -> Signature:
        """This call as a signature for the canvas (``chain``, ``group``, ``chord``;
        see ``raftq.client.canvas``), with the task's defaults."""
        opts = {k: v for k, v in self._submit_kwargs(None, None, None, None).items()
                if v is not None}
        return Signature(self.name, args, kwargs, opts)

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> TaskHandle:
        """Submit ``self(*args, **kwargs)`` with the task's defaults."""
        return self._defaults.client().submit(self.name, args, kwargs,
                                              **self._submit_kwargs(None, None, None, None))

    def submit(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        priority: str | int | None = None,
        queue: str | None = None,
        delay: float | None = None,
        id: str | None = None,
        client: Client | None = None,
    ) -> TaskHandle:
        """Submit with explicit options (``delay`` in seconds, ``id`` for idempotency)."""
        return (client or self._defaults.client()).submit(
            self.name, args, kwargs, **self._submit_kwargs(queue, priority, delay, id))

    def delay_many(self, arg_lists: Iterable[Sequence[Any]], *,
                   client: Client | None = None) -> list[TaskHandle]:
        """Submit ``self(*args)`` for each ``args`` of ``arg_lists`` with the task's
        defaults, 1,000 per batch request, in order; the handles come back once
        every task is committed. (Keyword arguments: ``Client.submit_many``.)"""
        return (client or self._defaults.client()).submit_many(self._many(arg_lists))

    async def delay_many_async(self, arg_lists: Iterable[Sequence[Any]], *,
                               client: AsyncClient | None = None) -> list[AsyncTaskHandle]:
        """``delay_many`` for coroutines."""
        return await (client or self._defaults.async_client()).submit_many(
            self._many(arg_lists))

    def _many(self, arg_lists: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        options = self._submit_kwargs(None, None, None, None)
        return [{"name": self.name, "args": args, **options} for args in arg_lists]

    async def delay_async(self, *args: P.args, **kwargs: P.kwargs) -> AsyncTaskHandle:
        """``delay`` for coroutines, through the default ``AsyncClient`` of this event loop."""
        return await self._defaults.async_client().submit(
            self.name, args, kwargs, **self._submit_kwargs(None, None, None, None))

    async def submit_async(
        self,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        priority: str | int | None = None,
        queue: str | None = None,
        delay: float | None = None,
        id: str | None = None,
        client: AsyncClient | None = None,
    ) -> AsyncTaskHandle:
        return await (client or self._defaults.async_client()).submit(
            self.name, args, kwargs, **self._submit_kwargs(queue, priority, delay, id))


class Registry:
    """Task name -> ``TaskFunction``. Registering a different function under a taken name fails."""

    def __init__(self) -> None:
        self._tasks: dict[str, TaskFunction[Any, Any]] = {}

    def add(self, fn: TaskFunction[Any, Any]) -> None:
        old = self._tasks.get(fn.name)
        # Re-importing a module (importlib.reload) re-registers the same
        # function: fine. A second function under one name is a bug.
        where = (fn.__module__, fn.__qualname__)
        if old is not None and (old.__module__, old.__qualname__) != where:
            raise errors.ConfigError(
                f"task name {fn.name!r} is taken by {old.__module__}.{old.__qualname__}; "
                f"pass @task(name=...) to {fn.__module__}.{fn.__qualname__}"
            )
        self._tasks[fn.name] = fn

    def get(self, name: str) -> TaskFunction[Any, Any] | None:
        return self._tasks.get(name)

    def names(self) -> list[str]:
        return sorted(self._tasks)

    def rate_limits(self) -> list[tuple[str, int, int]]:
        """``(task name, starts, per ms)`` of every task declared with ``rate_limit``."""
        return [(name, *fn.options.rate_limit) for name, fn in sorted(self._tasks.items())
                if fn.options.rate_limit is not None]

    def schedules(self) -> list[tuple[str, str, Periodic]]:
        """``(schedule id, task name, Periodic)`` of every task declared with a schedule."""
        return [(fn.periodic.id, name, fn.periodic) for name, fn in sorted(self._tasks.items())
                if fn.periodic is not None]

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


@dataclass
class Defaults:
    """Where ``.delay()`` submits: set by ``configure``, clients made on first use."""

    nodes: Sequence[str] | str | None = None
    timeout: float = 10.0
    api_key: str | None = None
    ca_file: str | None = None
    _client: Client | None = None
    _async_clients: dict[int, tuple[asyncio.AbstractEventLoop, AsyncClient]] = field(
        default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, nodes: Sequence[str] | str | None, timeout: float,
                  api_key: str | None = None, ca_file: str | None = None) -> None:
        with self._lock:
            self.nodes, self.timeout = nodes, timeout
            self.api_key, self.ca_file = api_key, ca_file
            if self._client is not None:
                self._client.close()
            self._client = None
            self._async_clients.clear()

    def client(self) -> Client:
        with self._lock:
            if self._client is None:
                self._client = Client(self.nodes, timeout=self.timeout, api_key=self.api_key,
                                      ca_file=self.ca_file)
            return self._client

    def async_client(self) -> AsyncClient:
        # An AsyncClient's connections belong to one event loop: one client per loop.
        loop = asyncio.get_running_loop()
        with self._lock:
            entry = self._async_clients.get(id(loop))
            if entry is None or entry[0] is not loop:
                for key, (old_loop, _) in list(self._async_clients.items()):
                    if old_loop.is_closed():
                        del self._async_clients[key]
                entry = (loop, AsyncClient(self.nodes, timeout=self.timeout, api_key=self.api_key,
                                      ca_file=self.ca_file))
                self._async_clients[id(loop)] = entry
            return entry[1]


# Process-wide, but inert: nothing is read or opened until first use.
default_registry = Registry()
defaults = Defaults()


def configure(nodes: Sequence[str] | str | None = None, *, timeout: float = 10.0,
              api_key: str | None = None, ca_file: str | None = None) -> None:
    """Choose the cluster that ``.delay()`` and friends submit to, and the API key
    (default ``RAFTQ_API_KEY``) and CA file (default ``RAFTQ_CA_FILE``) to use."""
    defaults.configure(nodes, timeout, api_key, ca_file)


def pipeline() -> Pipeline:
    """``with raftq.pipeline():`` the ``.delay()`` calls of this thread inside the
    block go as batch requests when it ends (``Client.pipeline`` of the default
    client)."""
    return defaults.client().pipeline()


@overload
def task(fn: Callable[P, R], /) -> TaskFunction[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    queue: str = "default",
    priority: str | int = "normal",
    max_attempts: int | None = None,
    timeout: float | None = None,
    retry_backoff: float | None = None,
    registry: Registry | None = None,
    cron: str | None = None,
    every: float | None = None,
    timezone: str | None = None,
    schedule: Mapping[str, Any] | None = None,
    rate_limit: str | None = None,
) -> Callable[[Callable[P, R]], TaskFunction[P, R]]: ...


def task(
    fn: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    queue: str = "default",
    priority: str | int = "normal",
    max_attempts: int | None = None,
    timeout: float | None = None,
    retry_backoff: float | None = None,
    registry: Registry | None = None,
    cron: str | None = None,
    every: float | None = None,
    timezone: str | None = None,
    schedule: Mapping[str, Any] | None = None,
    rate_limit: str | None = None,
) -> TaskFunction[P, R] | Callable[[Callable[P, R]], TaskFunction[P, R]]:
    """Register a function as a task: ``@task`` or ``@task(name=..., queue=..., ...)``.

    ``timeout`` and ``retry_backoff`` are seconds. The name defaults to the
    function's ``__name__``.

    ``cron="0 * * * *"`` (with ``timezone=``) or ``every=`` seconds also declares a
    schedule for the task, which ``raftq schedules sync --app M`` (or
    ``Registry.schedules``) puts to the cluster. ``schedule`` holds its other
    options: ``id`` (default: the task's name), ``args``, ``kwargs``, and those of
    ``raftq.client.schedules.schedule_body`` (``overlap``, ``catchup``, ``jitter``,
    ``expires``, ...).

    ``rate_limit="100/s"`` (or ``10/m``, ``5/h``, ``3/10s``) declares the rate limit
    ``task:{name}``, cluster-wide, which ``raftq limits sync --app M`` (an admin's
    call) puts to the cluster (see docs/flow-control.md).
    """
    options = TaskOptions(queue, priority, max_attempts, timeout, retry_backoff,
                          parse_rate(rate_limit) if rate_limit is not None else None)
    target = registry if registry is not None else default_registry
    if (cron is None) == (every is None) and (cron, every, timezone, schedule) != (
            None, None, None, None):
        raise TypeError("a periodic task takes cron= or every= (exactly one)")

    def wrap(f: Callable[P, R]) -> TaskFunction[P, R]:
        if not callable(f):
            raise TypeError("@task decorates a function")
        task_name = name or f.__name__
        periodic = None
        if cron is not None or every is not None:
            extra = dict(schedule or {})
            periodic = Periodic(
                str(extra.pop("id", task_name)), tuple(extra.pop("args", ())),
                dict(extra.pop("kwargs", {})),
                {"cron": cron, "every": every, "timezone": timezone, "queue": queue,
                 "priority": priority, "max_attempts": max_attempts, "timeout": timeout,
                 "retry_backoff": retry_backoff, **extra})
            schedule_body(task_name, periodic.args, periodic.kwargs, **periodic.options)
        wrapped = TaskFunction(f, task_name, options, defaults, periodic)
        target.add(wrapped)
        return wrapped

    return wrap(fn) if fn is not None else wrap
