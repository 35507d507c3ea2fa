"""The fault-injection harness (``raftq chaos``, ``python -m chaos``)."""
