"""Waiting claims ride in the entry of a submit that makes work for them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from raftq.server.parking import Parking
from raftq.state.commands import Claim, Command, Submit, TaskSpec


def spec(queue: str, delay_ms: int = 0, name: str = "noop") -> TaskSpec:
    return TaskSpec(id=f"t-{queue}-{delay_ms}", name=name, queue=queue, priority=128,
                    payload=b"", delay_ms=delay_ms, eta_ms=0, max_attempts=3, timeout_ms=1000,
                    retry_backoff_ms=100, result_ttl_ms=1000)


def submit(*specs: TaskSpec) -> Command:
    return Command(Submit(list(specs)), "req", 1)


class Entry:
    """Stands in for the replica: records what was added to the next entry."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.added: list[Command] = []

    def add(self, cmd: Command) -> asyncio.Future[Any]:
        self.added.append(cmd)
        return self.loop.create_future()


@pytest.fixture
def entry() -> Iterator[Entry]:
    loop = asyncio.new_event_loop()
    yield Entry(loop)
    loop.close()


def test_a_submit_to_a_waited_queue_takes_the_claim_along_with_its_own_request_id(
        entry: Entry) -> None:
    parking = Parking(entry.add, lambda: 42)
    parked = parking.park(Claim("w1", ["a", "b"], 1, 1000), "key:3")
    parking.before_flush([submit(spec("b"))])
    assert [c.body for c in entry.added] == [parked.claim]
    assert entry.added[0].request_id == "key:3" and entry.added[0].now_ms == 42
    assert parked.future is not None
    parking.before_flush([submit(spec("b"))])  # it rode once; it is not waiting any more
    assert len(entry.added) == 1


def test_other_queues_delayed_tasks_other_commands_and_hang_ups_leave_claims_waiting(
        entry: Entry) -> None:
    parking = Parking(entry.add, lambda: 0)
    parked = parking.park(Claim("w1", ["a"], 1, 1000), "k:1")
    parking.before_flush([submit(spec("b")), submit(spec("a", delay_ms=99)),
                          Command(Claim("w2", ["a"], 1, 1000), "x", 0)])
    assert entry.added == [] and parked.future is None
    parking.leave(parked)
    parking.before_flush([submit(spec("a"))])
    assert entry.added == []  # it left
    parking.park(Claim("w3", ["a"], 1, 1000), "k:2", gone=lambda: True)
    parking.before_flush([submit(spec("a"))])
    assert entry.added == []  # its worker hung up: it must not lease anything


def test_only_as_many_claims_ride_as_there_is_new_work_oldest_first(
        entry: Entry) -> None:
    parking = Parking(entry.add, lambda: 0)
    first = parking.park(Claim("w1", ["a"], 1, 1000), "k1:1")
    second = parking.park(Claim("w2", ["a"], 1, 1000), "k2:1")
    third = parking.park(Claim("w3", ["a"], 1, 1000), "k3:1")
    parking.before_flush([submit(spec("a"), spec("a"))])
    assert [c.request_id for c in entry.added] == ["k1:1", "k2:1"]
    assert first.future is not None and second.future is not None and third.future is None


def test_a_claim_naming_task_names_rides_only_with_tasks_of_those_names(entry: Entry) -> None:
    parking = Parking(entry.add, lambda: 0)
    picky = parking.park(Claim("w1", ["a"], 1, 1000, names=["add"]), "k:1")
    parking.before_flush([submit(spec("a", name="slow"))])
    assert entry.added == [] and picky.future is None
    parking.before_flush([submit(spec("a", name="add"))])
    assert [c.body for c in entry.added] == [picky.claim]
