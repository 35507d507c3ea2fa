"""Local-cluster tooling: ``raftq up``, the node processes used by tests and the bench,
and the example tasks."""
