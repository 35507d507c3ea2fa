"""``raftq explain``, ``raftq limits`` and ``raftq queue``: flow control (docs/flow-control.md)."""

from __future__ import annotations

import json

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError


@click.command(short_help="Why a task waits: raftq explain ID.")
@click.argument("task_id")
@NODES
@OUTPUT
def explain(task_id: str, nodes: str | None, output: str) -> None:
    """What holds a task: its schedule, a paused queue, a limit, higher priorities,
    its tenant's turn, no worker on its queue."""
    try:
        answer = make_client(nodes).explain(task_id)
    except RaftqError as exc:
        fail(exc.message)
    if output != "table":
        emit(answer, output, [], [])
        return
    tenant = f", tenant {answer['tenant']}" if answer.get("tenant") else ""
    click.echo(f"{answer['id']}: {answer['status']} in queue {answer['queue']}{tenant}")
    for reason in answer["reasons"] or [{"message": "nothing holds it: a claim takes it next"}]:
        click.echo(f"  - {reason['message']}")
    for limit in answer.get("limits", []):
        click.echo(f"  limit {limit['key']}: room {limit['room']}")


@click.group()
def limits() -> None:
    """Rate and concurrency limits: list, set, delete."""


@limits.command("list")
@NODES
@OUTPUT
def limits_list(nodes: str | None, output: str) -> None:
    """Every rate and concurrency limit with its room, running and waiting tasks."""
    try:
        client = make_client(nodes)
        rates, concurrency = client.limits("limits"), client.limits("concurrency")
    except RaftqError as exc:
        fail(exc.message)
    rows = [[x["key"], "rate", f"{x['rate']} per {x['per_ms']} ms, burst {x['burst']}",
             x["room"], x["waiting"]] for x in rates]
    rows += [[x["key"], "concurrency", f"max {x['max']} ({x['running']} running)",
              x["max"] - x["running"], x["waiting"]] for x in concurrency]
    emit({"rate": rates, "concurrency": concurrency}, output,
         ["KEY", "KIND", "LIMIT", "ROOM", "WAITING"], rows)


@limits.command("set", short_help="Set a limit: --rate N [--per S] [--burst N] or --max N.")
@click.argument("key")
@click.option("--rate", type=click.IntRange(1, 1_000_000), default=None,
              help="Starts per --per seconds.")
@click.option("--per", type=click.FloatRange(0.001, 86_400), default=1.0, show_default=True)
@click.option("--burst", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
@click.option("--max", "max_", type=click.IntRange(1, 1_000_000), default=None,
              help="At most this many leased at once.")
@NODES
def limits_set(key: str, rate: int | None, per: float, burst: int, max_: int | None,
               nodes: str | None) -> None:
    """Set the rate limit (--rate) or the concurrency limit (--max) of KEY (a rate_key or
    concurrency_key, task:NAME or tenant:TENANT)."""
    if (rate is None) == (max_ is None):
        fail("give --rate or --max (one of them)")
    try:
        client = make_client(nodes)
        if rate is not None:
            client.set_rate_limit(key, rate, per, burst)
        else:
            assert max_ is not None
            client.set_concurrency_limit(key, max_)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{key}: set")


@limits.command("delete")
@click.argument("key")
@click.option("--concurrency", is_flag=True, help="The concurrency limit, not the rate limit.")
@NODES
def limits_delete(key: str, concurrency: bool, nodes: str | None) -> None:
    """Delete KEY's rate limit (or with --concurrency its concurrency limit)."""
    try:
        make_client(nodes).delete_limit(key, "concurrency" if concurrency else "limits")
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{key}: deleted")


@limits.command("sync")
@click.option("--app", "app", required=True, metavar="MODULE[,MODULE]",
              help="Modules whose @task(rate_limit=...) declare rate limits.")
@click.option("--burst", type=click.IntRange(1, 1_000_000), default=1, show_default=True)
@NODES
def limits_sync(app: str, burst: int, nodes: str | None) -> None:
    """Put the rate limits task:NAME that @task(rate_limit=...) declares in MODULE."""
    from raftq.client.task import default_registry
    from raftq.worker.cli import import_app

    import_app([m.strip() for m in app.split(",") if m.strip()])
    declared = default_registry.rate_limits()
    if not declared:
        fail(f"--app: {app} declares no rate limit (@task(rate_limit=...))")
    client = make_client(nodes)
    for name, rate, per_ms in declared:
        try:
            client.set_rate_limit(f"task:{name}", rate, per_ms / 1000, burst)
        except RaftqError as exc:
            fail(f"task:{name}: {exc.message}")
        click.echo(f"task:{name}: {rate} per {per_ms} ms")


@click.command("queue", short_help="A queue's settings: --pause/--resume, --max-queued N, "
               "--weights JSON.")
@click.argument("name")
@click.option("--pause/--resume", "paused", default=None, help="Stop or restart claims.")
@click.option("--max-queued", type=click.IntRange(0, 100_000_000), default=None,
              help="Refuse submissions past N waiting tasks (0: no cap).")
@click.option("--weights", default=None, metavar="JSON", help='Tenant weights: {"acme": 3}.')
@NODES
@OUTPUT
def queue(name: str, paused: bool | None, max_queued: int | None, weights: str | None,
          nodes: str | None, output: str) -> None:
    """Show a queue's settings, changing those given."""
    tenant_weights = None
    if weights is not None:
        try:
            tenant_weights = json.loads(weights)
        except ValueError:
            fail("--weights must be a JSON object of tenant: weight")
        if not isinstance(tenant_weights, dict):
            fail("--weights must be a JSON object of tenant: weight")
    try:
        settings = make_client(nodes).set_queue(name, max_queued=max_queued, paused=paused,
                                                 tenant_weights=tenant_weights)
    except RaftqError as exc:
        fail(exc.message)
    rows = [[settings["name"], settings["paused"], settings["max_queued"] or "-",
             json.dumps(settings["tenant_weights"])]]
    emit(settings, output, ["QUEUE", "PAUSED", "MAX QUEUED", "WEIGHTS"], rows)


COMMANDS = [explain, limits, queue]
