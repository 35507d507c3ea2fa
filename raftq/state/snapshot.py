"""Snapshot the state to plain data and back, and its digest.

The plain form holds only what is authoritative: the clock (its time, its count
of ticks, its wall offset and its timers' horizon), the counters, every task,
the order of each status index, the dedupe table, the worker registry, the API
keys, the audit log, the dependency graph (links and workflows; absent
before them), the schedules, the membership, and what workers announced
(their presence and the task definitions; absent before them) and the
running tasks' progress reports (absent before them). The ready
queues and heaps are rebuilt from the tasks on restore; their lazily-deleted
stale entries are not part of the state's meaning, so a restored state
behaves exactly like the one that was saved. msgpack, never pickle.
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter, OrderedDict
from operator import attrgetter
from typing import Any

import msgpack

from raftq.state import flow_snapshot, worker_codec
from raftq.state.graph import Flow, Link
from raftq.state.keys import HASH, REVOKED_MS
from raftq.state.machine import State
from raftq.state.model import EXPIRING, Presence, Status, Task
from raftq.state.schedules import Schedule
from raftq.state.sharing import QUEUED_IDS, reshared
from raftq.state.task_table import (
    ids_from_plain,
    ids_to_plain,
    positions,
    tasks_from_plain,
    tasks_to_plain,
)

FORMAT = 5
# 1 had no tick count or wall offset (both 0 then); 1 and 2 had no schedules and no
# task expiry (a task row one field shorter); 1-3 no flow control (no tenant or
# flow keys in a task row); 1-4 held the tasks as rows, 5 as columns
# (raftq.state.task_table)
FORMATS = (1, 2, 3, 4, 5)
_PAD = {1: [None, "", None], 2: [None, "", None], 3: ["", None], 4: []}
_QUEUED = Status.QUEUED


def to_plain(state: State) -> dict[str, Any]:
    at = positions(state.tasks)
    return {
        "format": FORMAT,
        "clock_ms": state.clock_ms,
        "ticks": state.ticks,
        "wall_offset_ms": state.wall_offset_ms,
        "horizon_ms": state.horizon_ms,
        "next_seq": state.next_seq,
        "next_token": state.next_token,
        "tasks": tasks_to_plain(state.tasks.values()),
        "by_status": {str(s): ids_to_plain(ids, at) for s, ids in state.by_status.items()},
        "dedupe": [[k, queued_ids_to_plain(v, at)] for k, v in state.dedupe.items()],
        "workers": [[w, info] for w, info in state.workers.items()],
        "worker_leases": [[w, list(ids)] for w, ids in state.worker_leases.items()],
        "keys": [[name, record] for name, record in state.keys.items()],
        "audit": list(state.audit),
        "next_audit_seq": state.next_audit_seq,
        "links": [[i, link.to_plain()] for i, link in state.links.items()],
        "flows": [[w, flow.to_plain()] for w, flow in state.flows.items()],
        "schedule_generation": state.schedule_generation,
        "schedules": [s.to_plain() for s in state.schedules.values()],
        "members": [[i, list(r)] for i, r in state.members.items()],
        "member_epoch": state.member_epoch,
        "last_added": state.last_added,
        "flow": flow_snapshot.to_plain(state),
        "presence": [[w, record.to_plain()] for w, record in state.presence.items()],
        "task_defs": [worker_codec.task_def_to_plain(d) for d in state.task_defs.values()],
        "progress": [[i, report] for i, report in state.progress.items()],
    }


def from_plain(plain: dict[str, Any]) -> State:
    if plain.get("format") not in FORMATS:
        raise ValueError(f"snapshot format {plain.get('format')} is not one of {FORMATS}")
    state = State()
    state.clock_ms = plain["clock_ms"]
    state.ticks = plain.get("ticks", 0)
    state.wall_offset_ms = plain.get("wall_offset_ms", 0)
    state.horizon_ms = plain.get("horizon_ms", state.clock_ms)  # written since format 2
    state.next_seq = plain["next_seq"]
    state.next_token = plain["next_token"]
    if plain["format"] >= 5:
        state.tasks = tasks_from_plain(plain["tasks"], state.shared)
    else:
        pad = _PAD[plain["format"]]
        for row in plain["tasks"]:
            task = Task.from_plain([*row, *pad] if pad else row)
            state.tasks[task.id] = task
    if plain["format"] >= 5:
        table = list(state.tasks)
        for status, items in plain["by_status"].items():
            state.by_status[Status(status)] = dict.fromkeys(ids_from_plain(items, table))
        state.dedupe = OrderedDict((k, queued_ids_from_plain(v, table))
                                   for k, v in plain["dedupe"])
    else:
        for status, ids in plain["by_status"].items():
            state.by_status[Status(status)] = _own_ids(state.tasks, ids)
        state.dedupe = OrderedDict((k, reshared(v, state.tasks)) for k, v in plain["dedupe"])
    state.workers = {w: info for w, info in plain["workers"]}
    state.worker_leases = {w: dict.fromkeys(ids) for w, ids in plain["worker_leases"]}
    # Snapshots made before keys and the audit log have neither.
    state.keys = {name: record for name, record in plain.get("keys", [])}
    state.key_names = {r[HASH]: name for name, r in state.keys.items() if not r[REVOKED_MS]}
    state.audit.extend(plain.get("audit", []))
    state.next_audit_seq = plain.get("next_audit_seq", 1)
    state.links = {i: Link.from_plain(row) for i, row in plain.get("links", [])}
    state.flows = {w: Flow.from_plain(row) for w, row in plain.get("flows", [])}
    state.schedule_generation = plain.get("schedule_generation", 0)
    for row in plain.get("schedules", []):
        sched = Schedule.from_plain(row)
        state.schedules[sched.spec.id] = sched
        if sched.buffered is not None:
            state.buffered_schedules[sched.spec.id] = None
    # Snapshots made before membership changes have none (the configured peers).
    state.members = {i: list(r) for i, r in plain.get("members", [])}
    state.member_epoch = plain.get("member_epoch", 0)
    state.last_added = plain.get("last_added", "")
    # Snapshots made before workers announced themselves have neither.
    state.presence = {w: Presence.from_plain(row) for w, row in plain.get("presence", [])}
    state.task_defs = {d.name: d for d in map(worker_codec.task_def, plain.get("task_defs", []))}
    state.progress = {i: report for i, report in plain.get("progress", [])}
    _rebuild_indexes(state, plain.get("flow"))
    return state


def queued_ids_to_plain(kept: Any, at: dict[str, int]) -> Any:
    """A dedupe entry; a bulk submit's ids (``raftq.state.sharing``) by table positions."""
    if type(kept) is dict and len(kept) == 1 and QUEUED_IDS in kept:
        return {QUEUED_IDS: ids_to_plain(kept[QUEUED_IDS], at)}
    return kept


