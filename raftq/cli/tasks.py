"""Task commands: ``raftq submit``, ``raftq status``, ``raftq list``, ``raftq cancel``,
``raftq retry-now``."""

from __future__ import annotations

import datetime as dt
import json
import re
import shlex
import time
from typing import Any

import click

from raftq.cli import show
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


@click.command(cls=_SubmitCommand, short_help="Submit a task: raftq submit add --args 2 3.")
@click.argument("name")
@click.argument("values", nargs=-1, metavar="[ARGS]...")
@click.option("--args", "args_flag", is_flag=True,
              help="Marks the positional arguments that follow (optional): JSON values, "
                   "bare words are strings; negative numbers are numbers.")
@click.option("--args-json", default=None, metavar="JSON",
              help="All positional arguments as one JSON list, e.g. '[-1, \"x y\"]'.")
@click.option("--kwargs", default=None, help="Keyword arguments as a JSON object.")
@click.option("--priority", default=None,
              help="critical, high, normal, low or 0-255 (default: the task's definition, "
                   "else normal).")
@click.option("--queue", default=None,
              help="Queue (default: the task's definition, else default).")
@click.option("--delay", type=click.FloatRange(min=0), default=None,
              help="Seconds before the task is ready.")
@click.option("--eta", default=None, metavar="TIME",
              help="When the task becomes ready: ISO time (local unless it has an offset), "
                   "e.g. 2026-11-28T18:30:00, or epoch seconds.")
@click.option("--id", "task_id", default=None, help="Task id (idempotency key).")
@click.option("--max-attempts", type=click.IntRange(1, 1000), default=None,
              help="Attempts before the task is a dead letter (default 3).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds one attempt may run (default 300).")
@click.option("--retry-backoff", type=click.FloatRange(min=0), default=None,
              help="Seconds before the first retry, doubling after (default 1).")
