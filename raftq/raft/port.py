"""The raft port: PySyncObj's TCP transport with our listener and connections.

PySyncObj's own (``TcpServer``, ``TcpConnection``) let a stranger who cannot
even seal a message take a node down (DESIGN.md, "hazards"): it listens on
0.0.0.0 whatever the configured address, has no frame-size limit, times a
connection out only when a socket event happens to look, listens with a
backlog of 5, and on EMFILE unbinds its listener for good. ``GuardedTransport``
keeps PySyncObj's transport (the handshake, the node table, reconnection) and
swaps the pieces underneath:

- ``PeerListener`` binds exactly the configured raft address; out of file
  descriptors, it logs, closes the oldest connection that has not proved the
  secret, pauses accepting for ``accept_retry_s`` and then listens again.
- ``raftq.raft.peer.PeerConnection`` refuses frames over ``max_frame_bytes``.
- Every ``SWEEP_PERIOD_S`` (on Raft's tick, no timers) a connection is closed
  when it has not delivered a frame sealed with the cluster secret within
  ``handshake_timeout_s`` of opening, when its peer has been silent for
  ``connectionTimeout`` while we were sending to it (PySyncObj's failure
  detection), or when nothing was read from it for ``idle_timeout_s``.
- At most ``max_unverified`` accepted connections may be waiting to prove the
  secret; the next one closes the oldest of them.
- A peer that names itself by an address that is not a member's (a removed
  node, one not added yet, a read-only client) is closed (``not_member``).
"""

from __future__ import annotations

import errno
import functools
import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pysyncobj.dns_resolver import globalDnsResolver
from pysyncobj.poller import POLL_EVENT_TYPE
from pysyncobj.tcp_connection import _getAddrType
from pysyncobj.transport import TCPTransport

from raftq.raft.peer import PeerConnection

log = logging.getLogger(__name__)

SWEEP_PERIOD_S = 0.25
_ACCEPTS_PER_EVENT = 64
_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
_LOG_EVERY_S = 10.0


@dataclass(slots=True, frozen=True)
class PortLimits:
    """What the raft port allows (node config ``raft_*``, docs/operations.md)."""

    # A sealed peer message is at most ~64 KiB plus one entry (PySyncObj splits
    # larger ones): the limit only has to stop absurd length prefixes.
    max_frame_bytes: int = 16 << 20
    handshake_timeout_s: float = 3.0
    idle_timeout_s: float = 60.0
    max_unverified: int = 128
    accept_retry_s: float = 0.5
    backlog: int = 128


@dataclass(slots=True)
class PortStats:
    """What the guard did (``/metrics``): connections it closed by reason, and
    how often the listener paused for want of file descriptors."""

    closed: dict[str, int] = field(default_factory=dict)
    accept_pauses: int = 0


