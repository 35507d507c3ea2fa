"""The records of the dependency graph: a task's links and a workflow.

``Link`` is kept for every task that has parents, has had children or belongs
to a workflow (``State.links``, by task id); ``Flow`` for every workflow
(``State.flows``, by workflow id). Both are plain slotted records whose plain
form (a list, fields in ``FIELDS`` order) is what the snapshot holds. The rules
that move them live in ``raftq.state.workflows``.
"""

from __future__ import annotations

from typing import Any

# on_parent_failure
CANCEL, RUN = "cancel", "run"
ON_PARENT_FAILURE = (CANCEL, RUN)
# run_when
SUCCESS, FAILURE, ALWAYS = "success", "failure", "always"
RUN_WHEN = (SUCCESS, FAILURE, ALWAYS)


class Link:
    """One task's place in the graph."""

    __slots__ = (
        "parents",  # ids, in the order the spec named them (no repeats)
        "children",  # ids, in the order they were created
        "notify",  # children still to be told when this task ends
        "waiting",  # parents this task still waits for
        "open_children",  # children not yet ended: this task's result is kept for them
        "failed",  # the first parent that ended other than succeeded ("" none)
        "dead",  # some parent ended dead (what run_when failure asks)
        "on_parent_failure",
        "run_when",
        "pass_results",
        "workflow_id",  # "" when the task belongs to no workflow
    )
    FIELDS = __slots__

    def __init__(
        self,
        parents: list[str] | None = None,
        on_parent_failure: str = CANCEL,
        run_when: str = SUCCESS,
        pass_results: bool = False,
        workflow_id: str = "",
    ) -> None:
        self.parents: list[str] = parents or []
        self.children: list[str] = []
        self.notify: list[str] = []
        self.waiting = 0
        self.open_children = 0
        self.failed = ""
        self.dead = False
        self.on_parent_failure = on_parent_failure
        self.run_when = run_when
        self.pass_results = pass_results
        self.workflow_id = workflow_id

    def to_plain(self) -> list[Any]:
        return [getattr(self, f) for f in self.FIELDS]

    @classmethod
    def from_plain(cls, row: list[Any]) -> Link:
        link = cls.__new__(cls)
        for field, value in zip(cls.FIELDS, row, strict=True):
            setattr(link, field, value)
        return link


class Flow:
    """A workflow: its tasks in creation order (parents before children)."""

    __slots__ = ("ids", "keys", "open", "alive", "cancelled", "created_ms")
    FIELDS = __slots__

    def __init__(self, created_ms: int) -> None:
        self.ids: list[str] = []
        self.keys: list[str] = []  # the client's key of each task, as ``ids``
        self.open = 0  # tasks not ended: while any is, every result is kept
        self.alive = 0  # tasks still in the state: the flow is forgotten after the last
        self.cancelled = False  # a cancel of the whole workflow was applied
        self.created_ms = created_ms

    def to_plain(self) -> list[Any]:
        return [getattr(self, f) for f in self.FIELDS]

    @classmethod
    def from_plain(cls, row: list[Any]) -> Flow:
        flow = cls.__new__(cls)
        for field, value in zip(cls.FIELDS, row, strict=True):
            setattr(flow, field, value)
        return flow
