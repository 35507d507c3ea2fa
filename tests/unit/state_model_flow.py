"""The reference model of tenants' turns, limits, queue settings and unique keys, for
the stateful test (a mixin of ``state_model.Model``), written as plainly as possible:
lists and scans, no tickets, no lazy deletion, slots as fractions of a millisecond."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from raftq.state import commands as c
from raftq.state.fair import LANE_SEP, lane
from raftq.state.model import TERMINAL, Status


@dataclass
class ModelRate:
    rate: int
    per_ms: int
    burst: int
    tat: Fraction = Fraction(0)  # the next free slot, in ms

    @property
    def width(self) -> Fraction:
        return Fraction(self.per_ms, self.rate)

    def room(self, clock: int, horizon: int) -> int:
        return max(0, math.floor((clock + self.burst * self.width - max(self.tat, horizon))
                                 / self.width))


@dataclass
class ModelLevel:
    ring: list[str] = field(default_factory=list)
    used: int = 0
    gated: dict[str, str] = field(default_factory=dict)  # tenant -> key


class FlowModel:
    tasks: dict[str, Any]
    clock_ms: int
    horizon_ms: int

    def __init__(self) -> None:
        self.levels: dict[tuple[str, int], ModelLevel] = {}
        self.rates: dict[str, ModelRate] = {}
        self.conc: dict[str, int] = {}
        self.waiters: dict[str, list[tuple[str, str, int, str]]] = {}
        self.armed: dict[str, int] = {}
        self.paused: set[str] = set()
        self.max_queued: dict[str, int] = {}
        self.weights: dict[str, dict[str, int]] = {}
        self.unique: dict[str, tuple[str, int]] = {}
        self.budget = 0
        # what the invariants check: (clock, horizon) of each start per rate key since
        # its limit was last set, and each concurrency key's count when a lease began
        self.starts: dict[str, list[tuple[int, int]]] = {}
        self.over_max: list[str] = []

    # -- which tasks

    def live(self, key: str, prio: int, tenant: str) -> list[Any]:
        """The ready tasks of a lane (a queue and a task name), priority and tenant."""
        found = [t for t in self.tasks.values() if t.status is Status.QUEUED and not t.held
                 and (lane(t.queue, t.name), t.priority, t.tenant) == (key, prio, tenant)]
        return sorted(found, key=lambda t: t.order)

    def level(self, task: Any) -> ModelLevel:
        return self.levels.setdefault((lane(task.queue, task.name), task.priority),
                                      ModelLevel())

    def joined(self, task: Any) -> None:
        """``task`` is ready in its line (queued, or back from waiting on a limit)."""
        level = self.level(task)
        if task.tenant not in level.ring and task.tenant not in level.gated:
            level.ring.append(task.tenant)

    def left(self, task: Any) -> None:
        """``task`` left its line: a tenant with nothing left leaves the ring."""
        level = self.level(task)
        if self.live(lane(task.queue, task.name), task.priority, task.tenant):
            return
        level.gated.pop(task.tenant, None)
        if task.tenant in level.ring:
            if level.ring.index(task.tenant) == 0:
                level.used = 0
            level.ring.remove(task.tenant)

    # -- limits

    def keys_of(self, task: Any, conc: bool = False) -> list[str]:
        keys = [task.rate_key, task.conc_key, "task:" + task.name]
        if task.tenant:
            keys.append("tenant:" + task.tenant)
        out: list[str] = []
        for k in keys:
            if k and k not in out and (k in self.conc or (not conc and k in self.rates)):
                out.append(k)
        return out

    def leased_with(self, key: str) -> int:
        return sum(1 for t in self.tasks.values()
                   if t.status is Status.LEASED and key in self.keys_of(t, True))

    def room(self, key: str) -> int:
        room = 1 << 62
        if key in self.rates:
            room = self.rates[key].room(self.clock_ms, self.horizon_ms)
        if key in self.conc:
            room = min(room, self.conc[key] - self.leased_with(key))
        return room

    def arm(self, key: str) -> None:
        rate = self.rates.get(key)
        if rate is None or not self.waiters.get(key):
            return
        at = max(math.ceil(rate.tat - (rate.burst - 1) * rate.width), self.clock_ms + 1)
        self.armed[key] = at

    def wake(self, key: str) -> None:
        entries = self.waiters.get(key)
        if entries is None:
            return
        room = self.room(key)
        while entries and room > 0:
            kind, a, b, t = entries.pop(0)
            if kind == "t":
                task = self.tasks.get(a)
                if task is None or task.status is not Status.QUEUED or task.order != b \
                        or task.held != key:
                    continue
                task.held = ""
                self.joined(task)
            else:
                level = self.levels.get((a, b))
                if level is None or level.gated.get(t) != key:
                    continue
                del level.gated[t]
                level.ring.append(t)
            room -= 1
        if not entries:
            del self.waiters[key]
            self.armed.pop(key, None)
        else:
            self.arm(key)

    def rates_due(self) -> None:
        due = sorted(k for k, at in self.armed.items() if at <= self.clock_ms)
        for key in due:
            del self.armed[key]
        for key in due:
            self.wake(key)

    def lease_started(self, task: Any) -> None:
        for key in self.keys_of(task):
            rate = self.rates.get(key)
            if rate is not None:
                rate.tat = max(rate.tat, Fraction(self.horizon_ms)) + rate.width
                self.starts.setdefault(key, []).append((self.clock_ms, self.horizon_ms))
                if key in self.waiters:
                    self.arm(key)
            if key in self.conc and self.leased_with(key) > self.conc[key]:
                self.over_max.append(key)

    def lease_ended(self, task: Any) -> None:
        for key in self.keys_of(task, True):
            if key in self.waiters:
                self.wake(key)

    # -- claims

    def pick(self, queues: list[str], names: list[str] | None = None) -> Any:
        """The next task of ``queues`` whose name is one of ``names`` (None: any): tenants
        take turns within a lane (a queue and a task name) and priority."""
        while True:
            best = None
            lanes = {key for key, _ in self.levels
                     if key.partition(LANE_SEP)[0] in queues
                     and key.partition(LANE_SEP)[0] not in self.paused
                     and (names is None or key.partition(LANE_SEP)[2] in names)}
            for key in lanes:
                prios = [p for (k, p), lv in self.levels.items() if k == key and lv.ring]
                if not prios:
                    continue
                prio = max(prios)
                level = self.levels[(key, prio)]
                head = self.live(key, prio, level.ring[0])[0]
                if best is None or (prio, -head.order) > (best[0], -best[1].order):
                    best = (prio, head)
            if best is None:
                return None
            task = best[1]
            level = self.level(task)
            blocked = [k for k in self.keys_of(task) if self.room(k) <= 0]
            if blocked:
                key = blocked[0]
                if task.tenant and key == "tenant:" + task.tenant:
                    level.ring.pop(0)
                    level.used = 0
                    level.gated[task.tenant] = key
                    self.waiters.setdefault(key, []).append(
                        ("l", lane(task.queue, task.name), task.priority, task.tenant))
                else:
                    task.held = key
                    self.waiters.setdefault(key, []).append(("t", task.id, task.order, ""))
                    self.left(task)
                self.arm(key)
                if self.budget <= 0:
                    return None
                self.budget -= 1
                continue
            if len(level.ring) > 1:
                level.used += 1
                if level.used >= self.weights.get(task.queue, {}).get(task.tenant, 1):
                    level.ring.append(level.ring.pop(0))
                    level.used = 0
            else:
                level.used = 0
            return task

    # -- commands

    def apply_flow(self, body: Any) -> Any:
        if isinstance(body, c.PutRateLimit):
            if min(body.rate, body.per_ms, body.burst) < 1:
                return {"error": "invalid"}
            old = self.rates.get(body.key)
            tat = Fraction(0) if old is None else Fraction(
                math.floor(old.tat * body.rate), body.rate)
            self.rates[body.key] = ModelRate(body.rate, body.per_ms, body.burst, tat)
            self.starts.pop(body.key, None)
            self.changed(body.key)
            return {"key": body.key, "rate": body.rate, "per_ms": body.per_ms,
                    "burst": body.burst}
        if isinstance(body, c.PutConcurrency):
            if body.max < 1:
                return {"error": "invalid"}
            self.conc[body.key] = body.max
            self.changed(body.key)
            return {"key": body.key, "max": body.max}
        if isinstance(body, c.DeleteLimit):
            table: dict[str, Any] = self.rates if body.kind == "rate" else self.conc
            if body.kind not in ("rate", "concurrency") or body.key not in table:
                return {"error": "not_found"}
            del table[body.key]
            self.starts.pop(body.key, None)
            self.changed(body.key)
            return {"key": body.key, "deleted": True}
        assert isinstance(body, c.PutQueue)
        if body.max_queued is not None:
            if body.max_queued:
                self.max_queued[body.name] = body.max_queued
            else:
                self.max_queued.pop(body.name, None)
        if body.paused is not None:
            (self.paused.add if body.paused else self.paused.discard)(body.name)
        if body.tenant_weights is not None:
            weights = {t: w for t, w in body.tenant_weights if w != 1}
            if any(w < 1 for w in weights.values()):
                return {"error": "invalid"}
            self.weights[body.name] = weights
        return {"name": body.name, "max_queued": self.max_queued.get(body.name, 0),
                "paused": body.name in self.paused,
                "tenant_weights": dict(self.weights.get(body.name, {}))}

    def changed(self, key: str) -> None:
        self.armed.pop(key, None)
        self.wake(key)

    def queue_full(self, specs: list[c.TaskSpec]) -> Any:
        adding: dict[str, int] = {}
        for spec in specs:
            if spec.queue in self.max_queued and spec.id not in self.tasks:
                adding[spec.queue] = adding.get(spec.queue, 0) + 1
        for queue, n in adding.items():
            waiting = sum(1 for t in self.tasks.values() if t.queue == queue
                          and t.status in (Status.QUEUED, Status.SCHEDULED))
            if waiting + n > self.max_queued[queue]:
                return {"error": "queue_full"}
        return None

    def unique_holder(self, key: str) -> Any:
        entry = self.unique.get(key)
        if entry is None or entry[0] not in self.tasks:
            return None
        task = self.tasks[entry[0]]
        if task.status in TERMINAL and self.clock_ms >= entry[1]:
            return None
        return task

    def unique_dropped(self, task: Any) -> None:
        if task.unique_key and self.unique.get(task.unique_key, ("",))[0] == task.id:
            del self.unique[task.unique_key]