@click.option("--result-ttl", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Seconds the finished task and its result are kept (default: the "
                   "node's result_ttl_ms, 24 h).")
@click.option("--tenant", default=None, help="Whose task it is: tenants take turns.")
@click.option("--wait", is_flag=True, help="Wait for the result and print it.")
@click.option("--wait-timeout", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="With --wait: seconds to wait for the result.")
@NODES
def submit(name: str, values: tuple[str, ...], args_flag: bool, args_json: str | None,
           kwargs: str | None, priority: str | None, queue: str | None, delay: float | None,
           eta: str | None, task_id: str | None, max_attempts: int | None,
           timeout: float | None, retry_backoff: float | None, result_ttl: float | None,
           tenant: str | None, wait: bool, wait_timeout: float, nodes: str | None) -> None:
    """Submit a task by name, e.g. raftq submit add --args 2 3 --wait.

    Prints the task id; with --wait, the result when it is there.
    """
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
    prio: Any = int(priority) if priority and priority.isdigit() else priority
    due = _eta(eta) if eta is not None else None
    if due is not None and delay is not None:
        fail("--eta: give --eta or --delay, not both")
    client = make_client(nodes)
    try:
        handle = client.submit(name, args, kw, queue=queue, priority=prio, delay=delay,
                               eta=due, id=task_id, max_attempts=max_attempts,
                               timeout=timeout, retry_backoff=retry_backoff,
                               result_ttl=result_ttl, tenant=tenant)
        click.echo(handle.id)
        if not handle.created:
            state = handle.task.get("status", "unknown")
            click.echo(f"task {handle.id} already existed (status {state}); nothing new was "
                       "submitted", err=True)
        if wait:
            click.echo(json.dumps(client.result(handle.id, timeout=wait_timeout)))
    except RaftqError as exc:
        fail(describe(exc))
    except TimeoutError:
        fail(f"--wait-timeout: no result within {wait_timeout:g} s; the task goes on "
             f"(raftq status {handle.id})")


def _eta(value: str) -> float:
    """Epoch seconds of ``--eta``: ISO 8601 (naive is local time) or epoch seconds."""
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(value).timestamp()
    except ValueError:
        fail(f"--eta: {value!r} is neither an ISO time (2026-11-28T18:30:00) nor epoch seconds")


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _history(errors: list[dict[str, Any]], now: int) -> list[str]:
    """Every attempt's error in order; where attempts start again at 1 the
    task was requeued from the dead letters, and the history says so."""
    lines: list[str] = []
    last_attempt = 0
    for err in errors:
        if err["attempt"] <= last_attempt:
            lines.append("  -- requeued from the dead letters --")
        last_attempt = err["attempt"]
        e = err.get("error") or {}
        lines.append(f"  attempt {err['attempt']} at {show.when(err.get('at_ms'), now)}: "
                     f"{e.get('type', 'Error')}: {e.get('message', '')}")
    return lines


def status_lines(task: dict[str, Any], now: int) -> list[str]:
    """``raftq status`` for a person: names, local times, the due time, the last traceback."""
    rows: list[tuple[str, str]] = [
        ("id", task["id"]), ("name", task["name"]), ("queue", task["queue"]),
        ("priority", show.priority(task["priority"])), ("status", task["status"]),
        *([("note", task["note"])] if task.get("note") else []),
        ("attempts", f"{task['attempts']} of {task['max_attempts']}"),
        ("created", show.when(task.get("created_ms"), now)),
    ]
    if task["status"] == "scheduled" or (task.get("ready_at_ms") and task["status"] == "queued"):
        rows.append(("due", show.when(task.get("ready_at_ms"), now)))
    lease = task.get("lease")
    if lease:
        # The API never shows a lease's token (only the claim's answer carries it).
        rows.append(("lease", f"worker {lease['worker_id']}, "
                              f"expires {show.when(lease.get('expires_ms'), now)}"))
    if task.get("workflow_id"):
        rows.append(("workflow", task["workflow_id"]))
    if task.get("depends_on"):
        run_when = task.get("run_when", "success")
        when = "" if run_when == "success" else f" (runs on {run_when})"
        rows.append(("parents", ", ".join(task["depends_on"]) + when))
    if task.get("children"):
        rows.append(("children", ", ".join(task["children"])))
    rows += [("args", _plain(task.get("args"))), ("kwargs", _plain(task.get("kwargs")))]
    if task["status"] == "succeeded":
        rows.append(("result", _plain(task.get("result"))))
    if task.get("finished_ms"):
        rows.append(("finished", show.when(task["finished_ms"], now)))
    lines = [f"{key:>9}: {value}" for key, value in rows]
    errors = task.get("errors") or []
    if errors:
        lines += ["", "errors:", *_history(errors, now)]
        trace = (errors[-1].get("error") or {}).get("traceback")
        if trace:
            lines += ["", "last traceback:", *("  " + t for t in str(trace).rstrip().splitlines())]
    return lines


@click.command(short_help="Show one task, its errors and last traceback.")
@click.argument("task_id")
@NODES
@OUTPUT
def status(task_id: str, nodes: str | None, output: str) -> None:
    """Show one task: times, due time, lease, errors and the last traceback."""
    try:
        task = make_client(nodes).get(task_id)
    except RaftqError as exc:
        fail(describe(exc))
    if output != "table":
        emit(task, output, [], [])
        return
    for line in status_lines(task, int(time.time() * 1000)):
        click.echo(line)


TASK_HEAD = ["ID", "NAME", "QUEUE", "PRIORITY", "STATUS", "ATTEMPTS", "CREATED"]


def _task_rows(tasks: list[dict[str, Any]]) -> list[list[Any]]:
    return [[t["id"], t["name"], t["queue"], show.priority(t["priority"]),
             f"{t['status']} ({t['note']})" if t.get("note") else t["status"],
             t["attempts"], show.short_ago(t.get("created_ms"))] for t in tasks]


@click.command("list")
@click.option("--status", "status_", default=None, help="Only tasks with this status.")
@click.option("--queue", default=None, help="Only tasks of this queue.")
@click.option("--name", default=None, help="Only tasks with this task name.")
@click.option("--tenant", default=None, help="Only tasks of this tenant.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Tasks per page.")
@click.option("--cursor", default=None,
              help="Start after the page that printed this cursor (see the end of the list).")
@NODES
@OUTPUT
def list_(status_: str | None, queue: str | None, name: str | None, tenant: str | None,
          limit: int, cursor: str | None, nodes: str | None, output: str) -> None:
    """List tasks, newest first, a page at a time."""
    try:
        page = make_client(nodes).list_page(status=status_, queue=queue, name=name,
                                            tenant=tenant, limit=limit, cursor=cursor)
    except RaftqError as exc:
        flags = ("status", "queue", "cursor", "name", "tenant")
        fail(f"--{exc.field}: {exc.message}" if exc.field in flags else exc.message)
    tasks = page["tasks"]
    emit(tasks, output, TASK_HEAD, _task_rows(tasks))
    if page["next_cursor"]:
        click.echo(f"more: raftq list --cursor {shlex.quote(page['next_cursor'])} "
                   "(with the same filters)", err=True)
    elif output == "table" and not tasks:
        click.echo("(no tasks)", err=True)


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


@click.command("retry-now", short_help="Run a task in its retry backoff now.")
@click.argument("task_id")
@NODES
def retry_now(task_id: str, nodes: str | None) -> None:
    """Run a task waiting out its retry backoff now (its attempts stand; admin key)."""
    try:
        task = make_client(nodes).retry_now(task_id)
    except RaftqError as exc:
        fail(exc.message)
    click.echo(f"{task_id}: {task.get('status', 'queued')}")


COMMANDS = [submit, status, list_, cancel, retry_now]
