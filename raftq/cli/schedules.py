"""``raftq schedules``: list, show, add, pause, resume, trigger, delete, and sync the
schedules declared with ``@task(cron=...)`` in an app."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, NoReturn

import click

from raftq.cli.common import NODES, OUTPUT, emit, fail, make_client
from raftq.errors import RaftqError

# The flag that sets each field of the API, to name it in an error.
FLAGS = {"cron": "--cron", "timezone": "--timezone", "every_ms": "--every",
         "overlap": "--overlap", "catchup": "--catchup", "catchup_window_ms": "--catchup-window",
         "jitter_ms": "--jitter", "id": "SCHEDULE_ID", "task.name": "TASK",
         "task.queue": "--queue", "task.priority": "--priority", "task.args": "--args",
         "task.expires_ms": "--expires", "task.max_attempts": "--max-attempts",
         "end_ms": "--end", "start_ms": "--start"}


def _fail(exc: RaftqError) -> NoReturn:
    flag = FLAGS.get(exc.field or "")
    fail(f"{flag}: {exc.message}" if flag else exc.message)


def _when(s: dict[str, Any]) -> str:
    if "cron" in s:
        return f"{s['cron']} ({s['timezone']})"
    return f"every {s['every_ms'] / 1000:g}s"


def _time(ms: int | None) -> str:
    if not ms:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@click.group("schedules")
def schedules() -> None:
    """Periodic tasks: list, show, add, pause, trigger, sync."""


@schedules.command("list")
@NODES
@OUTPUT
def schedules_list(nodes: str | None, output: str) -> None:
    """Every schedule, with its fires so far."""
    try:
        items = make_client(nodes).schedules()
    except RaftqError as exc:
        _fail(exc)
    rows = [[s["id"], _when(s), s["task"]["name"], "yes" if s["paused"] else "no", s["fired"],
             s["skipped"], _time(s["last_tick_ms"])] for s in items]
    emit(items, output, ["ID", "WHEN", "TASK", "PAUSED", "FIRED", "SKIPPED", "LAST TICK"], rows)


@schedules.command("show")
@click.argument("schedule_id")
@NODES
@OUTPUT
def schedules_show(schedule_id: str, nodes: str | None, output: str) -> None:
    """A schedule: its next fire times and its last fires with their tasks' statuses."""
    try:
        s = make_client(nodes).schedule(schedule_id)
    except RaftqError as exc:
        _fail(exc)
    if output == "json":
        emit(s, output, [], [])
        return
    click.echo(f"{s['id']}: {_when(s)} -> {s['task']['name']} on {s['task']['queue']}"
               f"{' (paused)' if s['paused'] else ''}")
    click.echo(f"overlap {s['overlap']}, catch-up {s['catchup']} "
               f"({s['catchup_window_ms'] / 1000:g}s), jitter {s['jitter_ms'] / 1000:g}s")
    click.echo("next: " + (", ".join(_time(t) for t in s["next_fires_ms"]) or "-"))
    emit(s, output, ["TICK", "TASK", "OUTCOME", "TASK STATUS"],
         [[_time(f["tick_ms"]), f["task_id"], f["outcome"], f["task_status"] or "-"]
          for f in s["fires"]])


@schedules.command("add")
@click.argument("schedule_id")
@click.argument("task")
@click.option("--cron", default=None, help="Cron expression (5 fields, or 6 with seconds).")
@click.option("--every", type=click.FloatRange(min=0.1), default=None,
              help="Interval in seconds, instead of --cron.")
@click.option("--timezone", default=None, help="IANA time zone of --cron (default UTC).")
@click.option("--args", "args_json", default=None, help="Positional arguments, a JSON list.")
@click.option("--kwargs", "kwargs_json", default=None, help="Keyword arguments, a JSON object.")
@click.option("--queue", default=None)
@click.option("--priority", default=None, help="critical, high, normal, low or 0-255.")
@click.option("--max-attempts", type=click.IntRange(1, 1000), default=None)
@click.option("--expires", type=click.FloatRange(min=0.001), default=None,
              help="Seconds after each fire after which its task is not started.")
