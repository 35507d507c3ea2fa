"""``raftq keys`` (create, list, revoke) and ``raftq audit``: admin commands."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError

ROLES = ["admin", "producer", "worker", "reader"]


def _when(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


@click.group()
def keys() -> None:
    """API keys: create, list, revoke (admin)."""


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True,
              help="admin: everything; producer: submit, read, cancel; worker: claim, "
                   "extend, release, complete, fail, read; reader: GET only.")
@click.option("--name", required=True, help="A unique name; the audit log shows it.")
@NODES
@OUTPUT
def keys_create(role: str, name: str, nodes: str | None, output: str) -> None:
    """Create a key; its token is printed once."""
    try:
        created = make_client(nodes).create_key(name, role)
    except RaftqError as exc:
        fail(f"--name: {exc.message}" if exc.field == "name" else exc.message)
    if output == "json":
        emit(created, output, [], [])
        return
    click.echo(created["token"])
    click.echo(f"created {role} key {name!r}; the token above is shown only once: "
               "keep it (e.g. RAFTQ_API_KEY) and never commit it", err=True)


@keys.command("list")
@NODES
@OUTPUT
def keys_list(nodes: str | None, output: str) -> None:
    """Every key: name, role, creator, state."""
    try:
        listed = make_client(nodes).keys()
    except RaftqError as exc:
        fail(exc.message)
    rows = [[k["name"], k["role"], k["created_by"], _when(k["created_ms"]),
             _when(k["revoked_ms"]) if k["revoked_ms"] else "active"] for k in listed]
    emit(listed, output, ["NAME", "ROLE", "CREATED BY", "CREATED", "REVOKED"], rows)


@keys.command("revoke")
@click.argument("name")
@NODES
def keys_revoke(name: str, nodes: str | None) -> None:
    """Revoke key NAME on every node."""
    try:
        make_client(nodes).revoke_key(name)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"revoked {name}")


@click.command()
@click.option("--after", type=click.IntRange(0), default=None,
              help="Entries after this sequence number (default: the last --limit).")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@NODES
@OUTPUT
def audit(after: int | None, limit: int, nodes: str | None, output: str) -> None:
    """Who cancelled, purged or changed keys."""
    try:
        entries = make_client(nodes).audit(after=after, limit=limit)
    except RaftqError as exc:
        fail(exc.message)
    rows = [[e["seq"], _when(e["at_ms"]), e["actor"], e["action"], e["target"],
             " ".join(f"{k}={v}" for k, v in sorted(e["detail"].items()))] for e in entries]
    emit(entries, output, ["SEQ", "AT", "WHO", "ACTION", "TARGET", "DETAIL"], rows)


COMMANDS = [keys, audit]
