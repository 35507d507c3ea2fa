"""Listing tasks newest first with filters and a cursor (issue 10 item 7)."""

from __future__ import annotations

import pytest
from state_helpers import Harness, spec

from raftq.state import listing
from raftq.state.model import Status


def harness_with(n: int, per_ms: int = 7) -> Harness:
    """``n`` tasks t0..t{n-1}, ``per_ms`` of them created in each millisecond (ties
    in created_ms are the hard case for a cursor)."""
    h = Harness()
    for i in range(n):
        name = "mail" if i % 3 == 0 else "add"
        h.now_ms = 1_000_000 + i // per_ms
        h.submit(spec(f"t{i}", name=name))
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


def test_a_cursor_whose_task_is_gone_continues_after_it() -> None:
    h = harness_with(20, per_ms=1)
    first, cursor = listing.page(h.state, limit=5)
    assert first[-1] == "t15" and cursor is not None
    h.cancel("t15")
    h.state._drop(h.state.tasks["t15"])  # as a result TTL would
    rest = [i for p in all_pages(h, limit=5) for i in p]
    second, _ = listing.page(h.state, limit=5, cursor=cursor)
    assert second == ["t14", "t13", "t12", "t11", "t10"]
    assert "t15" not in rest


@pytest.mark.parametrize("bad", ["", "abc", "12", ":x", "x:y"])
def test_bad_cursors_are_refused(bad: str) -> None:
    with pytest.raises(listing.BadCursor):
        listing.decode_cursor(bad)
