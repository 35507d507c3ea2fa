"""``raftq stats``: queue depths by queue and status, and bars of the ready tasks by priority."""

from __future__ import annotations

from typing import Any

import click

from raftq.cli import show
from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError

BAR_WIDTH = 40


def priority_bars(queues: dict[str, Any], width: int = BAR_WIDTH) -> list[str]:
    """One bar per queue and priority level with ready tasks, highest level first,
    scaled so the longest is ``width`` characters."""
    levels = [(queue, int(prio), n) for queue, depth in sorted(queues.items())
              for prio, n in depth.get("ready_by_priority", {}).items() if n]
    if not levels:
        return []
    most = max(n for _, _, n in levels)
    digits = len(str(most))
    name_width = max(len(q) for q, _, _ in levels)
    lines = []
    last_queue = None
    for queue, prio, n in sorted(levels, key=lambda level: (level[0], -level[1])):
        label = queue if queue != last_queue else ""
        last_queue = queue
        bar = "█" * max(1, round(n / most * width))
        lines.append(f"  {label:<{name_width}}  {show.priority(prio):>8}  {n:>{digits}}  {bar}")
    return lines


@click.command(short_help="Queue depths by status, and ready tasks by priority.")
@NODES
@OUTPUT
def stats(nodes: str | None, output: str) -> None:
    """Queue depths by queue and status, with the ready tasks by priority."""
    try:
        queues = make_client(nodes).queues()
    except RaftqError as exc:
        fail(exc.message)
    rows = [[q, d["queued"], d.get("waiting", 0), d["scheduled"], d["leased"], d["succeeded"],
             d["dead"], d["cancelled"]] for q, d in sorted(queues.items())]
    emit(queues, output, ["QUEUE", "QUEUED", "WAITING", "SCHEDULED", "LEASED", "SUCCEEDED",
                          "DEAD", "CANCELLED"], rows)
    if output == "table":
        bars = priority_bars(queues)
        if bars:
            click.echo("\nready by priority:")
            for line in bars:
                click.echo(line)
        elif not queues:
            click.echo("(no tasks yet)")


COMMANDS = [stats]