def queued_ids_from_plain(kept: Any, table: list[str]) -> Any:
    if type(kept) is dict and len(kept) == 1 and QUEUED_IDS in kept:
        return {QUEUED_IDS: ids_from_plain(kept[QUEUED_IDS], table)}
    return kept


def _own_ids(tasks: dict[str, Task], ids: list[str]) -> dict[str, None]:
    """``ids`` as an ordered set of the task table's own id strings (one string per
    id in memory, not two); an id the table lacks is kept as it is."""
    try:
        return dict.fromkeys([task.id for task in map(tasks.__getitem__, ids)])
    except KeyError:
        return dict.fromkeys(t.id if (t := tasks.get(i)) is not None else i for i in ids)


def _rebuild_indexes(state: State, flow: dict[str, Any] | None) -> None:
    flow_snapshot.settings_from_plain(state, flow)
    tasks = state.tasks.values()
    queued = [t for t in tasks if t.status is _QUEUED]
    queued.sort(key=attrgetter("seq"))
    queues, status_of = list(map(attrgetter("queue"), queued)), attrgetter("status")
    state.ready_counts = dict(Counter(zip(queues, map(attrgetter("priority"), queued),
                                          strict=True)))
    state.name_ready = dict(Counter(zip(queues, map(attrgetter("name"), queued), strict=True)))
    flow_snapshot.turns_from_plain(state, flow, queued)
    by_queue = Counter(zip(map(attrgetter("queue"), tasks), map(status_of, tasks), strict=True))
    state.counts = {(queue, str(status)): n for (queue, status), n in by_queue.items()}
    for task in tasks:
        if task.status is _QUEUED:
            if task.expires_at_ms is not None:
                state.deadline_heap.append((task.expires_at_ms, task.id))
            continue
        if task.status is Status.SCHEDULED and task.ready_at_ms is not None:
            state.delayed.append((task.ready_at_ms, task.seq, task.id))
        elif task.status is Status.LEASED:
            state.lease_heap.append((task.lease_expires_ms, task.lease_token, task.id))
        elif task.status in EXPIRING and task.finished_ms is not None:
            state.expiry_heap.append((task.finished_ms + task.result_ttl_ms, task.id))
        if task.expires_at_ms is not None:  # a leased one may wait again before its expiry
            state.deadline_heap.append((task.expires_at_ms, task.id))
    for worker_id, record in state.presence.items():
        for name in record.names:
            state.runners.setdefault(name, {})[worker_id] = None
    heapq.heapify(state.deadline_heap)
    heapq.heapify(state.delayed)
    heapq.heapify(state.lease_heap)
    heapq.heapify(state.expiry_heap)


def dumps(state: State) -> bytes:
    return bytes(msgpack.packb(to_plain(state), use_bin_type=True))


def loads(data: bytes) -> State:
    return from_plain(msgpack.unpackb(data, raw=False, strict_map_key=False))


def digest(state: State) -> str:
    """A hash of the canonical state, equal on replicas that applied the same log."""
    return hashlib.sha256(dumps(state)).hexdigest()
