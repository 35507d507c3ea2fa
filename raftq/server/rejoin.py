"""``raftq node --rejoin``: rebuild a node's data from the rest of the cluster.

Used when the node refused to start because a file failed verification. It
first asks the other nodes (HTTP ``/v1/node``) whether one of them leads with
a quorum; only then does it move the node's data aside (kept, in
``<data_dir>/moved-aside-<UTC time>/``) and start the node empty: the leader
sends it a snapshot and the log. Until its log holds the leader's commit
index of that moment the node grants no vote (see ``raftq.raft.storage``).
Refused, with the data left as it was, when this node still answers on its
HTTP address (stop it first) or when no other node leads with a quorum.
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from raftq.errors import RaftqError
from raftq.raft.storage import NodeStorage
from raftq.server.auth import node_token
from raftq.server.config import NodeConfig, Peer


class RejoinRefused(RaftqError):
    code = "rejoin_refused"


def node_view(config: NodeConfig, http_address: str,
              timeout_s: float = 2.0) -> dict[str, Any] | None:
    """A node's own view, asked as a peer (the node token of the cluster secret)."""
    auth = {"Authorization": f"Bearer {node_token(config.secret)}"}
    request = urllib.request.Request(f"{config.scheme}://{http_address}/v1/node", headers=auth)
    context = None
    if config.tls_cert_file:
        context = ssl.create_default_context(cafile=config.tls_ca_file)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as r:
            data: dict[str, Any] = json.loads(r.read())
            return data
    except (OSError, ValueError, urllib.error.URLError):
        return None


def describe(peer: Peer, view: dict[str, Any] | None) -> str:
    if view is None:
        return f"{peer.id} unreachable"
    quorum = "with quorum" if view.get("has_quorum") else "no quorum"
    return f"{peer.id} {view.get('role')}, {quorum}"


def prepare(config: NodeConfig) -> Path:
    """Check the cluster, then move the node's data aside; where it went."""
    if node_view(config, config.http_address, timeout_s=1.0) is not None:
        raise RejoinRefused(f"node {config.node_id} answers on {config.http_address}: "
                            "stop it first; its data is left as it is")
    views = [(peer, node_view(config, peer.http_address)) for peer in config.peers]
    leaders = [v for _, v in views if v and v.get("role") == "leader" and v.get("has_quorum")]
    if not leaders:
        seen = "; ".join(describe(p, v) for p, v in views) or "no other node configured"
        raise RejoinRefused(
            f"the rest of the cluster has no leader with a quorum ({seen}), so nothing "
            f"could catch node {config.node_id} up; its data in {config.data_dir} is left "
            "as it is. Bring the other nodes up first")
    leader_commit = max(int(v["commit_index"]) for v in leaders)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    return NodeStorage(config.data_dir).move_aside(stamp, leader_commit)
