"""raftq: a distributed task queue whose broker is its own Raft cluster."""

from raftq.aclient import AsyncClient
from raftq.client import Client
from raftq.errors import RaftqError, TaskFailed
from raftq.task import configure, task

__all__ = ["AsyncClient", "Client", "RaftqError", "TaskFailed", "configure", "task"]
__version__ = "0.1.0"
