"""The repository's entry point to raftq's chaos harness.

The harness itself is packaged as ``raftq.chaos`` (so ``raftq chaos run --smoke``
works for anyone who installed raftq); ``python -m chaos`` runs the same thing
from a checkout, and results are kept in ``chaos/RESULTS.md``.
"""
