"""Tasks that declare schedules, for ``raftq schedules sync --app schedule_app``."""

from __future__ import annotations

from raftq import task


@task(cron="0 3 * * *", timezone="Europe/Berlin", queue="reports")
def nightly_report() -> str:
    return "done"


@task(every=3600, schedule={"id": "hourly-ping", "args": [1], "overlap": "allow",
                            "expires": 600})
def ping(n: int) -> int:
    return n
