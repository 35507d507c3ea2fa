"""Listing tasks newest first with filters and a cursor (issue 10 item 7)."""

from __future__ import annotations

import pytest
from state_helpers import Harness, spec

from raftq.state import commands as c
from raftq.state import listing
from raftq.state.model import Status


def harness_with(n: int, per_ms: int = 7) -> Harness:
    """``n`` tasks t0..t{n-1}, ``per_ms`` of them created in each millisecond (ties
    in created_ms are the hard case for a cursor)."""
    h = Harness()
    for i in range(n):
        if i and i % per_ms == 0:
            h.tick(1)  # the replicated clock moves only by the leader's ticks
        h.submit(spec(f"t{i}", name="mail" if i % 3 == 0 else "add"))
    return h


def all_pages(h: Harness, **filters: object) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        ids, cursor = listing.page(h.state, cursor=cursor, **filters)  # type: ignore[arg-type]
        pages.append(ids)
        if cursor is None:
            return pages


def test_newest_first_and_the_newest_of_1100_is_on_the_first_page() -> None:
    h = harness_with(1_100)
    ids, cursor = listing.page(h.state, limit=100)
    assert ids == [f"t{i}" for i in range(1_099, 999, -1)]
    assert cursor is not None


def test_pages_cover_every_task_once_in_order() -> None:
    h = harness_with(1_100)
    pages = all_pages(h, limit=250)
    assert [len(p) for p in pages] == [250, 250, 250, 250, 100]
    assert [i for p in pages for i in p] == [f"t{i}" for i in range(1_099, -1, -1)]


def test_a_page_that_ends_exactly_at_the_last_task_has_no_cursor() -> None:
    h = harness_with(10)
    assert listing.page(h.state, limit=10) == ([f"t{i}" for i in range(9, -1, -1)], None)


def test_filters_by_name_status_and_queue() -> None:
    h = harness_with(30)
    names = [i for p in all_pages(h, name="mail", limit=4) for i in p]
    assert names == [f"t{i}" for i in range(27, -1, -3)]
    h.cancel("t29")
    assert listing.page(h.state, status=Status.CANCELLED) == (["t29"], None)
    assert listing.page(h.state, queue="other") == ([], None)


@pytest.mark.parametrize("per_ms", [1, 7, 1_000])
def test_a_cursor_whose_task_is_gone_continues_after_it(per_ms: int) -> None:
    h = harness_with(20, per_ms=per_ms)
    first, cursor = listing.page(h.state, limit=5)
    assert first[-1] == "t15" and cursor is not None
    h.state._drop(h.state.tasks["t15"])  # as a result TTL would
    second, _ = listing.page(h.state, limit=5, cursor=cursor)
    assert second == ["t14", "t13", "t12", "t11", "t10"]


@pytest.mark.parametrize("per_ms", [7, 1_000])
def test_pages_within_one_millisecond_cover_every_task_once(per_ms: int) -> None:
    h = harness_with(50, per_ms=per_ms)
    pages = all_pages(h, limit=3)
    assert [i for p in pages for i in p] == [f"t{i}" for i in range(49, -1, -1)]
    names = [i for p in all_pages(h, name="add", limit=4) for i in p]
    assert names == [f"t{i}" for i in range(49, -1, -1) if i % 3]


@pytest.mark.parametrize("bad", ["", "abc", "12", ":x", "x:y", "12:x", "12:0:x", "12:1:"])
def test_bad_cursors_are_refused(bad: str) -> None:
    with pytest.raises(listing.BadCursor):
        listing.decode_cursor(bad)


def test_filters_by_tenant_alone_and_with_status_and_queue() -> None:
    h = Harness()
    for i in range(12):
        s = spec(f"t{i}", queue="q2" if i % 2 else "default")
        s.tenant = ("acme", "zeta", "")[i % 3]
        h.submit(s)
    h.cancel("t6")
    acme = [f"t{i}" for i in range(11, -1, -1) if i % 3 == 0]
    assert [i for p in all_pages(h, tenant="acme", limit=2) for i in p] == acme
    assert listing.page(h.state, tenant="acme", queue="q2") == (["t9", "t3"], None)
    assert listing.page(h.state, tenant="acme", status=Status.CANCELLED) == (["t6"], None)
    assert listing.page(h.state, tenant="acme", status=Status.QUEUED, queue="default") == (
        ["t0"], None)
    assert listing.page(h.state, tenant="nobody") == ([], None)
    assert h.state.tasks["t6"].tenant == "acme"  # the filter reads the task's own tenant


def with_workflows(n: int, per_ms: int = 3) -> Harness:
    """Workflows w0..w{n-1} of two tasks each (a then b), ``per_ms`` made in each
    millisecond."""
    h = Harness()
    for i in range(n):
        if i and i % per_ms == 0:
            h.tick(1)
        h.run(c.Linked([spec(f"w{i}-a"), spec(f"w{i}-b")], [c.Deps([]), c.Deps([f"w{i}-a"])],
                       f"w{i}", ["a", "b"]))
    return h


def test_workflows_newest_first_a_page_at_a_time() -> None:
    h = with_workflows(10)
    pages, cursor = [], None
    while True:
        ids, cursor = listing.workflow_page(h.state, limit=4, cursor=cursor)
        pages.append(ids)
        if cursor is None:
            break
    assert pages == [["w9", "w8", "w7", "w6"], ["w5", "w4", "w3", "w2"], ["w1", "w0"]]


def test_workflows_by_status() -> None:
    h = with_workflows(5)
    h.run(c.CancelWorkflow("w1"))
    token = h.claim_one()  # w0-a, the oldest ready task
    h.fail("w0-a", token, retry=False)  # dead: w0 fails (w0-b is cancelled with it)
    assert listing.workflow_page(h.state, status="running") == (["w4", "w3", "w2"], None)
    assert listing.workflow_page(h.state, status="cancelled") == (["w1"], None)
    assert listing.workflow_page(h.state, status="failed") == (["w0"], None)
    assert listing.workflow_page(h.state, status="succeeded") == ([], None)


def test_a_workflow_page_whose_last_workflow_is_gone_goes_on() -> None:
    h = with_workflows(9, per_ms=9)  # all in one millisecond
    first, cursor = listing.workflow_page(h.state, limit=3)
    assert first == ["w8", "w7", "w6"] and cursor is not None
    del h.state.flows["w6"]  # as when its last task is dropped
    assert listing.workflow_page(h.state, limit=3, cursor=cursor)[0] == ["w5", "w4", "w3"]
