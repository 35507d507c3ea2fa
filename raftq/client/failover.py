"""The failover policy shared by both clients: which node to try next (the
leader, when the client knows it), and how long to wait between rounds."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from raftq import errors

LEADER_RECHECK_S = 30.0


class Failover:
    """Which node to try next, shared by the calls of one client.

    A client sticks to the node that last answered; on a connection error or a
    retryable status it moves to the next one. After every node has failed
    once in a round it waits (growing backoff, or the node's ``Retry-After``)
    before the next round, until ``retry_for`` seconds have passed since the
    call began.

    With ``prefer_leader`` (and more than one node) the client asks a node for
    the cluster's view (``GET /v1/cluster``) before its first call, after a
    failover and every ``LEADER_RECHECK_S``, and sticks to the leader: a
    follower would forward each write to it and wait for its own apply before
    answering, two more process hand-offs per call.

    Discovery: every answer of a node carries the cluster's membership epoch
    (``X-Raftq-Members``). When it is newer than the membership the client
    knows, the client asks for the cluster's view before its next call and
    takes its members' URLs as its nodes (``members_seen``), so a client given
    one node's address knows them all, and follows nodes added and removed.
    """

    def __init__(self, nodes: Sequence[str], retry_for: float,
                 prefer_leader: bool = True) -> None:
        self.nodes = list(nodes)
        self.retry_for = retry_for
        self.prefer_leader = prefer_leader
        # Spread clients over the nodes; a fresh client starts at a random one.
        self.current = random.randrange(len(self.nodes))
        self.leader_due = 0.0 if prefer_leader and len(self.nodes) > 1 else float("inf")
        self.members_epoch = 0  # of the membership ``nodes`` came from (0: as configured)
        self.epoch_asked = 0  # the newest epoch a node's answer announced

    def leader_check_due(self) -> bool:
        """True when the client should ask who leads; then not again for a while
        (concurrent calls ask once)."""
        now = time.monotonic()
        if now < self.leader_due:
            return False
        self.leader_due = now + LEADER_RECHECK_S
        return True

    def leader_seen(self, cluster_view: Any) -> None:
        """Take the members of a ``GET /v1/cluster`` body (``members_seen``) and
        stick to the leader it names, if it is one of ours."""
        self.members_seen(cluster_view)
        if not self.prefer_leader:
            return
        index = leader_index(self.nodes, cluster_view)
        if index is not None:
            self.current = index

    def epoch_announced(self, header: str | None) -> None:
        """A node's ``X-Raftq-Members`` header: ask for the view before the next call
        when it announces a membership newer than any announced before."""
        if header is None or not (header.isascii() and header.isdigit() and len(header) < 16):
            return
        epoch = int(header)
        if epoch > self.epoch_asked and epoch > self.members_epoch:
            self.epoch_asked = epoch
            self.leader_due = 0.0

    def members_seen(self, cluster_view: Any) -> None:
        """Make the view's members our nodes, if the view is newer than what we know
        and the node we asked is one of them (its URLs are then ones this client
        reaches; behind a proxy they are not, and the configured ones stay)."""
        found = member_urls(cluster_view, self.nodes[self.current])
        if found is None:
            return
        epoch, urls = found
        if epoch < self.members_epoch or not urls:
            return
        asked = self.nodes[self.current]
        self.members_epoch = epoch
        self.nodes = urls
        self.current = urls.index(asked) if asked in urls else 0

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
        if failover.leader_due != float("inf") or failover.members_epoch:
            failover.leader_due = 0.0  # the leader may have moved: ask again next call
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


def member_urls(cluster_view: Any, asked: str) -> tuple[int, list[str]] | None:
    """The membership epoch and the members' URLs in a ``GET /v1/cluster`` body, if
    it has them and ``asked`` (the URL the body came from) is among them. A member
    listening on all addresses (``0.0.0.0``) is reached at ``asked``'s host."""
    if not isinstance(cluster_view, dict) or not isinstance(cluster_view.get("nodes"), list):
        return None
    epoch = cluster_view.get("member_epoch")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch <= 0:
        return None
    asked_parts = urlsplit(asked)
    urls = []
    for n in cluster_view["nodes"]:
        url = n.get("http_url") if isinstance(n, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            return None
        parts = urlsplit(url)
        if parts.hostname in ("0.0.0.0", "::") and asked_parts.hostname:
            url = f"{parts.scheme}://{asked_parts.hostname}:{parts.port}"
        urls.append(url.rstrip("/"))
    if asked.rstrip("/") not in urls:
        return None
    return epoch, urls


def leader_index(nodes: Sequence[str], cluster_view: Any) -> int | None:
    """Which of ``nodes`` is the leader named by a ``GET /v1/cluster`` body, if any.

    Matched on the leader's ``http_address`` (``host:port``) against each node
    URL's; a leader that listens on all addresses (``0.0.0.0:port``) matches on
    the port, if only one of ``nodes`` has it."""
    if not isinstance(cluster_view, dict) or not isinstance(cluster_view.get("nodes"), list):
        return None
    leader = cluster_view.get("leader")
    address = next((n.get("http_address") for n in cluster_view["nodes"]
                    if isinstance(n, dict) and leader is not None and n.get("id") == leader),
                   None)
    if not isinstance(address, str) or ":" not in address:
        return None
    host, _, port = address.rpartition(":")
    netlocs = [urlsplit(url).netloc.rsplit("@", 1)[-1] for url in nodes]
    if address in netlocs:
        return netlocs.index(address)
    if host in ("0.0.0.0", "::", "[::]", ""):
        same_port = [i for i, netloc in enumerate(netlocs) if netloc.rpartition(":")[2] == port]
        if len(same_port) == 1:
            return same_port[0]
    return None
