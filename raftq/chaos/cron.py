"""The ``cron`` scenario: schedules keep firing once per tick while the leader is
killed, partitioned and paused.

At the first fault the scenario puts ``INTERVALS`` schedules firing every
second and a few cron ones (6-field, seconds first, in three time zones), all
with catch-up ``all``, into a queue no worker reads; their tasks expire after
``EXPIRES_MS`` so the run still drains. A watcher polls the newest tasks of
that queue every ``POLL_S`` and notes when each first appears: the fire delay
is that moment minus the tick. When the fault phase ends it pauses every
schedule (retrying until the cluster is whole again), reads back every task
the schedules submitted and the schedules themselves through the leader, and
records one ``expect`` per schedule for the checker: every tick from its
first fire to its last was fired (the outages caught up), and none twice (a
tick fired twice would count in the schedule's ``fired`` without a task of its
own). The delays go to ``cron.json`` in the run's directory and into the
summary.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raftq.chaos.history import now_ms
from raftq.chaos.http import call
from raftq.chaos.nemesis import Active, Context, kill_leader, partition_leader, pause_leader
from raftq.server import cron
from raftq.state.commands import ScheduleSpec, TaskSpec

QUEUE = "chaos-cron"
INTERVALS = 50
CRONS = {"cron-berlin": ("* * * * * *", "Europe/Berlin"),
         "cron-new-york": ("*/2 * * * * *", "America/New_York"),
         "cron-kolkata": ("*/5 * * * * *", "Asia/Kolkata")}
EXPIRES_MS = 3_000
WINDOW_MS = 600_000
POLL_S = 0.25


def _bodies() -> dict[str, dict[str, Any]]:
    task = {"name": "cron-tick", "queue": QUEUE, "expires_ms": EXPIRES_MS,
            "result_ttl_ms": 3_600_000}
    common = {"task": task, "overlap": "allow", "catchup": "all",
              "catchup_window_ms": WINDOW_MS}
    out = {f"every-{i:02d}": {**common, "every_ms": 1_000} for i in range(INTERVALS)}
    for sid, (expr, tz) in CRONS.items():
        out[sid] = {**common, "cron": expr, "timezone": tz}
    return out


def _percentile(values: Sequence[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


class CronWatch:
    def __init__(self, ctx: Context, run_dir: Path) -> None:
        self.ctx = ctx
        self.run_dir = run_dir
        self.bodies = _bodies()
        self.first_seen: dict[str, float] = {}
        self.thread = threading.Thread(target=self.run, name="cron-watch", daemon=True)

    def _call(self, method: str, path: str, body: Any = None, until: float = 60.0) -> Any:
        """The answer of the first node that gives one (any node forwards writes)."""
        deadline = time.monotonic() + until
        urls = self.ctx.cluster.urls
        i = 0
        while time.monotonic() < deadline:
            reply = call(urls[i % len(urls)], method, path, body, timeout=3)
            if reply.status is not None and reply.status < 500:
                return reply.body
            i += 1
            time.sleep(0.2)
        raise RuntimeError(f"{method} {path}: no node answered within {until:.0f} s")

    def start(self) -> None:
        for sid, body in self.bodies.items():
            self._call("PUT", f"/v1/schedules/{sid}", body)
        self.thread.start()
        self.ctx.threads.append(self.thread)  # the runner joins it before judging

    def run(self) -> None:
        urls, i = self.ctx.cluster.urls, 0
        while not self.ctx.stopping.is_set():
            reply = call(urls[i % len(urls)], "GET", f"/v1/tasks?queue={QUEUE}&limit=500",
                         timeout=2)
            seen = now_ms()
            if reply.status == 200 and isinstance(reply.body, dict):
                for task in reply.body.get("tasks", []):
                    self.first_seen.setdefault(task["id"], seen)
            else:
                i += 1  # that node is down or cut off: ask another
            time.sleep(POLL_S)
        self.finish()

    def _all_tasks(self) -> list[str]:
        ids: list[str] = []
        cursor: str | None = None
        while True:
            path = f"/v1/tasks?queue={QUEUE}&limit=1000&consistency=leader"
            page = self._call("GET", path + (f"&cursor={cursor}" if cursor else ""))
            ids += [t["id"] for t in page["tasks"]]
            cursor = page.get("next_cursor")
            if not cursor:
                return ids

    def finish(self) -> None:
        """When the faults are over: pause the schedules (retrying until the cluster is
        whole again) and judge what they did."""
        try:
            self._judge()
        except Exception as exc:  # a check that could not run must fail the run
            self.ctx.history.record({"type": "expect", "t": now_ms(), "ok": False,
                                     "what": "cron: every tick fired, none twice",
                                     "detail": f"the check could not run: {exc}"})

    def _judge(self) -> None:
        for sid in self.bodies:
            self._call("POST", f"/v1/schedules/{sid}/pause", {}, until=120)
        ticks: dict[str, list[int]] = {sid: [] for sid in self.bodies}
        for task_id in self._all_tasks():
            sid, _, tick = task_id.partition("@")
            ticks.setdefault(sid, []).append(int(tick))
        delays = [seen - int(tid.partition("@")[2]) for tid, seen in self.first_seen.items()]
        for sid, body in self.bodies.items():
            view = self._call("GET", f"/v1/schedules/{sid}?consistency=leader")["schedule"]
            got = sorted(ticks[sid])
            spec = ScheduleSpec(sid, TaskSpec("", "", "", 0, b"", 0, 0, 1, 1, 0, 1),
                                cron=body.get("cron", ""), every_ms=body.get("every_ms", 0),
                                timezone=body.get("timezone", "UTC"))
            want = [got[0], *cron.ticks_after(spec, got[0], got[-1], 100_000)] if got else []
            missing = sorted(set(want) - set(got))
            ok = bool(got) and not missing and view["fired"] == len(got)
            detail = (f"{sid}: {len(got)} ticks fired, schedule counts {view['fired']}, "
                      f"{len(missing)} missing (e.g. {missing[:3]})")
            self.ctx.history.record({"type": "expect", "t": now_ms(), "ok": ok, "detail": detail,
                                     "what": "cron: every tick fired, none twice"})
        p50, p99 = _percentile(delays, 0.5), _percentile(delays, 0.99)
        result = {"schedules": len(self.bodies), "fires": sum(len(t) for t in ticks.values()),
                  "delay_ms": {"p50": p50, "p99": p99, "max": max(delays, default=None),
                               "samples": len(delays), "poll_ms": POLL_S * 1000}}
        (self.run_dir / "cron.json").write_text(json.dumps(result, indent=2))
        self.ctx.history.record({"type": "expect", "t": now_ms(), "ok": True,
                                 "what": f"cron: fire delay p50 {p50 or 0:.0f} ms, p99 "
                                         f"{p99 or 0:.0f} ms ({len(delays)} fires seen)"})


class CronFault:
    """At the first call start the schedules and the watcher (which judges when the
    faults are over); every call after kills, cuts off or pauses the leader."""

    def __init__(self) -> None:
        self.watch: CronWatch | None = None

    def __call__(self, ctx: Context) -> Active | None:
        if self.watch is None or self.watch.ctx is not ctx:
            run_dir = Path(ctx.history.path).parent
            self.watch = CronWatch(ctx, run_dir)
            self.watch.start()
            return Active("cron-start", [], lambda: None)
        fault = ctx.rng.choice([kill_leader, partition_leader, pause_leader])
        return fault(ctx)
