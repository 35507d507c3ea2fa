"""The audit log: who did what administrative thing, and when.

Cancel, requeue, purge and key changes append an entry when they are
accepted: its sequence number, the replicated clock, the name of the key that
asked (the actor, carried in the command), the action, its target and a small
detail. The log is bounded: the oldest entries fall off past
``AUDIT_CAPACITY``.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from raftq.state.indexes import Indexes

AUDIT_CAPACITY = 10_000


class Audit(Indexes):
    def __init__(self) -> None:
        super().__init__()
        # [seq, at_ms, actor, action, target, detail]
        self.audit: deque[list[Any]] = deque(maxlen=AUDIT_CAPACITY)
        self.next_audit_seq = 1

    def _record(self, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        self.audit.append([self.next_audit_seq, self.clock_ms, actor, action, target, detail])
        self.next_audit_seq += 1

    def audit_view(self, after_seq: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Entries oldest first: the first ``limit`` after ``after_seq``, or the last
        ``limit`` when ``after_seq`` is None."""
        if after_seq is None:
            rows = list(self.audit)[-limit:]
        else:
            rows = [row for row in self.audit if row[0] > after_seq][:limit]
        return [{"seq": seq, "at_ms": at_ms, "actor": actor, "action": action, "target": target,
                 "detail": detail} for seq, at_ms, actor, action, target, detail in rows]
