"""What a proposal resolves to: the entry that carries it, PySyncObj's failure
reasons as raftq errors, and the error of a proposal that timed out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from pysyncobj import FAIL_REASON

from raftq.errors import NoLeader, OutcomeUnknown, Overloaded


@dataclass(slots=True)
class Entry:
    """One proposed Raft entry and the futures of the commands inside it."""

    futures: list[asyncio.Future[Any]]
    started: float
    done: bool = False
    timer: asyncio.TimerHandle | None = None


def expire(fut: asyncio.Future[Any]) -> None:
    if not fut.done():
        fut.set_exception(OutcomeUnknown(
            "the proposal was not confirmed in time; it may or may not have been applied: "
            "retry with the same ids"))


def failure(error: int) -> Exception:
    if error == FAIL_REASON.MISSING_LEADER:
        return NoLeader("the cluster has no leader right now; retry shortly")
    if error == FAIL_REASON.QUEUE_FULL:
        return Overloaded("the raft command queue is full; retry shortly")
    return OutcomeUnknown(
        f"raft reported {reason_name(error)}; the command may or may not have been applied: "
        "retry with the same ids"
    )


def reason_name(error: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == error:
            return name
    return str(error)
