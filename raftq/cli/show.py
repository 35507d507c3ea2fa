"""How values read to a person: local times with their distance from now, priority names."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from raftq.state.model import PRIORITY_NAMES

_NAMES = {value: name for name, value in PRIORITY_NAMES.items()}


def priority(value: Any) -> str:
    """``high`` for 192; a level between names shows as its number."""
    return _NAMES.get(value, str(value)) if isinstance(value, int) else str(value)


def ago(ms: int, now_ms: int) -> str:
    """``in 3 s``, ``2 min ago``, ``just now``."""
    delta = (ms - now_ms) / 1000
    size = abs(delta)
    if size < 1:
        return "just now"
    for unit, seconds in (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if size >= seconds:
            amount = f"{size / seconds:.0f} {unit}"
            break
    return f"in {amount}" if delta > 0 else f"{amount} ago"


def when(ms: Any, now_ms: int | None = None) -> str:
    """Local ISO time to the second plus how far from now; ``-`` for none."""
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "-"
    now = int(time.time() * 1000) if now_ms is None else now_ms
    local = dt.datetime.fromtimestamp(ms / 1000).astimezone()
    return f"{local.isoformat(timespec='seconds')} ({ago(ms, now)})"


def short_ago(ms: Any, now_ms: int | None = None) -> str:
    if not isinstance(ms, int) or isinstance(ms, bool):
        return "-"
    return ago(ms, int(time.time() * 1000) if now_ms is None else now_ms)
