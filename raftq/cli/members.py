"""`raftq cluster add-node`, `remove-node` and `members`: the cluster's membership.

One change at a time, decided by the leader (any node takes the command and
hands it on); see "Replacing a node" in docs/operations.md.
"""

from __future__ import annotations

from typing import Any

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError


@click.group("cluster")
def cluster_group() -> None:
    """The cluster's membership: list it, add a node, remove one."""


def _show(data: dict[str, Any], output: str) -> None:
    rows = [[m["id"], m["raft_address"], m["http_url"]] for m in data["members"]]
    emit(data, output, ["NODE", "RAFT", "HTTP"], rows)
    if output == "table":
        click.echo(f"\nmembership epoch: {data['epoch']}")
        if data.get("catching_up"):
            click.echo(f"change under way: {data['catching_up']} is catching up (the next "
                       "change waits for it)")


def _refused(exc: RaftqError) -> None:
    flags = {"id": "ID", "raft_address": "--raft", "http_url": "--http"}
    flag = flags.get(exc.field or "")
    fail(f"{flag}: {exc.message}" if flag else f"refused ({exc.code}): {exc.message}")


@cluster_group.command("members")
@NODES
@OUTPUT
def members(nodes: str | None, output: str) -> None:
    """Show the cluster's members: id, raft address and HTTP URL of each."""
    client = make_client(nodes)
    try:
        _show(client.members(), output)
    except RaftqError as exc:
        fail(exc.message, 2)


@cluster_group.command("add-node")
@click.argument("node_id", metavar="ID")
@click.option("--raft", "raft_address", required=True, metavar="HOST:PORT",
              help="The new node's raft address, as in its config's raft_address.")
@click.option("--http", "http_url", required=True, metavar="URL",
              help="The URL of the new node's HTTP API (clients are told it).")
@NODES
@OUTPUT
def add_node(node_id: str, raft_address: str, http_url: str, nodes: str | None,
             output: str) -> None:
    """Add node ID to the cluster; then start it with `join: URL-of-a-member`."""
    client = make_client(nodes)
    try:
        data = client.add_node(node_id, raft_address, http_url)
    except RaftqError as exc:
        _refused(exc)
    _show(data, output)


@cluster_group.command("remove-node")
@click.argument("node_id", metavar="ID")
@NODES
@OUTPUT
def remove_node(node_id: str, nodes: str | None, output: str) -> None:
    """Remove node ID from the cluster (a dead one, or a live one, which then stops)."""
    client = make_client(nodes)
    try:
        data = client.remove_node(node_id)
    except RaftqError as exc:
        _refused(exc)
    _show(data, output)


COMMANDS = [cluster_group]