class _Throttle:
    """Logs a kind of event at most once per ``_LOG_EVERY_S``, with a count of the rest."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}

    def warn(self, kind: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -_LOG_EVERY_S) < _LOG_EVERY_S:
            self._quiet[kind] = self._quiet.get(kind, 0) + 1
            return
        self._last[kind] = now
        quiet = self._quiet.pop(kind, 0)
        suffix = f" ({quiet} more like it not logged)" if quiet else ""
        log.warning(message + suffix, *args)


class PeerListener:
    """The raft port's listening socket, with PySyncObj's ``bind``/``unbind``."""

    def __init__(self, poller: Any, address: str, limits: PortLimits,
                 on_accept: Callable[[socket.socket, str], None],
                 on_exhausted: Callable[[], None], throttle: _Throttle,
                 stats: PortStats) -> None:
        self._poller = poller
        self.host, port = address.rsplit(":", 1)
        self.port = int(port)
        self.limits = limits
        self._on_accept = on_accept
        self._on_exhausted = on_exhausted
        self._throttle = throttle
        self._sock: socket.socket | None = None
        self._paused_until: float | None = None
        self._stats = stats

    def bind(self) -> None:
        host = self.host
        if host not in ("0.0.0.0", "::"):
            host = globalDnsResolver().resolve(host)
            if host is None:
                raise OSError(f"cannot resolve the raft address {self.host}")
        sock = socket.socket(_getAddrType(host), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setblocking(False)
            sock.bind((host, self.port))
            sock.listen(self.limits.backlog)
        except OSError:
            sock.close()
            raise
        self._sock = sock
        self._listen()

    def unbind(self) -> None:
        if self._sock is not None:
            if self._paused_until is None:
                self._poller.unsubscribe(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def tick(self, now: float) -> None:
        if self._paused_until is not None and now >= self._paused_until:
            self._listen()

    def _listen(self) -> None:
        assert self._sock is not None
        self._paused_until = None
        self._poller.subscribe(self._sock.fileno(), self._on_event,
                               POLL_EVENT_TYPE.READ | POLL_EVENT_TYPE.ERROR)

    def _on_event(self, descr: int, event: int) -> None:
        for _ in range(_ACCEPTS_PER_EVENT):
            if self._sock is None or self._paused_until is not None:
                return
            try:
                sock, addr = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self._pause(exc)
                # Anything else (a connection reset before it was accepted)
                # concerns that connection only: the listener carries on.
                continue
            self._on_accept(sock, f"{addr[0]}:{addr[1]}")

    def _pause(self, exc: OSError) -> None:
        """Out of descriptors: stop accepting for a moment instead of spinning."""
        assert self._sock is not None
        self._stats.accept_pauses += 1
        self._throttle.warn("exhausted", "raft port %s:%d: cannot accept a connection (%s); "
                            "closing the oldest unproven connection and accepting again in "
                            "%.1f s", self.host, self.port, exc.strerror,
                            self.limits.accept_retry_s)
        self._poller.unsubscribe(self._sock.fileno())
        self._paused_until = time.monotonic() + self.limits.accept_retry_s
        self._on_exhausted()


class GuardedTransport(TCPTransport):  # type: ignore[misc]
    """PySyncObj's TCP transport on ``PeerListener`` and ``PeerConnection``."""

    limits = PortLimits()  # see ``with_limits``
    stats = PortStats()

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any) -> None:  # noqa: N803
        # Set before PySyncObj's constructor, which calls addNode and _createServer.
        self._live: dict[PeerConnection, None] = {}  # open connections, oldest first
        self._next_sweep = 0.0
        self._throttle = _Throttle()
        super().__init__(syncObj, selfNode, otherNodes)

    @classmethod
    def with_limits(cls, limits: PortLimits, stats: PortStats) -> type[GuardedTransport]:
        """This transport with ``limits``, counting into ``stats``: a class, as
        SyncObj's ``transportClass`` (and ``raftq.raft.plug.syncing_transport``'s
        base) must be."""
        return type(cls.__name__, (cls,), {"limits": limits, "stats": stats})

    # ------------------------------------------- PySyncObj's transport, overridden

    def _createServer(self) -> None:  # noqa: N802
        address = self._syncObj.conf.bindAddress or self._selfNode.address
        self._server = PeerListener(self._syncObj._poller, address, self.limits,
                                    self._accept, self._evict_oldest_unverified,
                                    self._throttle, self.stats)

    def addNode(self, node: Any) -> None:  # noqa: N802
        super().addNode(node)
        if node in self._connections:  # we dial this node: with our connection
            conn = self._connection()
            conn.encryptor = self._syncObj.encryptor
            conn.setOnConnectedCallback(functools.partial(self._onOutgoingConnected, conn))
            conn.setOnMessageReceivedCallback(functools.partial(self._onMessageReceived, node))
            conn.setOnDisconnectedCallback(functools.partial(self._onDisconnected, conn))
            self._connections[node] = conn

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:  # noqa: N802
        # After the key exchange a peer names itself by its raft address. Only a
        # member's address is let in: PySyncObj would also let a "readonly" peer
        # in, which receives every entry and may ask for votes; and a removed
        # node is told nothing, which is what keeps it from disturbing the cluster.
        if (conn.sendRandKey and isinstance(message, str)
                and message not in self._nodeAddrToNode):
            self._unknownConnections.discard(conn)
            conn.refuse("not_member", f"it names itself {message[:60]!r}, not a member "
                                      "of this cluster (removed, or not added yet)")
            return
        super()._onIncomingMessageReceived(conn, message)

    def _onTick(self) -> None:  # noqa: N802
        super()._onTick()
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_PERIOD_S
            if self._server is not None:
                self._server.tick(now)
            self._sweep(now)

    # ------------------------------------------------------------- ours

    def _connection(self, sock: socket.socket | None = None, peer: str = "") -> PeerConnection:
        conf = self._syncObj.conf
        return PeerConnection(
            self._syncObj._poller, max_frame_bytes=self.limits.max_frame_bytes,
            recv_buffer_size=conf.recvBufferSize, send_buffer_size=conf.sendBufferSize,
            keepalive=conf.tcp_keepalive, sock=sock, peer=peer,
            on_open=self._opened, on_close=self._closed)

    def _opened(self, conn: PeerConnection) -> None:
        self._live[conn] = None

    def _closed(self, conn: PeerConnection) -> None:
        self._live.pop(conn, None)
        if conn.refusal is not None:
            kind, why = conn.refusal
            self.stats.closed[kind] = self.stats.closed.get(kind, 0) + 1
            if kind != "idle":  # an idle peer link is routine; PySyncObj redials it
                self._throttle.warn(kind, "raft port: closed the connection %s %s: %s",
                                    "from" if conn.incoming else "to", conn.peer, why)

    def _accept(self, sock: socket.socket, peer: str) -> None:
        unverified = [c for c in self._live if c.incoming and not c.verified]
        if len(unverified) >= self.limits.max_unverified:
            unverified[0].refuse("unverified_cap",
                                 f"over {self.limits.max_unverified} connections waiting to "
                                 "prove the secret (the oldest is closed)")
        self._onNewIncomingConnection(self._connection(sock, peer))

    def _evict_oldest_unverified(self) -> None:
        for conn in self._live:
            if conn.incoming and not conn.verified:
                conn.refuse("descriptors", "out of file descriptors")
                return

    def _sweep(self, now: float) -> None:
        limits = self.limits
        silent_s = self._syncObj.conf.connectionTimeout
        for conn in list(self._live):
            if not conn.verified and now - conn.opened_at > limits.handshake_timeout_s:
                conn.refuse("handshake", "no message sealed with the cluster secret within "
                                         f"{limits.handshake_timeout_s:g} s")
            elif conn.unanswered_since is not None and now - conn.unanswered_since > silent_s:
                conn.disconnect()  # a peer gone quiet: PySyncObj reconnects as usual
            elif now - conn.last_read_at > limits.idle_timeout_s:
                conn.refuse("idle", f"nothing read for {limits.idle_timeout_s:g} s")
