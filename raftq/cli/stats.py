"""``raftq stats``: queue depths by queue and status."""

from __future__ import annotations

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError


@click.command()
@NODES
@OUTPUT
def stats(nodes: str | None, output: str) -> None:
    """Queue depths by queue and status."""
    try:
        queues = make_client(nodes).queues()
    except RaftqError as exc:
        fail(exc.message)
    rows = [[q, d["queued"], d["scheduled"], d["leased"], d["succeeded"], d["dead"],
             d["cancelled"]] for q, d in sorted(queues.items())]
    emit(queues, output, ["QUEUE", "QUEUED", "SCHEDULED", "LEASED", "SUCCEEDED", "DEAD",
                          "CANCELLED"], rows)


COMMANDS = [stats]
