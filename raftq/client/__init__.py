"""Clients of the HTTP API: ``Client``, ``AsyncClient``, ``@task``.

Speaks only the wire format; never imports the server, the replica or the state.
"""

from raftq.client.asyncclient import AsyncClient, AsyncTaskHandle
from raftq.client.sync import Client, TaskHandle
from raftq.client.task import configure, pipeline, task

__all__ = ["AsyncClient", "AsyncTaskHandle", "Client", "TaskHandle", "configure", "pipeline",
           "task"]
