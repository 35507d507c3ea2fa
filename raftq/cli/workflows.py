"""``raftq workflow``: workflows listed, one's tasks as a tree, and cancelling one."""

from __future__ import annotations

import shlex
from typing import Any

import click

from raftq.cli import show
from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError


@click.group()
def workflow() -> None:
    """Workflows: list them, show one as a tree, cancel one."""


def tree_lines(view: dict[str, Any]) -> list[str]:
    """Each task under its first parent in the workflow, indented; a task with more
    parents says which others it waits for."""
    tasks = view["tasks"]
    key_of = {t["id"]: t["key"] for t in tasks}
    children: dict[str, list[dict[str, Any]]] = {}
    roots = []
    for t in tasks:
        inside = [p for p in t.get("depends_on", []) if p in key_of]
        if inside:
            children.setdefault(inside[0], []).append(t)
        else:
            roots.append(t)
    lines: list[str] = []

    def show(t: dict[str, Any], depth: int) -> None:
        parents = [key_of.get(p, p) for p in t.get("depends_on", [])]
        also = f"  (after {', '.join(parents)})" if len(parents) > 1 else ""
        when = f" [{t['run_when']}]" if t.get("run_when", "success") != "success" else ""
        lines.append(f"{'  ' * depth}{t['key']}  {t.get('name', '')}  {t['status']}{when}"
                     f"  {t['id']}{also}")
        for child in children.get(t["id"], []):
            show(child, depth + 1)

    for root in roots:
        show(root, 0)
    return lines


@workflow.command("list")
@click.option("--status", "status_", default=None,
              help="Only workflows with this status: running, succeeded, failed, cancelled.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Workflows per page.")
@click.option("--cursor", default=None,
              help="Start after the page that printed this cursor (see the end of the list).")
@NODES
@OUTPUT
def workflow_list(status_: str | None, limit: int, cursor: str | None, nodes: str | None,
                  output: str) -> None:
    """Workflows, newest first, a page at a time."""
    try:
        page = make_client(nodes).workflows(status=status_, limit=limit, cursor=cursor)
    except RaftqError as exc:
        fail(f"--{exc.field}: {exc.message}" if exc.field in ("status", "cursor")
             else exc.message)
    flows = page["workflows"]
    rows = [[w["id"], w["status"], w["tasks"], w["open"], show.short_ago(w["created_ms"])]
            for w in flows]
    emit(flows, output, ["ID", "STATUS", "TASKS", "OPEN", "CREATED"], rows)
    if page["next_cursor"]:
        click.echo(f"more: raftq workflow list --cursor {shlex.quote(page['next_cursor'])} "
                   "(with the same filters)", err=True)
    elif output == "table" and not flows:
        click.echo("(no workflows)", err=True)


@workflow.command("show")
@click.argument("workflow_id")
@NODES
@OUTPUT
def workflow_show(workflow_id: str, nodes: str | None, output: str) -> None:
    """A workflow's status and its tasks, as an indented tree."""
    from raftq.client.canvas import get_workflow

    try:
        view = get_workflow(make_client(nodes), workflow_id)
    except RaftqError as exc:
        fail(exc.message)
    if output != "table":
        emit(view, output, [], [])
        return
    click.echo(f"workflow {view['id']}: {view['status']}")
    for line in tree_lines(view):
        click.echo("  " + line)


@workflow.command("cancel")
@click.argument("workflow_id")
@NODES
def workflow_cancel(workflow_id: str, nodes: str | None) -> None:
    """Cancel every task of the workflow that has not started."""
    from raftq.client.canvas import cancel_workflow

    try:
        answer = cancel_workflow(make_client(nodes), workflow_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{workflow_id}: {answer['cancelled']} task(s) cancelled; "
               f"{answer['workflow']['status']}")


COMMANDS = [workflow]
