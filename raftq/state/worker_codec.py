"""The msgpack encoding of the workers' commands (ops 45-49, see ``raftq.state.encoding``)."""

from __future__ import annotations

from typing import Any

from raftq.state.commands import TaskDef, WorkerBeat, WorkerControl
from raftq.state.plain import _int as integer
from raftq.state.plain import _list as items
from raftq.state.plain import _str as string


def optional_integer(v: Any) -> int | None:
    return None if v is None else integer(v)


def to_plain(body: WorkerBeat | WorkerControl) -> list[Any]:
    if isinstance(body, WorkerControl):
        return [body.worker_id, body.action, body.concurrency, body.actor]
    return [body.worker_id, body.host, body.pid, body.queues,
            [task_def_to_plain(d) for d in body.tasks],
            body.heartbeat_ms, body.forget_ms, body.concurrency, body.pool, body.mode,
            body.cpu_permille, body.rss_kb, body.acted]


def task_def_to_plain(d: TaskDef) -> list[Any]:
    return [d.name, d.queue, d.priority, d.max_attempts, d.timeout_ms, d.retry_backoff_ms]


def task_def(v: Any) -> TaskDef:
    name, queue, priority, attempts, timeout, backoff = items(v, 6)
    return TaskDef(string(name), string(queue), integer(priority), optional_integer(attempts),
                   optional_integer(timeout), optional_integer(backoff))


def beat(p: Any) -> WorkerBeat:
    (worker_id, host, pid, queues, tasks, heartbeat_ms, forget_ms, concurrency, pool, mode,
     cpu, rss, acted) = items(p, 13)
    return WorkerBeat(string(worker_id), string(host), integer(pid),
                      [string(q) for q in items(queues)], [task_def(d) for d in items(tasks)],
                      integer(heartbeat_ms), integer(forget_ms), integer(concurrency),
                      string(pool), string(mode), integer(cpu), integer(rss), integer(acted))


def control(p: Any) -> WorkerControl:
    worker_id, action, concurrency, actor = items(p, 4)
    return WorkerControl(string(worker_id), string(action), integer(concurrency), string(actor))
