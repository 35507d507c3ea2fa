"""The history of a chaos run: every operation, one JSON object a line.

Each process of the harness (the runner, each worker) appends to its own JSONL
file, flushed line by line, so a worker killed with SIGKILL loses at most the
line it was writing; the reader skips such a torn line. Times are wall-clock
milliseconds (floats) of this machine. A claim's ``expires_ms`` is a time on
the cluster's replicated clock, which starts at the first request's wall time
of this machine and then counts elapsed time; it never runs ahead of this
machine's clock, only behind it (by time no leader counted: a whole-cluster
outage, part of an election). The checker compares it with the harness's
times, so that lag makes it lenient by as much; the runner reports the lag at
the end, and the timer probe measures firing times by this machine's clock.

Record types (field ``type``), the fields the checker reads:

- ``submit``: ``task_ids``, ``batch``, ``node``, ``t_inv``, ``t_done``, ``outcome``
- ``claim``: ``worker_id``, ``lease_ms``, ``tasks`` (``id``, ``token``,
  ``expires_ms``), ``t_inv``, ``t_done``, ``outcome``
- ``complete``: ``worker_id``, ``task_id``, ``token``, ``code``, ``t_inv``,
  ``t_done``, ``outcome``
- ``extend``: ``task_id``, ``token``, ``expires_ms``, ``t_inv``, ``t_done``, ``outcome``
- ``node_status``: ``node``, ``t``, ``role``, ``term``, ``leader``
- ``fault``: ``t``, ``phase`` (``start`` or ``heal``), ``fault``, ``targets``
- ``timer``: ``kind`` (``delay`` or ``lease``), ``due_lo``, ``due_hi``, ``seen``
- ``isolation``: ``node``, ``t_cut``, ``not_ready_ms``, ``no_leader_ms``,
  ``write_ms``, ``write_status``, ``write_code``; ``rejoin``: ``node``,
  ``t_heal``, ``ready_ms``, ``write_ok_ms``
- ``expect``: ``t``, ``what``, ``ok``, ``detail``: something a nemesis checked
  as it went (a node refused to start on a corrupt file, a write through a
  full node was answered 507)

``outcome`` is ``ok`` (the operation happened), ``fail`` (it definitely did
not: a 4xx answer, or a per-item rejection) or ``unknown`` (timeouts,
connection errors, 503: it may or may not have happened).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

OK: Final = "ok"
FAIL: Final = "fail"
UNKNOWN: Final = "unknown"

Op = dict[str, Any]


def now_ms() -> float:
    """Wall-clock milliseconds, the clock nodes stamp leases with."""
    return time.time() * 1000.0


def outcome_of_status(status: int | None) -> str:
    """Map an HTTP status (``None`` for no answer) to a history outcome."""
    if status is None or status >= 500:
        return UNKNOWN
    if 200 <= status < 300:
        return OK
    return FAIL


class HistoryWriter:
    """Appends records to one JSONL file; safe to share between threads."""

    def __init__(self, path: Path, process: str) -> None:
        self.path = path
        self.process = process
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8")

    def record(self, op: Op) -> None:
        op.setdefault("process", self.process)
        line = json.dumps(op, separators=(",", ":"), default=str)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def read_history(paths: Iterable[Path]) -> list[Op]:
    """Every record of the given files, ordered by invocation (or event) time."""
    ops: list[Op] = []
    for path in paths:
        with path.open(encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                try:
                    op = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by SIGKILL
                if isinstance(op, dict) and "type" in op:
                    ops.append(op)
    ops.sort(key=op_time)
    return ops


def op_time(op: Op) -> float:
    value = op.get("t_inv", op.get("t", 0.0))
    return float(value) if value is not None else 0.0
