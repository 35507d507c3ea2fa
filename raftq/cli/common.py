"""What every ``raftq`` command shares: the common options, errors, the client, output.

Options that every command talking to a cluster takes live here, so adding one
(say ``--api-key``) is one change.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from raftq.errors import RaftqError

OUTPUT = click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
                      show_default=True, help="Output format.")
NODES = click.option("--nodes", envvar="RAFTQ_NODES", default=None,
                     help="Comma-separated node URLs (default: $RAFTQ_NODES or the local "
                          "3-node cluster).")


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def make_client(nodes: str | None) -> Any:
    from raftq.client.sync import Client

    return Client(nodes.split(",") if nodes else None)


def print_table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> None:
    cells = [[str(h) for h in head]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def emit(data: Any, output: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    else:
        print_table(rows, head)


def describe(exc: RaftqError) -> str:
    flag = {"priority": "--priority", "queue": "--queue", "name": "NAME", "args": "--args",
            "kwargs": "--kwargs", "delay_ms": "--delay", "id": "--id",
            "max_attempts": "--max-attempts"}.get(exc.field or "")
    return f"{flag}: {exc.message}" if flag else exc.message
