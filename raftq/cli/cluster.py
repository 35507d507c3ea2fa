"""Cluster commands: `raftq node`, `up`, `cluster-status`, `gen-secret`, `chaos`."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from typing import Any

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import ConfigError, RaftqError


@click.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Node config YAML (see config/node1.yaml).")
@click.option("--rejoin", is_flag=True,
              help="Move this node's data aside (kept in its data_dir) and catch up from "
                   "the cluster: for a node that refused to start on corrupt data.")
@click.option("--join", "join_url", default=None, metavar="URL",
              help="A member's URL: a new node (empty data directory) learns the cluster's "
                   "membership from it instead of `peers` (overrides `join` in the config).")
def node(config_path: str, rejoin: bool, join_url: str | None) -> None:
    """Run one cluster node (SIGTERM stops it cleanly)."""
    from raftq.server import config
    from raftq.server.node import run_node

    try:
        cfg = config.load(config_path)
    except ConfigError as exc:
        fail(f"--config: {exc.message}")
    if join_url is not None:
        if not join_url.startswith(("http://", "https://")):
            fail(f"--join: a member's URL, like http://host:port, not {join_url!r}")
        cfg.join = join_url
    if rejoin:
        from raftq.server.ports import check_free
        from raftq.server.rejoin import prepare

        try:
            # Before the data is moved aside: a node that cannot listen would
            # only leave it there.
            check_free(cfg.http_address, "http_address")
            check_free(cfg.raft_address, "raft_address")
        except ConfigError as exc:
            fail(f"node {cfg.node_id} ({config_path}): {exc.message}")
        try:
            aside = prepare(cfg)
        except (RaftqError, OSError) as exc:
            fail(f"--rejoin: {exc}")
        click.echo(f"rejoin: node {cfg.node_id}'s data moved aside to {aside}; "
                   "catching up from the cluster", err=True)
    try:
        run_node(cfg)
    except ConfigError as exc:
        fail(f"node {cfg.node_id} ({config_path}): {exc.message}")


@click.command("gen-secret")
def gen_secret() -> None:
    """Print a new random cluster secret."""
    click.echo(secrets.token_urlsafe(32))


@click.command(short_help="The local 3-node cluster and a worker; Ctrl-C stops.")
@click.option("--config-dir", default="config", show_default=True, type=click.Path(),
              help="Directory holding node1.yaml, node2.yaml, node3.yaml.")
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="Also start a worker with the example tasks.")
def up(config_dir: str, worker: bool) -> None:
    """Start the local 3-node cluster (and a worker); Ctrl-C stops everything."""
    from raftq.local.up import run_up

    try:
        run_up(Path(config_dir), worker)
    except ConfigError as exc:
        fail(exc.message)


@click.command("cluster-status", short_help="Every node's role, term, indexes and lag.")
@click.option("--node", "node_url", default=None,
              help="Ask this node (default: the first of --nodes that answers).")
@click.option("--max-clock-offset", default=0.5, show_default=True, type=click.FloatRange(0),
              help="Warn about a node whose clock is further than this (seconds) from the "
                   "leader's.")
@NODES
@OUTPUT
@click.option("--timeout", type=click.FloatRange(min=0.1), default=5.0, show_default=True,
              help="Seconds to keep trying the nodes before giving up.")
def cluster_status(node_url: str | None, max_clock_offset: float, nodes: str | None,
                   output: str, timeout: float) -> None:
    """Show every node's role, term, indexes, lag and clock offset from the leader; warn
    about nodes without a leader or with a clock off; exit 1 without quorum."""
    client = make_client(node_url or nodes, flag="--node" if node_url else "--nodes",
                         retry_for=timeout, timeout=timeout)
    try:
        data = client.cluster()
    except RaftqError as exc:
        fail(f"no node answered within {timeout:g} s (tried {', '.join(client.nodes)}; "
             f"--timeout to wait longer): {exc}", 2)
    rows = [
        [n["id"], n["role"], n["term"], n["commit_index"], n["applied_index"], n["lag"],
         _offset(n.get("clock_offset_ms")), "yes" if n["reachable"] else "NO",
         n["raft_address"], n["http_address"]]
        for n in data["nodes"]
    ]
    data["warnings"] = cluster_warnings(data["nodes"], max_clock_offset)
    emit(data, output, ["NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "CLOCK",
                        "REACHABLE", "RAFT", "HTTP"], rows)
    if output == "table":
        quorum = "yes" if data["has_quorum"] else "NO"
        click.echo(f"\nleader: {data['leader'] or '-'}  term: {data['term']}  quorum: {quorum}")
        for warning in data["warnings"]:
            click.echo(f"warning: {warning}")
    if not data["has_quorum"]:
        sys.exit(1)


def _offset(ms: int | None) -> str:
    return "-" if ms is None else f"{ms / 1000:+.3f}s"


def cluster_warnings(nodes: list[dict[str, Any]], max_clock_offset_s: float) -> list[str]:
    """A line for each reachable node without a leader, or with a clock further than
    ``max_clock_offset_s`` from the leader's."""
    out = []
    for n in nodes:
        if not n["reachable"]:
            continue
        if n.get("leader") is None and n.get("no_leader_reason"):
            out.append(f"{n['id']} has no leader: {n['no_leader_reason']}")
        offset_ms = n.get("clock_offset_ms")
        if offset_ms is not None and abs(offset_ms) > max_clock_offset_s * 1000:
            side = "ahead of" if offset_ms > 0 else "behind"
            out.append(f"{n['id']}'s clock is {abs(offset_ms) / 1000:.3f} s {side} the "
                       f"leader's (more than {max_clock_offset_s:g} s)")
    return out


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []},
               short_help="Fault-injection runs against real nodes.")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def chaos(args: tuple[str, ...]) -> None:
    """Fault-injection runs against real nodes: run --smoke, run --list, run --all."""
    from raftq.chaos.main import main as chaos_main

    sys.exit(chaos_main(list(args)))


COMMANDS = [node, gen_secret, up, cluster_status, chaos]
