"""Whether this node has a leader it is in contact with.

PySyncObj's own answer (``_getLeader``) is not enough. It starts no election
while a node is connected to no peer, so a follower cut off from every peer
keeps naming the leader it last heard from, for as long as the cut lasts; and
a leader cut off from the majority believes it leads until its
``leaderFallbackTimeout``. Proposals through such a node wait for the proposal
timeout and come back with an unknown outcome.

So a node has a leader only if it heard from it within the election timeout:

- a follower while its election deadline has not passed (PySyncObj pushes it
  back by a random election timeout on every AppendEntries from the leader);
- a leader while a majority of the cluster, itself included, answered it
  within the longest election timeout.
"""

from __future__ import annotations

import time
from typing import Any

# PySyncObj's monotonicTime is time.monotonic on every Python we run.
_now = time.monotonic


def leader_in_contact(machine: Any, election_timeout_s: float) -> tuple[Any, str | None]:
    """PySyncObj's leader node if this node is in contact with it, else None; and
    why not, in words, when there is none."""
    leader = machine._getLeader()
    if leader is None:
        return None, "no leader elected"
    now = _now()
    if machine._isLeader():
        others = machine._SyncObj__otherNodes
        last = machine._SyncObj__lastResponseTime
        heard = 1 + sum(1 for node in others if last.get(node, 0.0) > now - election_timeout_s)
        if heard * 2 > len(others) + 1:
            return leader, None
        return None, (f"leading, but {len(others) + 1 - heard} of {len(others) + 1} nodes "
                      f"have not answered for {election_timeout_s:g} s")
    if machine._SyncObj__raftElectionDeadline < now:
        return None, (f"nothing heard from the leader ({leader.address}) within the election "
                      "timeout")
    return leader, None
