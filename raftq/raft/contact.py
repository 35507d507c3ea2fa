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

ROLE_NAMES = {0: "follower", 1: "candidate", 2: "leader"}

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


def raft_status(machine: Any, partner_addrs: list[str], election_timeout_s: float
                ) -> dict[str, Any]:
    """This node's view of the cluster, as ``/v1/node`` and ``/v1/cluster`` show it."""
    if machine is None:
        return {"role": "stopped", "leader": None, "term": 0, "commit_index": 0,
                "applied_index": 0, "has_quorum": False, "partners": {},
                "no_leader_reason": "this node is not running"}
    status = machine.getStatus()
    leader, no_leader_reason = leader_in_contact(machine, election_timeout_s)
    partners = {
        addr: status.get(f"partner_node_status_server_{addr}", 0) == 2
        for addr in partner_addrs
    }
    return {
        "role": ROLE_NAMES.get(status.get("state", 0), "unknown"),
        "leader": leader.address if leader is not None else None,
        "no_leader_reason": no_leader_reason,
        "term": status.get("raft_term", 0),
        "commit_index": status.get("commit_idx", 0),
        "applied_index": status.get("last_applied", 0),
        "leader_commit_index": status.get("leader_commit_idx") or 0,
        "has_quorum": bool(status.get("has_quorum", False)),
        "log_len": status.get("log_len", 0),
        "partners": partners,
    }
