"""``raftq dlq``: dead letters, listed, requeued and purged."""

from __future__ import annotations

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError


@click.group()
def dlq() -> None:
    """Dead letters: list, requeue, purge."""


@dlq.command("list")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@NODES
@OUTPUT
def dlq_list(queue: str | None, limit: int, nodes: str | None, output: str) -> None:
    """Dead letters with their attempts and last error."""
    try:
        tasks = make_client(nodes).dead_letters(queue=queue, limit=limit)
    except RaftqError as exc:
        fail(exc.message)
    rows = [[t["id"], t["name"], t["queue"], t["attempts"],
             (t["errors"][-1]["error"].get("message", "") if t["errors"] else "")[:60]]
            for t in tasks]
    emit(tasks, output, ["ID", "NAME", "QUEUE", "ATTEMPTS", "LAST ERROR"], rows)


@dlq.command("requeue")
@click.argument("task_id")
@NODES
def dlq_requeue(task_id: str, nodes: str | None) -> None:
    """Put a dead letter back in its queue, its attempts starting again."""
    try:
        make_client(nodes).requeue(task_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{task_id}: queued")


@dlq.command("purge", short_help="Delete one dead letter, or all of them (--all).")
@click.argument("task_id", required=False)
@click.option("--all", "purge_all", is_flag=True, help="Purge every dead letter.")
@click.option("--queue", default=None, help="With --all: only this queue.")
@NODES
def dlq_purge(task_id: str | None, purge_all: bool, queue: str | None,
              nodes: str | None) -> None:
    """Delete one dead letter, or all of them (--all, optionally of one --queue)."""
    if not task_id and not purge_all:
        fail("give a TASK_ID or --all")
    try:
        result = make_client(nodes).purge(id=task_id, queue=queue)
    except RaftqError as exc:
        fail(exc.message)
    if task_id:
        click.echo(f"{task_id}: purged")
    else:
        n = int(result.get("purged", 0))
        where = f" from queue {queue}" if queue else ""
        click.echo(f"purged {n} dead letter{'' if n == 1 else 's'}{where}")


COMMANDS = [dlq]
