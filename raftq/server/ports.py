"""Is a node's address free? Asked before anything listens, so a busy port ends
the process at once with the address named, instead of PySyncObj retrying its
bind forever on the event loop (which then never sees SIGTERM)."""

from __future__ import annotations

import errno
import socket

from raftq.errors import ConfigError


def check_free(address: str, key: str) -> None:
    """Raise ``ConfigError`` naming ``key`` and ``address`` if nothing may listen there."""
    host, _, port = address.rpartition(":")
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"`{key}` {address}: cannot resolve: {exc}", field=key) from None
    family, kind, proto, _, sockaddr = infos[0]
    with socket.socket(family, kind, proto) as sock:
        # As the servers do: a port in TIME_WAIT after a restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(sockaddr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is already in use (another raftq node, or another program?)"
            else:
                why = f"cannot be bound: {exc.strerror or exc}"
            raise ConfigError(f"`{key}` {address} {why}", field=key) from None
