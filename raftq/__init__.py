"""raftq: a distributed task queue whose broker is its own Raft cluster."""

from raftq.errors import RaftqError

__all__ = ["RaftqError"]
__version__ = "0.1.0"
