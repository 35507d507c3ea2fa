"""UNIT tests of the clients' failover and idempotent retries, against scripted fakes.

These check the client's own logic (which node next, what is resent, what is
raised) with ``fake_node.FakeNode``; the integration tests
(tests/integration/test_worker_*.py) run the same clients against real nodes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fake_node import CLOSE_AFTER, DROP, FakeNode, dead_url

from raftq import AsyncClient, Client, errors
from raftq.client import failover

TASK = {"id": "t1", "name": "add", "status": "queued"}


@pytest.fixture
def fake() -> Iterator[FakeNode]:
    node = FakeNode()
    yield node
    node.close()


def test_moves_to_the_next_node_when_one_refuses_connections(fake: FakeNode) -> None:
    fake.default = (200, {"tasks": [TASK]})
    client = Client([dead_url(), fake.url, dead_url()], retry_for=5, prefer_leader=False)
    for _ in range(3):
        assert client.list() == [TASK]
    # Sticks to the node that answered.
    assert len(fake.requests) == 3


def test_503_is_retried_with_the_same_task_id_and_one_task_results(fake: FakeNode) -> None:
    no_leader = (503, {"error": {"code": "no_leader", "message": "election"}}, {"Retry-After": "0"})
    fake.replies = [no_leader, DROP, (201, {"task": TASK, "created": True})]
    client = Client([fake.url], retry_for=5)
    handle = client.submit("add", [2, 3], priority="high")
    ids = [r["body"]["id"] for r in fake.requests]
    assert len(ids) == 3 and len(set(ids)) == 1 and handle.id == ids[0]
    assert fake.requests[0]["body"]["args"] == [2, 3]


def test_mutating_calls_resend_the_same_idempotency_key(fake: FakeNode) -> None:
    fake.replies = [DROP, (503, {"error": {"code": "outcome_unknown", "message": "?"}},
                           {"Retry-After": "0"}), (200, {"task": TASK})]
    Client([fake.url], retry_for=5).cancel("t1")
    keys = [r["headers"].get("Idempotency-Key") for r in fake.requests]
    assert len(keys) == 3 and keys[0] and len(set(keys)) == 1
    # A second logical call gets a new key.
    fake.replies = [(200, {"task": TASK})]
    Client([fake.url]).cancel("t1")
    assert fake.requests[-1]["headers"]["Idempotency-Key"] != keys[0]


def test_client_errors_are_raised_at_once_as_the_error_tree(fake: FakeNode) -> None:
    fake.default = (400, {"error": {"code": "invalid_request", "message": "bad priority",
                                    "field": "priority"}})
    with pytest.raises(errors.InvalidRequest) as info:
        Client([fake.url, fake.url], prefer_leader=False).submit("add", priority="urgent")
    assert info.value.field == "priority" and len(fake.requests) == 1
    fake.default = (409, {"error": {"code": "stale_lease", "message": "token 3 is not 4"}})
    with pytest.raises(errors.StaleLease):
        Client([fake.url]).complete("t1", 3, 5)
    before = len(fake.requests)
    fake.default = (500, {"error": {"code": "internal", "message": "see the node log"}})
    with pytest.raises(errors.InternalError):
        Client([fake.url, fake.url], prefer_leader=False).queues()
    assert len(fake.requests) == before + 1


def test_gives_up_with_unavailable_after_retry_for() -> None:
    client = Client([dead_url(), dead_url()], retry_for=0.5)
    started = time.monotonic()
    with pytest.raises(errors.Unavailable, match="did not answer"):
        client.get("t1")
    assert 0.4 < time.monotonic() - started < 3


def test_result_long_polls_and_times_out(fake: FakeNode) -> None:
    fake.default = (200, {"task": TASK})
    with pytest.raises(TimeoutError, match="still queued"):
        Client([fake.url]).result("t1", timeout=0.2)
    assert "wait_ms=" in fake.requests[0]["path"]


def test_result_raises_task_failed_with_the_remote_traceback(fake: FakeNode) -> None:
    err = {"type": "ValueError", "message": "boom", "traceback": "Traceback...\nValueError: boom"}
    dead = dict(TASK, status="dead", errors=[{"attempt": 1, "at_ms": 1, "error": err}])
    fake.default = (200, {"task": dead})
    with pytest.raises(errors.TaskFailed) as info:
        Client([fake.url]).result("t1", timeout=1)
    assert info.value.remote_traceback.endswith("ValueError: boom")
    assert "ValueError: boom" in str(info.value) and info.value.task_status == "dead"


def test_submit_many_sends_chunks_of_1000_in_order(fake: FakeNode) -> None:
    def reply_for_all() -> None:
        fake.replies = [(200, {"results": [{"task": {"id": str(i)}, "created": True}
                                           for i in range(n)]}) for n in (1000, 1000, 500)]

    reply_for_all()
    handles = Client([fake.url]).submit_many([{"name": "noop", "args": [i]} for i in range(2500)])
    sizes = [len(r["body"]["tasks"]) for r in fake.requests]
    assert sizes == [1000, 1000, 500]
    sent = [t["id"] for r in fake.requests for t in r["body"]["tasks"]]
    assert [h.id for h in handles] == sent and len(set(sent)) == 2500
    assert fake.requests[1]["body"]["tasks"][0]["args"] == [1000]


def test_async_client_fails_over_and_keeps_its_ids(fake: FakeNode) -> None:
    fake.replies = [DROP, (201, {"task": TASK, "created": True})]

    async def main() -> list[str]:
        async with AsyncClient([dead_url(), fake.url], retry_for=5,
                               prefer_leader=False) as client:
            handle = await client.submit("add", [1, 2])
            return [handle.id]

    (task_id,) = asyncio.run(main())
    assert [r["body"]["id"] for r in fake.requests] == [task_id, task_id]


def test_async_claim_is_retried_with_the_same_body(fake: FakeNode) -> None:
    fake.replies = [(503, {"error": {"code": "no_leader", "message": ""}}, {"Retry-After": "0"}),
                    (200, {"tasks": []})]

    async def main() -> None:
        async with AsyncClient([fake.url], retry_for=5) as client:
            assert await client.claim("w1", ["default"], 5, wait_ms=10, host="h", pid=1) == []

    asyncio.run(main())
    assert len(fake.requests) == 2 and fake.requests[0]["body"] == fake.requests[1]["body"]
    assert fake.requests[0]["body"] == {"worker_id": "w1", "queues": ["default"], "max": 5,
                                        "lease_ms": 30000, "wait_ms": 10, "host": "h", "pid": 1}


def test_a_kept_alive_connection_the_node_closed_is_replaced_not_counted_as_a_failure(
    fake: FakeNode,
) -> None:
    fake.replies = [CLOSE_AFTER, (200, {"queues": {}})]
    client = Client([fake.url], retry_for=0)  # any failure would raise at once
    assert client.cluster() == {}
    assert client.queues() == {}  # its kept-alive connection was closed under it
    assert len(fake.requests) == 2


def test_a_node_with_a_full_disk_is_skipped_for_the_next_one() -> None:
    full, ok = FakeNode(), FakeNode()
    try:
        full.default = (507, {"error": {"code": "insufficient_storage", "message": "disk full"}},
                        {"Retry-After": "1"})
        ok.default = (201, {"task": TASK, "created": True})
        client = Client([full.url, ok.url], retry_for=5, prefer_leader=False)
        client._failover.current = 0  # start at the full node
        handle = client.submit("add", [1])
        assert len(full.requests) == 1 and len(ok.requests) == 1
        assert ok.requests[0]["body"]["id"] == handle.id == full.requests[0]["body"]["id"]
        # Every node full: the caller gets InsufficientStorage once retry_for is spent.
        with pytest.raises(errors.InsufficientStorage, match="disk full"):
            Client([full.url], retry_for=0.3).submit("add", [2])
    finally:
        full.close()
        ok.close()


def cluster_view(leader: str, addresses: dict[str, str]) -> dict[str, Any]:
    return {"leader": leader, "nodes": [{"id": i, "http_address": a}
                                        for i, a in addresses.items()]}


def test_leader_index_matches_the_leaders_http_address() -> None:
    nodes = ["http://10.0.0.1:8101", "http://10.0.0.2:8101", "https://u@h3:443/base"]
    view = cluster_view("n2", {"n1": "10.0.0.1:8101", "n2": "10.0.0.2:8101"})
    assert failover.leader_index(nodes, view) == 1
    assert failover.leader_index(nodes, cluster_view("n3", {"n3": "h3:443"})) == 2
    # Listening on all addresses: the port decides, when only one node has it.
    assert failover.leader_index(["http://a:1", "http://a:2"],
                                 cluster_view("x", {"x": "0.0.0.0:2"})) == 1
    assert failover.leader_index(nodes, cluster_view("n1", {"n1": "0.0.0.0:8101"})) is None
    for no in (None, {}, {"leader": None, "nodes": []}, cluster_view("n9", {"n1": "a:1"}),
               cluster_view("n1", {"n1": "elsewhere:8101"})):
        assert failover.leader_index(nodes, no) is None


def test_the_client_finds_the_leader_and_sends_to_it() -> None:
    follower, leader = FakeNode(), FakeNode()
    try:
        addresses = {"f": follower.url.removeprefix("http://"),
                     "l": leader.url.removeprefix("http://")}
        view = (200, cluster_view("l", addresses))
        follower.replies = [view]
        leader.replies = [view]
        leader.default = (201, {"task": TASK, "created": True})
        client = Client([follower.url, leader.url])
        client._failover.current = 0  # start at the follower
        for _ in range(3):
            client.submit("add", [1, 2])
        assert [r["path"] for r in follower.requests] == ["/v1/cluster"]
        assert [r["path"] for r in leader.requests] == ["/v1/tasks"] * 3

        # The leader goes away: the client fails over, then asks again.
        leader.default = DROP  # its kept-alive connection too
        leader.close()
        follower.replies = [(201, {"task": TASK, "created": True}),
                            (200, cluster_view("f", addresses))]
        follower.default = (201, {"task": TASK, "created": True})
        client.submit("add", [1, 2])
        client.submit("add", [1, 2])
        assert [r["path"] for r in follower.requests] == [
            "/v1/cluster", "/v1/tasks", "/v1/cluster", "/v1/tasks"]
    finally:
        follower.close()


def test_a_node_that_cannot_tell_the_leader_changes_nothing(fake: FakeNode) -> None:
    fake.replies = [(404, {"error": {"code": "not_found", "message": "old node"}})]
    fake.default = (200, {"tasks": []})
    client = Client([fake.url, fake.url])
    assert client.list() == [] and client.list() == []
    assert [r["path"] for r in fake.requests] == ["/v1/cluster", "/v1/tasks?limit=100",
                                                  "/v1/tasks?limit=100"]


def members_view(leader: str, urls: dict[str, str], epoch: int) -> dict[str, Any]:
    return {"leader": leader, "member_epoch": epoch, "nodes": [
        {"id": i, "http_address": u.removeprefix("http://"), "http_url": u}
        for i, u in urls.items()]}


def test_a_client_given_one_node_learns_the_members_and_follows_them() -> None:
    first, second, third = FakeNode(), FakeNode(), FakeNode()
    try:
        created = (201, {"task": TASK, "created": True}, {"X-Raftq-Members": "1"})
        first.replies = [created, (200, members_view(
            "n1", {"n1": first.url, "n2": second.url}, 1))]
        first.default = created
        client = Client([first.url], retry_for=5)
        client.submit("add", [1])  # its answer announces membership epoch 1
        client.submit("add", [2])  # so the client asks for the view first
        assert [r["path"] for r in first.requests] == ["/v1/tasks", "/v1/cluster", "/v1/tasks"]
        assert client._failover.nodes == [first.url, second.url]

        # The first node goes away; the client carries on with the second, which
        # announces a newer membership: the third node instead of the first.
        first.default = DROP
        first.close()
        newer = (201, {"task": TASK, "created": True}, {"X-Raftq-Members": "3"})
        second.replies = [newer, (200, members_view(
            "n2", {"n2": second.url, "n3": third.url}, 3))]
        second.default = newer
        client.submit("add", [3])
        client.submit("add", [4])
        assert client._failover.nodes == [second.url, third.url]
        assert client._failover.members_epoch == 3
        # An older view (a stale node) does not undo it; an answer from behind a
        # proxy (the asked URL is not a member's) changes nothing either.
        client._failover.members_seen(members_view("n1", {"n1": first.url}, 2))
        client._failover.members_seen(members_view("n9", {"n9": "http://elsewhere:1"}, 9))
        assert client._failover.nodes == [second.url, third.url]
    finally:
        for node in (first, second, third):
            node.close()
