"""The ``raftq`` command line: thin click commands over the node and the client."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from raftq.errors import ConfigError, RaftqError

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


@click.group()
@click.version_option(package_name="raftq")
def main() -> None:
    """raftq: a task queue whose broker is its own Raft cluster."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Node config YAML (see config/node1.yaml).")
def node(config_path: str) -> None:
    """Run one cluster node (SIGTERM stops it cleanly)."""
    from raftq.server import config
    from raftq.server.node import run_node

    try:
        cfg = config.load(config_path)
    except ConfigError as exc:
        fail(f"--config: {exc.message}")
    run_node(cfg)


@main.command("gen-secret")
def gen_secret() -> None:
    """Print a new random cluster secret."""
    click.echo(secrets.token_urlsafe(32))


@main.command()
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


@main.command("cluster-status")
@click.option("--node", "node_url", default=None,
              help="Ask this node (default: the first of --nodes that answers).")
@NODES
@OUTPUT
def cluster_status(node_url: str | None, nodes: str | None, output: str) -> None:
    """Show every node's role, term, indexes and lag; exit 1 without quorum."""
    client = make_client(node_url or nodes)
    try:
        data = client.cluster()
    except RaftqError as exc:
        fail(f"no node answered: {exc}", 2)
    rows = [
        [n["id"], n["role"], n["term"], n["commit_index"], n["applied_index"], n["lag"],
         "yes" if n["reachable"] else "NO", n["raft_address"], n["http_address"]]
        for n in data["nodes"]
    ]
    emit(data, output,
         ["NODE", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "REACHABLE", "RAFT", "HTTP"], rows)
    if output == "table":
        quorum = "yes" if data["has_quorum"] else "NO"
        click.echo(f"\nleader: {data['leader'] or '-'}  term: {data['term']}  quorum: {quorum}")
    if not data["has_quorum"]:
        sys.exit(1)


def _json_option(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        fail(f"{flag} is not valid JSON: {exc}")


def _arg(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


@main.command(context_settings={"ignore_unknown_options": False})
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[ARGS]...")
@click.option("--args", "args_flag", is_flag=True,
              help="Marks the positional arguments that follow (optional): JSON values, "
                   "bare words are strings. Put `--` before negative numbers.")
@click.option("--kwargs", default=None, help="Keyword arguments as a JSON object.")
@click.option("--priority", default="normal", show_default=True,
              help="critical, high, normal, low or 0-255.")
@click.option("--queue", default="default", show_default=True)
@click.option("--delay", type=click.FloatRange(min=0), default=None,
              help="Seconds before the task is ready.")
@click.option("--id", "task_id", default=None, help="Task id (idempotency key).")
@click.option("--max-attempts", type=click.IntRange(1, 1000), default=None)
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@NODES
def submit(name: str, values: tuple[str, ...], args_flag: bool, kwargs: str | None,
           priority: str, queue: str, delay: float | None, task_id: str | None,
           max_attempts: int | None, wait: bool, nodes: str | None) -> None:
    """Submit a task by name, e.g. `raftq submit add --args 2 3 --priority high`."""
    args = [_arg(a) for a in values]
    kw = _json_option(kwargs, "--kwargs") or {}
    if not isinstance(kw, dict):
        fail("--kwargs must be a JSON object")
    prio: Any = int(priority) if priority.isdigit() else priority
    client = make_client(nodes)
    try:
        handle = client.submit(name, args, kw, queue=queue, priority=prio, delay=delay,
                               id=task_id, max_attempts=max_attempts)
        click.echo(handle.id)
        if wait:
            click.echo(json.dumps(client.result(handle.id, timeout=60)))
    except RaftqError as exc:
        fail(_describe(exc))
    except TimeoutError:
        fail("timed out waiting for the result")


def _describe(exc: RaftqError) -> str:
    flag = {"priority": "--priority", "queue": "--queue", "name": "NAME", "args": "--args",
            "kwargs": "--kwargs", "delay_ms": "--delay", "id": "--id",
            "max_attempts": "--max-attempts"}.get(exc.field or "")
    return f"{flag}: {exc.message}" if flag else exc.message


@main.command()
@click.argument("task_id")
@NODES
@OUTPUT
def status(task_id: str, nodes: str | None, output: str) -> None:
    """Show one task."""
    try:
        task = make_client(nodes).get(task_id)
    except RaftqError as exc:
        fail(_describe(exc))
    if output == "json":
        click.echo(json.dumps(task, indent=2, sort_keys=True))
        return
    for key in ("id", "name", "queue", "priority", "status", "attempts", "max_attempts",
                "args", "kwargs", "result", "created_ms", "finished_ms"):
        click.echo(f"{key:>13}: {json.dumps(task.get(key))}")
    for err in task.get("errors", []):
        e = err["error"]
        click.echo(f"  attempt {err['attempt']}: {e.get('type')}: {e.get('message')}")


def _task_rows(tasks: list[dict[str, Any]]) -> list[list[Any]]:
    return [[t["id"], t["name"], t["queue"], t["priority"], t["status"], t["attempts"]]
            for t in tasks]


TASK_HEAD = ["ID", "NAME", "QUEUE", "PRIORITY", "STATUS", "ATTEMPTS"]


@main.command("list")
@click.option("--status", "status_", default=None, help="Filter by status.")
@click.option("--queue", default=None, help="Filter by queue.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@NODES
@OUTPUT
def list_(status_: str | None, queue: str | None, limit: int, nodes: str | None,
          output: str) -> None:
    """List tasks."""
    try:
        tasks = make_client(nodes).list(status=status_, queue=queue, limit=limit)
    except RaftqError as exc:
        fail(f"--status: {exc.message}" if exc.field == "status" else exc.message)
    emit(tasks, output, TASK_HEAD, _task_rows(tasks))


@main.command()
@click.argument("task_id")
@NODES
def cancel(task_id: str, nodes: str | None) -> None:
    """Cancel a queued or scheduled task."""
    try:
        task = make_client(nodes).cancel(task_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{task_id}: {task.get('status', 'cancelled')}")


@main.group()
def dlq() -> None:
    """Dead letters: list, requeue, purge."""


@dlq.command("list")
@click.option("--queue", default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@NODES
@OUTPUT
def dlq_list(queue: str | None, limit: int, nodes: str | None, output: str) -> None:
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
    try:
        make_client(nodes).requeue(task_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{task_id}: queued")


@dlq.command("purge")
@click.argument("task_id", required=False)
@click.option("--all", "purge_all", is_flag=True, help="Purge every dead letter.")
@click.option("--queue", default=None, help="With --all: only this queue.")
@NODES
def dlq_purge(task_id: str | None, purge_all: bool, queue: str | None,
              nodes: str | None) -> None:
    if not task_id and not purge_all:
        fail("give a TASK_ID or --all")
    try:
        result = make_client(nodes).purge(id=task_id, queue=queue)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"purged {result.get('purged')}")


@main.command()
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


@main.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def chaos(args: tuple[str, ...]) -> None:
    """Fault-injection runs against real nodes: run --smoke, run --list, run --all."""
    from raftq.chaos.main import main as chaos_main

    sys.exit(chaos_main(list(args)))


def _register_optional() -> None:
    """Commands that live in their own modules."""
    try:
        from raftq.worker.cli import worker_command, workers_command
    except ImportError:
        pass
    else:
        main.add_command(worker_command, "worker")
        main.add_command(workers_command, "workers")
    try:
        from raftq.bench.command import bench_command
    except ImportError:
        pass
    else:
        main.add_command(bench_command, "bench")


_register_optional()
