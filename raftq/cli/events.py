"""``raftq events``: task changes as they happen, from the event stream."""

from __future__ import annotations

import datetime as dt
import json

import click

from raftq.cli.common import NODES, fail, make_client
from raftq.errors import EventsGone, RaftqError


def _line(change: dict[str, object]) -> str:
    at = dt.datetime.fromtimestamp(int(str(change["at_ms"])) / 1000).strftime("%H:%M:%S.%f")[:-3]
    extra = change.get("error") or change.get("progress") or ""
    if isinstance(extra, dict):
        extra = " ".join(f"{k}={v}" for k, v in extra.items())
    return (f"{change['index']:>8}  {at}  {change['type']:<9}  {change['task_id']}  "
            f"{change['name']}  {change['queue']}  attempt {change['attempt']}  {extra}").rstrip()


@click.command("events", short_help="Task changes as they happen (--follow).")
@click.option("--follow", "-f", is_flag=True,
              help="Keep following (across reconnects and failover) instead of ending once "
                   "the node's backlog is out.")
@click.option("--since", type=click.IntRange(min=0), default=None,
              help="Start after this log index (default: from now; 0: all the node holds).")
@click.option("--queue", default=None, help="Only tasks of this queue.")
@click.option("--name", default=None, help="Only tasks of this name.")
@click.option("--task", "task_id", default=None, help="Only this task.")
@click.option("--output", "-o", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="table: one line per change; json: one object a line.")
@NODES
def events(follow: bool, since: int | None, queue: str | None, name: str | None,
           task_id: str | None, output: str, nodes: str | None) -> None:
    """Task changes (submitted, leased, progress, succeeded, failed, retried, dead, ...),
    each with the Raft log index that made it."""
    client = make_client(nodes, retry_for=60.0 if follow else 10.0)
    try:
        for change in client.events(since, queue=queue, name=name, task=task_id,
                                    follow=follow):
            click.echo(json.dumps(change, sort_keys=True) if output == "json" else _line(change))
    except EventsGone as exc:
        fail(f"--since: {exc.message}")
    except RaftqError as exc:
        fail(exc.message)
    except KeyboardInterrupt:
        pass


COMMANDS = [events]
