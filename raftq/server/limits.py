"""What the HTTP server allows a connection: deadlines and the connection cap.

Set from the node config's ``http_*`` settings (docs/operations.md); enforced
by ``raftq.server.http``. ``raise_open_files_limit`` makes room for them.
"""

from __future__ import annotations

import logging
import resource
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Descriptors a node needs besides its clients': peers, journal, snapshots, logs.
RESERVED_DESCRIPTORS = 256

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

    def late(self, waiting: int) -> str:
        """What a 408 says about a request that missed its ``HEADERS`` or ``BODY`` deadline."""
        part, limit = (("headers", self.header_timeout_s) if waiting == HEADERS
                       else ("body", self.body_timeout_s))
        return f"the request {part} did not arrive within {limit:g} s"

    @property
    def sweep_period_s(self) -> float:
        """How often deadlines are checked: a quarter of the shortest, within [0.05, 1] s."""
        return max(0.05, min(1.0, self.header_timeout_s / 4, self.body_timeout_s / 4))


def raise_open_files_limit(connections: int) -> int:
    """Raise the soft limit on open files towards ``connections`` plus a reserve
    (as far as the hard limit allows) and warn if that is not enough: a node
    out of descriptors cannot accept peers, clients or open its journal."""
    wanted = connections + RESERVED_DESCRIPTORS
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
    if soft != resource.RLIM_INFINITY and soft < wanted:
        log.warning("the open-files limit is %d (hard limit %d): below the %d that "
                    "http_max_connections and raft_max_unverified may use with %d to spare; "
                    "raise it (ulimit -n, LimitNOFILE=, compose `ulimits`) or lower "
                    "http_max_connections", soft, hard, wanted, RESERVED_DESCRIPTORS)
    return int(soft)
