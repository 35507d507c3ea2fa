"""The failover policy shared by both clients: which node to try next, and how
long to wait between rounds."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from raftq import errors


class Failover:
    """Which node to try next, shared by the calls of one client.

    A client sticks to the node that last answered; on a connection error or a
    retryable status it moves to the next one. After every node has failed
    once in a round it waits (growing backoff, or the node's ``Retry-After``)
    before the next round, until ``retry_for`` seconds have passed since the
    call began.
    """

    def __init__(self, nodes: Sequence[str], retry_for: float) -> None:
        self.nodes = list(nodes)
        self.retry_for = retry_for
        # Spread clients over the nodes; a fresh client starts at a random one.
        self.current = random.randrange(len(self.nodes))

    def attempts(self) -> Attempts:
        return Attempts(self)


class Attempts:
    """The retry state of one logical call."""

    def __init__(self, failover: Failover) -> None:
        self.failover = failover
        self.deadline = time.monotonic() + failover.retry_for
        self.failed_in_round = 0
        self.round = 0

    @property
    def node(self) -> str:
        return self.failover.nodes[self.failover.current]

    def retry_delay(self, error: errors.RaftqError, retry_after: float | None = None) -> float:
        """Seconds to wait before the next attempt; re-raises ``error`` when out of time."""
        failover = self.failover
        failover.current = (failover.current + 1) % len(failover.nodes)
        self.failed_in_round += 1
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise error
        if self.failed_in_round < len(failover.nodes):
            return 0.0
        self.failed_in_round = 0
        self.round += 1
        backoff = min(1.0, 0.05 * 2.0 ** (self.round - 1)) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            backoff = max(backoff, min(retry_after, 5.0))
        return min(backoff, remaining)
