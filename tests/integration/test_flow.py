"""Flow control on a real cluster with real workers: tenants take turns, a paused
queue and a full queue behave as documented (docs/flow-control.md), unique keys,
explain; and (marked ``heavy``, run by ``make flow-heavy``) a 100,000-task backlog
that does not hold other tenants back and a 50/s rate limit held over 20 s by 4
workers."""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from workerkit import Workers, shared_cluster, wait_for  # noqa: F401

from raftq import Client
from raftq.errors import QueueFull
from raftq.local.cluster import LocalCluster


@pytest.fixture(scope="module")
def client(shared_cluster: LocalCluster) -> Iterator[Client]:  # noqa: F811
    with Client(shared_cluster.http_urls, timeout=60) as c:
        yield c


@pytest.fixture
def kit(tmp_path: Path, shared_cluster: LocalCluster) -> Iterator[Workers]:  # noqa: F811
    workers = Workers(tmp_path, shared_cluster.http_urls)
    yield workers
    workers.stop_all()


def submit_all(client: Client, queue: str, keys: list[str], tenant: str,
               **extra: object) -> None:
    client.submit_many([{"name": "record", "args": [k], "queue": queue, "tenant": tenant,
                         **extra} for k in keys])


def starts(kit: Workers) -> list[str]:
    return [key for key, _, event in kit.runs() if event == "run"]


def backlog_then_others(client: Client, kit: Workers, queue: str, backlog: int,
                        each: int, concurrency: int) -> tuple[int, int]:
    """Tenant A submits ``backlog`` tasks, then B..K ``each``; one worker runs them. The
    A tasks started between the others' submission and the last of theirs starting,
    and how many of the others there were."""
    submit_all(client, queue, [f"A-{i}" for i in range(backlog)], "A")
    others = [f"{t}-{i}" for t in "BCDEFGHIJK" for i in range(each)]
    kit.start("--queues", queue, "--concurrency", str(concurrency), "--prefetch", "0")
    wait_for(lambda: len(starts(kit)) >= 50, timeout=120, what="A running")
    before = len(starts(kit))
    for tenant in "BCDEFGHIJK":
        submit_all(client, queue, [k for k in others if k[0] == tenant], tenant)
    wanted = set(others)
    wait_for(lambda: wanted <= set(starts(kit)), timeout=600, what="B..K all started")
    order = starts(kit)
    last = max(i for i, key in enumerate(order) if key in wanted)
    return sum(1 for key in order[before:last] if key.startswith("A-")), len(others)


def test_a_backlog_does_not_hold_other_tenants_back(client: Client, kit: Workers) -> None:
    a_ran, others = backlog_then_others(client, kit, "flow-fair", 3_000, 20, 4)
    # one A task per round of the 10 other tenants, plus what was claimed or
    # running when they arrived (a claim takes up to the worker's concurrency)
    assert a_ran <= others // 10 + 20, a_ran


def test_a_paused_queue_is_not_claimed_from_until_resumed(client: Client,
                                                          kit: Workers) -> None:
    client.set_queue("flow-paused", paused=True)
    handle = client.submit("record", ["paused-1"], queue="flow-paused")
    kit.start("--queues", "flow-paused,flow-open")
    client.submit("record", ["open-1"], queue="flow-open").result(timeout=60)
    assert handle.get()["status"] == "queued"  # the worker claims, but not from it
    codes = [r["code"] for r in client.explain(handle.id)["reasons"]]
    assert "paused" in codes
    assert client.set_queue("flow-paused", paused=False)["paused"] is False
    assert handle.result(timeout=60) == "paused-1"


def test_a_full_queue_refuses_with_429_and_retry_after(client: Client,
                                                       shared_cluster: LocalCluster) -> None:  # noqa: F811
    client.set_queue("flow-full", max_queued=2)
    client.submit_many([{"name": "record", "args": [f"f{i}"], "queue": "flow-full"}
                        for i in range(2)])
    with pytest.raises(QueueFull):
        client.submit("record", ["f2"], queue="flow-full")
    req = urllib.request.Request(
        shared_cluster.http_urls[0] + "/v1/tasks", method="POST",
        data=b'{"name": "record", "queue": "flow-full"}',
        headers={"Content-Type": "application/json",
                 "Authorization": f"Bearer {os.environ['RAFTQ_API_KEY']}"})
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=30)
    assert caught.value.code == 429 and caught.value.headers["Retry-After"] == "1"
    assert client.queues()["flow-full"]["queued"] == 2  # nothing of the refused created
    client.set_queue("flow-full", max_queued=0)
    assert client.submit("record", ["f3"], queue="flow-full").created


def test_a_held_unique_key_returns_the_holder(client: Client) -> None:
    first = client.submit("record", ["u1"], queue="flow-unique", unique_key="report-7")
    again = client.submit("record", ["u2"], queue="flow-unique", unique_key="report-7")
    assert first.created and not again.created and again.id == first.id


def test_explain_names_a_rate_limit_without_room(client: Client) -> None:
    client.set_rate_limit("flow-explain", 1, per=3600)
    handles = [client.submit("record", [f"e{i}"], queue="flow-explain", rate_key="flow-explain")
               for i in range(2)]
    kit_less = client.explain(handles[1].id)
    assert kit_less["limits"][0]["key"] == "flow-explain"
    assert "no_worker" in [r["code"] for r in kit_less["reasons"]]
    assert "rate_limit" not in [r["code"] for r in kit_less["reasons"]]  # room for one
    # one start uses the room; the claim stops at its max before the second task, so
    # only the replicated clock says it waits: explain names the key all the same
    [first] = client.claim("flow-explain-probe", ["flow-explain"], 1)
    assert first["id"] == handles[0].id
    why = wait_for(lambda: [r for r in client.explain(handles[1].id)["reasons"]
                            if r["code"] == "rate_limit"], what="the rate limit named")
    assert why[0]["limit"]["key"] == "flow-explain" and why[0]["limit"]["room"] == 0


@pytest.mark.heavy
def test_a_100000_task_backlog_lets_10_tenants_start_first(client: Client,
                                                          kit: Workers) -> None:
    started = time.monotonic()
    a_ran, others = backlog_then_others(client, kit, "flow-heavy", 100_000, 100, 8)
    print(f"\n100,000 A then B..K x100: A ran {a_ran} while the {others} others all started "
          f"({time.monotonic() - started:.0f} s)")
    assert a_ran < 2_000


@pytest.mark.heavy
def test_a_rate_limit_of_50_per_s_holds_over_20_s_with_4_workers(client: Client,
                                                                 kit: Workers) -> None:
    client.set_rate_limit("flow-50", 50, per=1.0, burst=5)
    submit_all(client, "flow-rate", [f"r{i}" for i in range(1_600)], "", rate_key="flow-50")
    for _ in range(4):
        kit.start("--queues", "flow-rate", "--concurrency", "8")
    wait_for(lambda: len(starts(kit)) >= 100, timeout=60, what="the first starts")
    t0 = min(at for _, _, event, at in kit.timed_runs() if event == "run") + 2.0
    wait_for(lambda: any(at > t0 + 20 for _, _, e, at in kit.timed_runs() if e == "run"),
             timeout=60, what="20 s of starts")
    n = sum(1 for _, _, event, at in kit.timed_runs() if event == "run" and t0 <= at < t0 + 20)
    print(f"\n50/s limit, 4 workers: {n} starts in 20 s = {n / 20:.2f}/s")
    assert abs(n / 20 - 50) <= 2.5, n
