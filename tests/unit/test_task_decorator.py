"""Unit tests of @task, the registry and .delay() (with a recording client)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import raftq
from raftq import errors
from raftq.client.task import Defaults, Registry, TaskFunction, parse_rate, task


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any, dict[str, Any]]] = []

    def submit(self, name: str, args: Any = (), kwargs: Any = None, **kw: Any) -> str:
        self.calls.append((name, args, kwargs, kw))
        return "handle"


def test_plain_and_configured_decorators_register_and_still_run() -> None:
    reg = Registry()

    @task(registry=reg)
    def add(a: int, b: int) -> int:
        return a + b

    @task(name="custom.mul", queue="math", priority="high", max_attempts=5, timeout=2.5,
          retry_backoff=0.5, registry=reg)
    async def mul(a: int, b: int) -> int:
        return a * b

    assert isinstance(add, TaskFunction) and add(2, 3) == 5
    assert asyncio.run(mul(2, 3)) == 6 and mul.is_async and not add.is_async
    assert reg.names() == ["add", "custom.mul"] and reg.get("custom.mul") is mul
    assert add.__name__ == "add" and "custom.mul" in repr(mul)


def test_bare_decorator_uses_the_default_registry() -> None:
    @task
    def unit_test_only_task() -> str:
        return "ran"

    assert raftq.task.__module__ == "raftq.client.task"
    from raftq.client.task import default_registry

    assert default_registry.get("unit_test_only_task") is unit_test_only_task
    assert unit_test_only_task() == "ran"


def test_a_second_function_under_a_taken_name_is_refused() -> None:
    reg = Registry()

    @task(name="dup", registry=reg)
    def one() -> None: ...

    with pytest.raises(errors.ConfigError, match="taken"):
        @task(name="dup", registry=reg)
        def two() -> None: ...


def test_delay_and_submit_pass_the_task_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    reg = Registry()
    rec = Recorder()
    defaults = Defaults()
    monkeypatch.setattr(defaults, "client", lambda: rec)

    @task(queue="math", priority="high", max_attempts=5, timeout=2.5, registry=reg)
    def add(a: int, b: int = 0) -> int:
        return a + b

    add._defaults = defaults
    assert add.delay(1, b=2) == "handle"
    name, args, kwargs, kw = rec.calls[-1]
    assert (name, args, kwargs) == ("add", (1,), {"b": 2})
    assert kw["queue"] == "math" and kw["priority"] == "high" and kw["max_attempts"] == 5
    assert kw["timeout"] == 2.5 and kw["delay"] is None
    add.submit(args=[1], priority="low", delay=3, id="abc")
    kw = rec.calls[-1][3]
    assert kw["priority"] == "low" and kw["delay"] == 3 and kw["id"] == "abc"
    assert kw["queue"] == "math"


def test_configure_is_lazy_and_resets_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Defaults()
    monkeypatch.setenv("RAFTQ_NODES", "http://10.0.0.1:1")
    client = defaults.client()
    assert client.nodes == ["http://10.0.0.1:1"] and defaults.client() is client
    defaults.configure(["http://10.0.0.2:2"], timeout=3)
    assert defaults.client().nodes == ["http://10.0.0.2:2"]
    assert defaults.client().timeout == 3


def test_async_client_is_per_event_loop() -> None:
    defaults = Defaults(nodes="http://127.0.0.1:1")

    async def get() -> Any:
        return defaults.async_client()

    first = asyncio.run(get())
    second = asyncio.run(get())
    assert first is not second


def test_public_names() -> None:
    for name in ("task", "Client", "AsyncClient", "TaskFailed", "configure"):
        assert hasattr(raftq, name)


def test_a_rate_limit_is_declared_on_the_task_and_checked_at_once() -> None:
    reg = Registry()

    @task(name="mail", registry=reg, rate_limit="100/s")
    def mail() -> None: ...

    @task(name="report", registry=reg, rate_limit="3/10s")
    def report() -> None: ...

    assert reg.rate_limits() == [("mail", 100, 1_000), ("report", 3, 10_000)]
    assert parse_rate("5/h") == (5, 3_600_000) and parse_rate("10/m") == (10, 60_000)
    for bad in ("100", "0/s", "x/s", "1/d", "1/0s"):
        with pytest.raises(ValueError):
            parse_rate(bad)
