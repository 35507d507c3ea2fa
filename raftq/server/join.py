"""The membership a node starts with.

In order:

1. the membership saved in its data directory (``raftq.raft.membership``):
   a node that ran before starts with the membership it last applied, whatever
   its config's ``peers`` say;
2. with ``join: URL`` (or ``raftq node --join URL``) and no saved membership,
   the cluster's, asked from that node (``GET /v1/cluster/members``, with the
   node token of the cluster secret). The node must have been added first
   (``raftq cluster add-node``) under its ``node_id`` and ``raft_address``;
   it then gets the state from the leader (a snapshot and the log);
3. else its config's ``peers``: a brand-new cluster, whose first leader
   records them as the membership (``SeedMembers``).
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from raftq.errors import ConfigError
from raftq.raft import membership
from raftq.server.auth import node_token
from raftq.server.config import NodeConfig
from raftq.state.commands import Member


@dataclass(slots=True)
class Start:
    partners: list[str]  # the other members' raft addresses
    joined_epoch: int
    epoch: int  # of the membership it starts with (0: none recorded yet)
    seed: list[Member] | None  # the membership to record if none is (a new cluster)
    source: str
    # The members' HTTP URLs by id, as the node starts: what it asks while its
    # state has no membership yet (it replays its log only once a leader says
    # how far is committed, and a node with no snapshot starts with none).
    http_urls: dict[str, str]


def starting_membership(config: NodeConfig) -> Start:
    saved = membership.load(config.data_dir)
    if saved is not None:
        return Start(saved.raft_addresses(config.raft_address), saved.joined_epoch,
                     saved.epoch, None,
                     f"the membership saved in {config.data_dir} (epoch {saved.epoch})",
                     {i: url for i, _, url in saved.members})
    if config.join:
        joined = join(config, config.join)
        membership.save(config.data_dir, joined, config.durability)
        return Start(joined.raft_addresses(config.raft_address), joined.joined_epoch,
                     joined.epoch, None,
                     f"the cluster at {config.join} (epoch {joined.epoch})",
                     {i: url for i, _, url in joined.members})
    seed = [Member(p.id, p.raft_address, config.http_url if p.id == config.node_id
                   else f"{config.scheme}://{p.http_address}") for p in config.all_nodes()]
    return Start([p.raft_address for p in config.peers], 0, 0, seed, "the configured peers",
                 {m.id: m.http_url for m in seed})


def join(config: NodeConfig, url: str, timeout_s: float = 5.0) -> membership.Membership:
    """The cluster's membership as the node at ``url`` knows it; ``ConfigError``
    (naming ``join``) unless it lists this node at its raft address."""
    view = fetch_members(config, url, timeout_s)
    members = view.get("members")
    if not isinstance(members, list) or not isinstance(view.get("epoch"), int):
        raise ConfigError(f"`join`: {url} answered without a membership", field="join")
    rows = [(str(m["id"]), str(m["raft_address"]), str(m["http_url"])) for m in members]
    mine = [r for r in rows if r[0] == config.node_id]
    if not mine:
        raise ConfigError(
            f"`join`: node {config.node_id} is not a member of the cluster at {url} yet; "
            f"add it first: raftq cluster add-node {config.node_id} --raft "
            f"{config.raft_address} --http {config.http_url}",
            field="join")
    if mine[0][1] != config.raft_address:
        raise ConfigError(
            f"`join`: the cluster at {url} knows node {config.node_id} at raft address "
            f"{mine[0][1]}, not {config.raft_address}", field="join")
    return membership.Membership(rows, view["epoch"], view["epoch"])


def fetch_members(config: NodeConfig, url: str, timeout_s: float) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {node_token(config.secret)}"}
    request = urllib.request.Request(url.rstrip("/") + "/v1/cluster/members", headers=auth)
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=config.tls_ca_file)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as r:
            data: dict[str, Any] = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        raise ConfigError(f"`join`: {url} answered HTTP {exc.code}: "
                          f"{exc.read()[:200].decode(errors='replace')}", field="join") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"`join`: cannot ask {url} for the cluster's membership: {exc}",
                          field="join") from None
    if not isinstance(data, dict):
        raise ConfigError(f"`join`: {url} answered without a membership", field="join")
    return data
