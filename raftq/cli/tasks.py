"""Task commands: ``raftq submit``, ``raftq status``, ``raftq list``, ``raftq cancel``."""

from __future__ import annotations

import json
import re
from typing import Any

import click

from raftq.cli.common import NODES, OUTPUT, describe, emit, fail, make_client
from raftq.errors import RaftqError


def _json_option(value: str | None, flag: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as exc:
        fail(f"{flag} is not valid JSON: {exc}")


# A negative number where an argument is expected (`--args 2 -1`); click
# would take it for an unknown option.
_NEGATIVE = re.compile(r"-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_ESCAPE = "\x00"


def _arg(value: str) -> Any:
    value = value.removeprefix(_ESCAPE)
    try:
        return json.loads(value)
    except ValueError:
        return value


class _SubmitCommand(click.Command):
    """``submit`` whose positional arguments may be negative numbers."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        takes_value = {opt for p in self.params if isinstance(p, click.Option) and not p.is_flag
                       for opt in p.opts}
        own = {opt for p in self.params if isinstance(p, click.Option)
               for opt in p.opts + p.secondary_opts if opt.startswith("--")}
        out: list[str] = []
        after_dashes = False
        for i, arg in enumerate(args):
            if after_dashes:
                if arg in own:
                    raise click.UsageError(
                        f"--args: {arg!r} comes after `--`, so it would be sent as an argument; "
                        "put options before `--` (negative numbers need no `--`), or pass the "
                        "arguments with --args-json", ctx)
                out.append(arg)
            elif arg == "--":
                after_dashes = True
                out.append(arg)
            elif _NEGATIVE.fullmatch(arg) and (i == 0 or args[i - 1] not in takes_value):
                out.append(_ESCAPE + arg)
            else:
                out.append(arg)
        return super().parse_args(ctx, out)


@click.command(cls=_SubmitCommand)
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[ARGS]...")
@click.option("--args", "args_flag", is_flag=True,
              help="Marks the positional arguments that follow (optional): JSON values, "
                   "bare words are strings; negative numbers are numbers.")
@click.option("--args-json", default=None, metavar="JSON",
              help="All positional arguments as one JSON list, e.g. '[-1, \"x y\"]'.")
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
def submit(name: str, values: tuple[str, ...], args_flag: bool, args_json: str | None,
           kwargs: str | None, priority: str, queue: str, delay: float | None,
           task_id: str | None, max_attempts: int | None, wait: bool,
           nodes: str | None) -> None:
    """Submit a task by name: raftq submit add --args 2 3 --priority high."""
    if args_json is not None:
        if values:
            fail("--args-json: give the arguments either as --args-json or positionally, "
                 "not both")
        args = _json_option(args_json, "--args-json")
        if not isinstance(args, list):
            fail("--args-json must be a JSON list")
    else:
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
        fail(describe(exc))
    except TimeoutError:
        fail("timed out waiting for the result")


@click.command()
@click.argument("task_id")
@NODES
@OUTPUT
def status(task_id: str, nodes: str | None, output: str) -> None:
    """Show one task."""
    try:
        task = make_client(nodes).get(task_id)
    except RaftqError as exc:
        fail(describe(exc))
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


@click.command("list")
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


@click.command()
@click.argument("task_id")
@NODES
def cancel(task_id: str, nodes: str | None) -> None:
    """Cancel a queued or scheduled task."""
    try:
        task = make_client(nodes).cancel(task_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{task_id}: {task.get('status', 'cancelled')}")


COMMANDS = [submit, status, list_, cancel]
