"""What the HTTP server allows a connection: deadlines and the connection cap.

Set from the node config's ``http_*`` settings (docs/operations.md); enforced
by ``raftq.server.http``.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a connection is waiting for, and so what its deadline means when it passes.
NOTHING = 0  # a request is being answered: no deadline
IDLE = 1  # a keep-alive connection between requests: closed quietly
HEADERS = 2  # a request's headers (a new connection's first one included): 408
BODY = 3  # a request's body: 408


@dataclass(slots=True, frozen=True)
class HttpLimits:
    # From a connection's start, or a request's first byte, to its blank line.
    header_timeout_s: float = 10.0
    # From the end of the headers to the last byte of the body.
    body_timeout_s: float = 30.0
    # A keep-alive connection with nothing in flight and no new request.
    idle_timeout_s: float = 300.0
    # Open connections per node; the next one gets 503 and is closed.
    max_connections: int = 4096

    @property
    def sweep_period_s(self) -> float:
        """How often deadlines are checked: a quarter of the shortest, within [0.05, 1] s."""
        return max(0.05, min(1.0, self.header_timeout_s / 4, self.body_timeout_s / 4))
