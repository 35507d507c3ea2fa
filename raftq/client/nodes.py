"""Which nodes a client talks to: the URLs given, else ``RAFTQ_NODES``, else
the local defaults. Which of them to try next is ``raftq.client.failover``'s."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from raftq import errors

DEFAULT_NODES = ("http://127.0.0.1:8101", "http://127.0.0.1:8102", "http://127.0.0.1:8103")
NODES_ENV = "RAFTQ_NODES"


def resolve_nodes(nodes: Sequence[str] | str | None, environ: Mapping[str, str]) -> list[str]:
    """The node URLs to use: given ones, else ``RAFTQ_NODES``, else the local defaults.

    A node may be given as ``host:port`` (plain HTTP) or as a full URL."""
    if nodes is None:
        nodes = environ.get(NODES_ENV) or list(DEFAULT_NODES)
    if isinstance(nodes, str):
        nodes = nodes.split(",")
    urls = [_node_url(n.strip().rstrip("/")) for n in nodes if n.strip()]
    if not urls:
        raise errors.ConfigError("no raftq node URLs given (pass nodes= or set RAFTQ_NODES)")
    return urls


def _node_url(node: str) -> str:
    """``host:port`` means ``http://host:port``; any other scheme is refused."""
    if "://" not in node:
        node = "http://" + node
    if not node.startswith(("http://", "https://")):
        raise errors.ConfigError(f"node URL {node!r} must be host:port, http://host:port "
                                 "or https://host:port")
    try:
        parts = urlsplit(node)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise errors.ConfigError(f"node URL {node!r} is not valid: {exc}") from None
    if not parts.hostname:
        raise errors.ConfigError(f"node URL {node!r} has no host")
    return node
