"""Keeping a million queued tasks small: values most tasks repeat are held once.

- The dedupe table keeps the answer to every recent request (up to
  ``DEDUPE_CAPACITY`` of them). The answer to a bulk submit is one dict per
  task; when every task was new and queued (a bulk load's answer) it is kept
  as the list of their ids instead, ``{QUEUED_IDS: [...]}``, whose strings are
  the task table's own, and expanded again when a retry asks
  (``remembered`` / ``recalled``). A snapshot holds that form; loading it
  shares the ids with the task table again (``reshared``).
- A task's name and queue and its limits (timeout, backoff, result TTL) come
  out of every command as new objects; ``Shared`` keeps one object per
  distinct value instead (``texts.setdefault(v, v)``, strings and ints in
  separate tables since ``1 == True``; ``trim`` after each use keeps them
  bounded).

None of this changes a value, only which object holds it: no answer, digest
or snapshot of ``apply`` depends on it, except that the dedupe table's
snapshot form of a bulk submit's answer is the short one.
"""

from __future__ import annotations

from typing import Any

QUEUED_IDS = "queued_ids"
_QUEUED = "queued"
_MAX_SHARED = 4096  # distinct values kept; past it the table starts over


def remembered(result: Any) -> Any:
    """What the dedupe table keeps for ``result``."""
    if type(result) is not list or len(result) < 2:
        return result
    for item in result:
        if (type(item) is not dict or len(item) != 3 or item.get("created") is not True
                or item.get("status") != _QUEUED):
            return result
    return {QUEUED_IDS: [item["id"] for item in result]}


def recalled(kept: Any) -> Any:
    """The answer that ``remembered`` kept as ``kept``."""
    if type(kept) is dict and len(kept) == 1 and QUEUED_IDS in kept:
        return [{"id": task_id, "created": True, "status": _QUEUED}
                for task_id in kept[QUEUED_IDS]]
    return kept


def reshared(kept: Any, tasks: dict[str, Any]) -> Any:
    """``kept`` (loaded from a snapshot) holding the task table's id strings."""
    if type(kept) is dict and len(kept) == 1 and QUEUED_IDS in kept:
        ids = kept[QUEUED_IDS]
        return {QUEUED_IDS: [t.id if (t := tasks.get(i)) is not None else i for i in ids]}
    return kept


class Shared:
    """One object per distinct string and per distinct int put in."""

    __slots__ = ("texts", "numbers")

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}
        self.numbers: dict[int, int] = {}

    def trim(self) -> None:
        """Start over once a table holds more than ``_MAX_SHARED`` values."""
        if len(self.texts) > _MAX_SHARED:
            self.texts.clear()
        if len(self.numbers) > _MAX_SHARED:
            self.numbers.clear()
