"""The ``schedules`` section of ``raftq bench``: many interval schedules on the cluster.

It puts ``schedule_count`` schedules firing every ``schedule_every_ms`` (aligned:
every schedule's ticks fall on the same instants, the worst case), lets them
fire for ``schedule_seconds`` with no worker, and reads from the leader's
``/metrics`` the fire delay (a tick's time to its task committed), the
leader's time to find the due fires per round (the tick cost) and, on a
cluster the bench started, the leader's CPU.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from raftq.bench import http as h
from raftq.bench.site import CpuMeter, Site
from raftq.bench.stats import Row

if TYPE_CHECKING:
    from raftq.bench.sections import BenchConfig

Say = Callable[[str], None]
QUEUE = "bench-schedules"
_BUCKET = re.compile(r'^(\w+)_bucket\{le="([^"]+)"\} ([0-9.e+]+)$', re.M)


def buckets(metrics_text: str, name: str) -> list[tuple[float, float]]:
    """The cumulative ``(upper bound, count)`` pairs of histogram ``name``."""
    return [(float(le), float(n)) for metric, le, n in _BUCKET.findall(metrics_text)
            if metric == name]


def quantile(before: list[tuple[float, float]], after: list[tuple[float, float]],
             q: float) -> float:
    """The ``q`` quantile of what a histogram observed between two scrapes, interpolated
    within its bucket (as Prometheus' histogram_quantile does); NaN without samples."""
    counts = [(le, n - dict(before).get(le, 0.0)) for le, n in after]
    total = counts[-1][1] if counts else 0.0
    if total <= 0:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for le, n in counts:
        if n >= rank:
            if le == float("inf"):
                return lower
            return lower + (le - lower) * (rank - below) / max(n - below, 1e-9)
        lower, below = le, n
    return lower


async def _metrics(url: str) -> str:
    conn = h.Conn(url)
    try:
        status, body = await conn.send(conn.head("GET", "/metrics", 0))
    finally:
        await conn.close()
    if status != 200:
        raise h.HttpError(status, body)
    return body.decode()


async def _put_all(urls: list[str], count: int, every_ms: int, clients: int) -> None:
    ids = iter(range(count))

    async def one(url: str) -> None:
        conn = h.Conn(url)
        try:
            for i in ids:
                body = {"task": {"name": "noop", "queue": QUEUE}, "every_ms": every_ms,
                        "overlap": "allow"}
                await conn.json("PUT", f"/v1/schedules/bench-{i}", body)
        finally:
            await conn.close()

    await asyncio.gather(*(one(urls[i % len(urls)]) for i in range(clients)))


async def schedules(site: Site, cfg: BenchConfig, say: Say) -> list[Row]:
    count, every_ms, seconds = cfg.schedule_count, cfg.schedule_every_ms, cfg.schedule_seconds
    leader, _ = await site.leader_and_follower()
    started = time.perf_counter()
    await _put_all(site.urls, count, every_ms, min(cfg.clients, 64))
    say(f"  {count:,} schedules every {every_ms / 1000:g} s put in "
        f"{time.perf_counter() - started:.1f} s")
    before = await _metrics(leader)
    meter = CpuMeter(site)
    meter.start()
    started = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - started
    cpu = meter.per_task_us(1)  # CPU microseconds of each process over the stretch
    leader_now, _ = await site.leader_and_follower()
    after = await _metrics(leader)
    delay_name, round_name = "raftq_schedule_fire_delay_seconds", "raftq_schedule_round_seconds"
    delay_b, delay_a = buckets(before, delay_name), buckets(after, delay_name)
    round_b, round_a = buckets(before, round_name), buckets(after, round_name)
    fires = (delay_a[-1][1] - (delay_b[-1][1] if delay_b else 0.0)) if delay_a else 0.0
    note = f"{fires:,.0f} fires in {elapsed:.0f} s"
    if leader_now != leader:
        note += "; the leader changed during the run"
    rows = [
        Row("schedules.fire_delay_p50_ms", f"fire delay p50, {count:,} schedules every "
            f"{every_ms / 1000:g} s", quantile(delay_b, delay_a, 0.5) * 1000, "ms", note=note),
        Row("schedules.fire_delay_p99_ms", "  fire delay p99",
            quantile(delay_b, delay_a, 0.99) * 1000, "ms"),
        Row("schedules.round_p50_ms", "  leader's round over every schedule, p50",
            quantile(round_b, round_a, 0.5) * 1000, "ms"),
        Row("schedules.round_p99_ms", "  leader's round over every schedule, p99",
            quantile(round_b, round_a, 0.99) * 1000, "ms"),
    ]
    if site.cluster is not None:
        node_id = next(n.node_id for n in site.cluster.nodes if n.url == leader)
        rows.append(Row("schedules.leader_cpu_pct", "  leader CPU", cpu[node_id] / 1e4 / elapsed,
                        "% of a core"))
    say(f"  {note}: delay p50 {rows[0].value:.0f} ms, p99 {rows[1].value:.0f} ms; "
        f"round p50 {rows[2].value:.2f} ms")
    return rows
