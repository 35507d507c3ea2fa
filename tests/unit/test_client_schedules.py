"""The clients' schedule calls: the PUT body from Python arguments, @task(cron=...)."""

from __future__ import annotations

import datetime as dt

import pytest
from fake_node import FakeNode

from raftq import errors
from raftq.client import calls
from raftq.client.schedules import schedule_body
from raftq.client.sync import Client
from raftq.client.task import Registry, task


def test_seconds_become_ms_and_task_fields_go_in_the_task() -> None:
    body = schedule_body("report", [1], {"a": 2}, every=1.5, queue="q", priority="high",
                         expires=60, timeout=2, catchup_window=30, jitter=0.25,
                         start=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), end=1_800_000_000,
                         overlap="allow", paused=None)
    assert body == {
        "task": {"name": "report", "args": [1], "kwargs": {"a": 2}, "queue": "q",
                 "priority": "high", "expires_ms": 60_000, "timeout_ms": 2_000},
        "every_ms": 1_500, "catchup_window_ms": 30_000, "jitter_ms": 250,
        "start_ms": 1_767_225_600_000, "end_ms": 1_800_000_000_000, "overlap": "allow",
    }
    with pytest.raises(TypeError, match="colour"):
        schedule_body("x", colour="red")
    with pytest.raises(errors.InvalidRequest) as info:
        schedule_body("x", every="often")
    assert info.value.field == "every"


def test_a_periodic_task_declares_its_schedule() -> None:
    registry = Registry()

    @task(cron="0 3 * * *", timezone="Europe/Berlin", queue="reports", registry=registry)
    def nightly() -> None: ...

    @task(every=60, registry=registry, schedule={"id": "ping-1", "args": [1], "jitter": 5})
    def ping(n: int) -> int:
        return n

    @task(registry=registry)
    def plain() -> None: ...

    got = {sid: (name, schedule_body(name, p.args, p.kwargs, **p.options))
           for sid, name, p in registry.schedules()}
    assert got == {
        "nightly": ("nightly", {"task": {"name": "nightly", "args": [], "kwargs": {},
                                         "queue": "reports", "priority": "normal"},
                                "cron": "0 3 * * *", "timezone": "Europe/Berlin"}),
        "ping-1": ("ping", {"task": {"name": "ping", "args": [1], "kwargs": {},
                                     "queue": "default", "priority": "normal"},
                            "every_ms": 60_000, "jitter_ms": 5_000}),
    }
    assert ping(3) == 3  # still a plain function when called
    with pytest.raises(TypeError, match="exactly one"):
        task(cron="* * * * *", every=5, registry=registry)
    with pytest.raises(TypeError, match="exactly one"):
        task(timezone="UTC", registry=registry)
    with pytest.raises(TypeError, match="unknown schedule option"):
        task(every=5, registry=registry, schedule={"colour": "red"})(lambda: None)


def test_the_client_calls_the_schedule_routes() -> None:
    node = FakeNode(default=(200, {"schedule": {"id": "s"}, "schedules": [], "task": {"id": "t"},
                                   "created": True, "changed": True}))
    try:
        client = Client([node.url])
        client.put_schedule("s/1", "report", every=60)
        client.schedules()
        client.schedule("s")
        client.pause_schedule("s")
        client.resume_schedule("s")
        assert client.trigger_schedule("s") == {"id": "t"}
        client.delete_schedule("s")
        client.close()
    finally:
        node.close()
    assert [(r["method"], r["path"]) for r in node.requests] == [
        ("PUT", "/v1/schedules/s%2F1"), ("GET", "/v1/schedules"), ("GET", "/v1/schedules/s"),
        ("POST", "/v1/schedules/s/pause"), ("POST", "/v1/schedules/s/resume"),
        ("POST", "/v1/schedules/s/trigger"), ("DELETE", "/v1/schedules/s"),
    ]
    assert node.requests[0]["body"]["every_ms"] == 60_000
    assert "Idempotency-Key" not in node.requests[0]["headers"]  # a repeated PUT is a no-op


def test_a_submission_can_expire() -> None:
    spec = calls.task_spec({"name": "x", "expires": 1.5, "expires_at": 1_800_000_000})
    assert (spec["expires_ms"], spec["expires_at_ms"]) == (1_500, 1_800_000_000_000)
