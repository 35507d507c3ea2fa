"""The ``raftq`` command line."""

from raftq.cli.main import main

__all__ = ["main"]
