"""What every ``raftq`` command shares: the common options, errors, the client, output.

Options that every command talking to a cluster takes live here, so adding one
(say ``--api-key``) is one change.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TypeVar

import click

from raftq.errors import ConfigError, RaftqError

OUTPUT = click.option("--output", "-o", type=click.Choice(["table", "json", "yaml"]),
                      default="table", show_default=True, help="Output format.")
_NODES = click.option("--nodes", envvar="RAFTQ_NODES", default=None,
                      help="Comma-separated node URLs (default: $RAFTQ_NODES or the local "
                           "3-node cluster).")


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a connection option where ``make_client`` finds it."""
    if value is not None:
        ctx.meta[f"raftq.{param.name}"] = value
    return value


_API_KEY = click.option("--api-key", envvar="RAFTQ_API_KEY", metavar="KEY", default=None,
                        expose_value=False, callback=_remember,
                        help="API key sent to the nodes (default: $RAFTQ_API_KEY).")
_CA_FILE = click.option("--ca-file", envvar="RAFTQ_CA_FILE", metavar="PEM", default=None,
                        type=click.Path(exists=True, dir_okay=False), expose_value=False,
                        callback=_remember,
                        help="CA certificate(s) that verify https:// nodes (default: "
                             "$RAFTQ_CA_FILE, else the system's CAs).")

F = TypeVar("F", bound=Callable[..., Any])


def NODES(command: F) -> F:  # noqa: N802 - used like the option constants
    """``--nodes``, ``--api-key`` and ``--ca-file``: how a command reaches the cluster."""
    return _NODES(_API_KEY(_CA_FILE(command)))


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# A command gives up after this long without an answer (the client's own
# default, 30 s, suits programs riding out an election, not a person waiting).
RETRY_FOR_S = 10.0


def make_client(nodes: str | None, *, flag: str = "--nodes", retry_for: float = RETRY_FOR_S,
                timeout: float = 10.0) -> Any:
    """A client for ``nodes``; a bad node address ends the command naming ``flag``."""
    from raftq.client.sync import Client

    meta = click.get_current_context().meta
    try:
        return Client(nodes.split(",") if nodes else None, retry_for=retry_for,
                      timeout=min(timeout, retry_for), api_key=meta.get("raftq.api_key"),
                      ca_file=meta.get("raftq.ca_file"))
    except ConfigError as exc:
        where = flag if nodes else "$RAFTQ_NODES"
        if "API key" in exc.message:
            where = "--api-key"
        fail(f"{where}: {exc.message}")


def print_table(rows: Sequence[Sequence[Any]], head: Sequence[str]) -> None:
    cells = [[str(h) for h in head]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    for r in cells:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def emit(data: Any, output: str, head: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """``data`` as JSON or YAML, or ``rows`` under ``head`` as a table."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True))
    elif output == "yaml":
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=True, allow_unicode=True).rstrip())
    else:
        print_table(rows, head)


def describe(exc: RaftqError) -> str:
    flag = {"priority": "--priority", "queue": "--queue", "name": "NAME", "args": "--args",
            "kwargs": "--kwargs", "delay_ms": "--delay", "eta_ms": "--eta", "id": "--id",
            "max_attempts": "--max-attempts", "timeout_ms": "--timeout",
            "retry_backoff_ms": "--retry-backoff",
            "result_ttl_ms": "--result-ttl"}.get(exc.field or "")
    return f"{flag}: {exc.message}" if flag else exc.message
