"""raftq: a distributed task queue whose broker is its own Raft cluster."""

from raftq.client.asyncclient import AsyncClient
from raftq.client.context import TaskContext, current_task
from raftq.client.sync import Client
from raftq.client.task import configure, pipeline, task
from raftq.errors import RaftqError, TaskFailed

__all__ = ["AsyncClient", "Client", "RaftqError", "TaskContext", "TaskFailed", "configure",
           "current_task", "pipeline", "task"]
__version__ = "0.1.0"
