"""HTTP handlers about the cluster rather than the queue: node and cluster
status, health, readiness and metrics.

A node's ``leader`` is the leader it is in contact with (``raftq.raft.contact``):
none, with ``no_leader_reason`` saying why, when it has not heard from one within
the election timeout. ``clock_offset_ms`` is its wall clock minus the leader's
(``raftq.server.clock``), ``None`` while no recent tick tells."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from raftq.raft.replica import Replica
from raftq.server.auth import node_token
from raftq.server.config import NodeConfig, Peer
from raftq.server.http import Request, Response, json_response
from raftq.server.metrics import Metrics
from raftq.state import snapshot
from raftq.state.members import HTTP_URL, RAFT_ADDRESS


class StatusApi:
    def __init__(self, config: NodeConfig, replica: Replica, metrics: Metrics) -> None:
        self.config = config
        self.replica = replica
        self.metrics = metrics
        self.peer_session: aiohttp.ClientSession | None = None  # made when the node starts
        self.clock_offset_ms: Callable[[], int | None] = lambda: None  # set by the node
        self.peer_headers = {"Authorization": f"Bearer {node_token(config.secret)}"}
        self.undial = {dialed: address for address, dialed in config.raft_dial.items()}
        self.peer_ssl: ssl.SSLContext | bool = True
        if config.tls_ca_file:
            self.peer_ssl = ssl.create_default_context(cafile=config.tls_ca_file)

    def node_view(self, with_digest: bool = False) -> dict[str, Any]:
        status = self.replica.raft_status()
        leader_id = self.id_of(status["leader"])
        out = {
            "id": self.config.node_id,
            "raft_address": self.config.raft_address,
            "http_address": self.config.http_address,
            "role": status["role"],
            "leader": leader_id,
            "no_leader_reason": status["no_leader_reason"],
            "clock_offset_ms": self.clock_offset_ms(),
            "clock_ms": self.replica.state.clock_ms,
            "term": status["term"],
            "elections_started": status["elections_started"],
            "commit_index": status["commit_index"],
            "applied_index": status["applied_index"],
            "leader_commit_index": status["leader_commit_index"],
            "has_quorum": status["has_quorum"],
            "peers_connected": {self.id_of(a): ok for a, ok in status["partners"].items()},
            "storage_problem": self.replica.storage.problem,
            "removed": self.replica.peers.removed,
            "member_epoch": self.replica.state.member_epoch,
        }
        if with_digest:
            out["digest"] = snapshot.digest(self.replica.state)
        return out

    def members(self) -> list[Peer]:
        """The cluster's members: the replicated membership, or before the first
        leader recorded it, this node's configured peers. ``http_address`` is
        the URL of each member's HTTP API."""
        members = self.replica.state.members
        if members:
            return [Peer(i, r[RAFT_ADDRESS], r[HTTP_URL]) for i, r in members.items()]
        return [Peer(p.id, p.raft_address, self.config.http_url if p.id == self.config.node_id
                     else f"{self.config.scheme}://{p.http_address}")
                for p in self.config.all_nodes()]

    def id_of(self, raft_address: str | None) -> str | None:
        if raft_address is None:
            return None
        raft_address = self.undial.get(raft_address, raft_address)
        for peer in self.members():
            if peer.raft_address == raft_address:
                return peer.id
        return raft_address

    def http_url_of(self, raft_address: str | None) -> str | None:
        if raft_address is not None:
            raft_address = self.undial.get(raft_address, raft_address)
        for peer in self.members():
            if peer.raft_address == raft_address:
                return peer.http_address
        return None

    async def node(self, request: Request) -> Response:
        return json_response(self.node_view(request.query.get("digest") in ("1", "true")))

    async def fetch_peer(self, http_url: str, path: str = "/v1/node") -> dict[str, Any] | None:
        """A peer's answer to ``path`` (its own view by default), asked with the node
        token; None if it does not answer 200 within 0.7 s."""
        if self.peer_session is None:
            return None
        try:
            async with self.peer_session.get(
                f"{http_url}{path}", headers=self.peer_headers,
                ssl=self.peer_ssl, timeout=aiohttp.ClientTimeout(total=0.7),
            ) as resp:
                if resp.status != 200:
                    return None
                data: dict[str, Any] = await resp.json()
                return data
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None

    async def cluster(self, request: Request) -> Response:
        me = self.node_view()
        members = self.members()
        peers = [p for p in members if p.id != self.config.node_id]
        views = await asyncio.gather(*(self.fetch_peer(p.http_address) for p in peers))
        by_id: dict[str, dict[str, Any] | None] = {me["id"]: me}
        by_id.update({p.id: view for p, view in zip(peers, views, strict=True)})
        nodes = []
        leader_commit = max(
            (n["commit_index"] for n in by_id.values() if n and n["role"] == "leader"),
            default=me["leader_commit_index"],
        )
        for peer in members:
            view = by_id.get(peer.id)
            entry: dict[str, Any] = {
                "id": peer.id,
                "raft_address": peer.raft_address,
                "http_address": urlsplit(peer.http_address).netloc,
                "http_url": peer.http_address,
                "reachable": view is not None,
            }
            if view is not None:
                entry.update(role=view["role"], term=view["term"],
                             commit_index=view["commit_index"],
                             applied_index=view["applied_index"],
                             lag=max(leader_commit - view["applied_index"], 0),
                             leader=view.get("leader"),
                             no_leader_reason=view.get("no_leader_reason"),
                             clock_offset_ms=view.get("clock_offset_ms"))
            else:
                entry.update(role="unreachable", term=None, commit_index=None,
                             applied_index=None, lag=None, leader=None,
                             no_leader_reason=None, clock_offset_ms=None)
            nodes.append(entry)
        leaders = [n for n in nodes if n.get("role") == "leader"]
        top_term = max((n["term"] for n in leaders), default=me["term"])
        leader = next((n["id"] for n in leaders if n["term"] == top_term), me["leader"])
        reachable = sum(1 for n in nodes if n["reachable"])
        return json_response({
            "leader": leader,
            "term": top_term,
            "has_quorum": leader is not None and reachable > len(nodes) // 2,
            "member_epoch": self.replica.state.member_epoch,
            "nodes": nodes,
        })

    # ------------------------------------------------------------- health

    async def healthz(self, request: Request) -> Response:
        return json_response({"ok": True, "id": self.config.node_id})

    async def readyz(self, request: Request) -> Response:
        s = self.replica.raft_status()
        storage = self.replica.storage.problem
        # The keys this node bootstraps are installed (or were, and were revoked
        # since): until then the keys it was configured with are refused.
        keys = self.replica.state.keys
        keys_ready = all(name in keys for name, _, _ in self.config.bootstrap_keys)
        reason = None
        if storage is not None:
            reason = f"writes refused (507): {storage}"
        elif s["leader"] is None:
            reason = f"no leader: {s['no_leader_reason']}"
        elif s["applied_index"] < s["leader_commit_index"]:
            reason = "catching up with the leader's commit index"
        elif not keys_ready:
            reason = "installing the bootstrap API keys"
        ready = reason is None
        body = {"ready": ready, "leader": self.id_of(s["leader"]),
                "applied_index": s["applied_index"],
                "leader_commit_index": s["leader_commit_index"], "keys_installed": keys_ready}
        if reason is not None:
            body["reason"] = reason
        return json_response(body, status=200 if ready else 503,
                                 headers=None if ready else {"Retry-After": "1"})

    async def metrics_page(self, request: Request) -> Response:
        body, content_type = self.metrics.render()
        return Response(body, content_type=content_type)
