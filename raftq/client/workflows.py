"""Listing workflows from both clients (``GET /v1/workflows``, see docs/workflows.md).
``WorkflowCalls`` and ``AsyncWorkflowCalls`` are mixed into ``Client`` and ``AsyncClient``;
submitting, showing and cancelling one is the canvas's (``raftq.client.canvas``)."""

from __future__ import annotations

from typing import Any

from raftq.client.calls import Call
from raftq.client.types import WorkflowPage


def list_call(status: str | None, limit: int, cursor: str | None) -> Call:
    """One page, newest first: ``{"workflows": [...], "next_cursor": ...}``."""
    return Call("GET", "/v1/workflows", {"status": status, "limit": limit, "cursor": cursor})


class WorkflowCalls:
    """The workflow listing of ``Client``."""

    def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # Client's

    def workflows(self, status: str | None = None, limit: int = 100, *,
                  cursor: str | None = None) -> WorkflowPage:
        """One page of workflows, newest first (``status``: running, succeeded, failed or
        cancelled); pass its ``next_cursor`` as ``cursor`` for the next one."""
        page: WorkflowPage = self._call(list_call(status, limit, cursor))
        return page


class AsyncWorkflowCalls:
    """``WorkflowCalls`` for ``AsyncClient``."""

    async def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # AsyncClient's

    async def workflows(self, status: str | None = None, limit: int = 100, *,
                        cursor: str | None = None) -> WorkflowPage:
        page: WorkflowPage = await self._call(list_call(status, limit, cursor))
        return page