@click.option("--overlap", type=click.Choice(["allow", "skip", "buffer_one"]), default=None)
@click.option("--catchup", type=click.Choice(["latest", "all", "none"]), default=None)
@click.option("--catchup-window", type=click.FloatRange(min=0), default=None,
              help="Seconds: how old a missed tick may be and still fire.")
@click.option("--jitter", type=click.FloatRange(min=0), default=None,
              help="Delay each fire's task by up to this many seconds.")
@click.option("--paused/--running", default=None,
              help="Pause or run it (default: a new one runs, an existing one is left as is).")
@NODES
def schedules_add(schedule_id: str, task: str, cron: str | None, every: float | None,
                  timezone: str | None, args_json: str | None, kwargs_json: str | None,
                  queue: str | None, priority: str | None, max_attempts: int | None,
                  expires: float | None, overlap: str | None, catchup: str | None,
                  catchup_window: float | None, jitter: float | None, paused: bool | None,
                  nodes: str | None) -> None:
    """Create or update SCHEDULE_ID, running TASK on each tick (an identical one changes
    nothing)."""
    if (cron is None) == (every is None):
        fail("--cron/--every: give exactly one")
    args = _json(args_json, "--args", list) or []
    kwargs = _json(kwargs_json, "--kwargs", dict) or {}
    prio: Any = int(priority) if priority and priority.isdigit() else priority
    try:
        out = make_client(nodes).put_schedule(
            schedule_id, task, args, kwargs, cron=cron, every=every, timezone=timezone,
            queue=queue, priority=prio, max_attempts=max_attempts, expires=expires,
            overlap=overlap, catchup=catchup, catchup_window=catchup_window, jitter=jitter,
            paused=paused)
    except RaftqError as exc:
        _fail(exc)
    what = "created" if out["created"] else "updated" if out["changed"] else "unchanged"
    click.echo(f"{schedule_id}: {what}")


def _json(value: str | None, flag: str, kind: type) -> Any:
    if value is None:
        return None
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        fail(f"{flag} is not valid JSON: {exc}")
    if not isinstance(parsed, kind):
        fail(f"{flag} must be a JSON {'list' if kind is list else 'object'}")
    return parsed


def _action(name: str, help: str) -> click.Command:
    @click.argument("schedule_id")
    @NODES
    def run(schedule_id: str, nodes: str | None) -> None:
        client = make_client(nodes)
        try:
            out = getattr(client, f"{name}_schedule")(schedule_id)
        except RaftqError as exc:
            _fail(exc)
        if name == "trigger":
            click.echo(f"{schedule_id}: triggered {out['id']}")
        else:
            click.echo(f"{schedule_id}: {name}d")

    run.__doc__ = help
    return schedules.command(name)(run)


_action("pause", "Stop firing SCHEDULE_ID; ticks in the pause are not caught up.")
_action("resume", "Fire SCHEDULE_ID again from its next tick.")
_action("trigger", "Run SCHEDULE_ID's task once now.")
_action("delete", "Delete SCHEDULE_ID (the tasks it submitted stay).")


@schedules.command("sync")
@click.option("--app", "app", required=True, metavar="MODULE[,MODULE]",
              help="Modules whose @task(cron=...)/@task(every=...) declare schedules.")
@NODES
def schedules_sync(app: str, nodes: str | None) -> None:
    """Put every schedule the app declares (unchanged ones are left as they are)."""
    from raftq.client.task import default_registry
    from raftq.worker.cli import import_app

    import_app([m.strip() for m in app.split(",") if m.strip()])
    declared = default_registry.schedules()
    if not declared:
        fail(f"--app: {app} declares no schedule (@task(cron=...) or @task(every=...))")
    client = make_client(nodes)
    for schedule_id, name, periodic in declared:
        try:
            out = client.put_schedule(schedule_id, name, periodic.args, periodic.kwargs,
                                      **periodic.options)
        except RaftqError as exc:
            fail(f"{schedule_id}: {exc.message}")
        what = "created" if out["created"] else "updated" if out["changed"] else "unchanged"
        click.echo(f"{schedule_id}: {what}")


COMMANDS = [schedules]
