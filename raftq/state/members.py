"""Cluster membership: which nodes vote, and where each listens.

The membership is replicated like everything else, so every node knows the
same set after the same log: ``members`` maps a node id to its raft address
and its HTTP URL, in the order the nodes joined. A new cluster's first leader
records the membership its nodes were configured with (``SeedMembers``); after
that a node's configured peers are never read again.

One change at a time: ``member_epoch`` counts the changes, and a change names
the epoch its proposer decided on. Of two changes decided on the same
membership only the first applies; the second is refused with ``conflict``.
A node added by a change is ``last_added`` until it reports that it has
caught up with the log (``MemberReady``); until then the change is under way
and the edge refuses the next one. Whether a change would leave the cluster
without a quorum depends on which nodes answer the leader: that is decided at
the edge (``raftq.server.members_api``), never here.

The raft layer (``raftq.raft.membership``) makes PySyncObj's set of peers
follow ``members`` after each change is applied.
"""

from __future__ import annotations

from typing import Any

from raftq.state.audit import Audit
from raftq.state.commands import AddMember, Member, MemberReady, RemoveMember, SeedMembers
from raftq.state.indexes import Result, reject

# The fields of a member record: id -> [raft_address, http_url]
RAFT_ADDRESS, HTTP_URL = range(2)


class Members(Audit):
    def __init__(self) -> None:
        super().__init__()
        self.members: dict[str, list[str]] = {}
        self.member_epoch = 0  # 0: not recorded yet; each change adds one
        self.last_added = ""  # a node added by the latest change, until it has caught up

    def members_view(self) -> dict[str, Any]:
        return {"epoch": self.member_epoch, "catching_up": self.last_added or None,
                "members": [{"id": i, "raft_address": r[RAFT_ADDRESS], "http_url": r[HTTP_URL]}
                            for i, r in self.members.items()]}

    def _seed_members(self, cmd: SeedMembers) -> Result:
        if self.members:
            return self.members_view()
        if not cmd.members:
            return reject("invalid", "a membership needs at least one node")
        for m in cmd.members:
            problem = self._member_problem(m)
            if problem is not None:
                return problem
            self.members[m.id] = [m.raft_address, m.http_url]
        self.member_epoch = 1
        self._record("node", "seed_members", "cluster", {"nodes": list(self.members)})
        return self.members_view()

    def _add_member(self, cmd: AddMember) -> Result:
        m = cmd.member
        problem = self._epoch_problem(cmd.epoch)
        if problem is None:
            problem = self._member_problem(m)
        if problem is not None:
            return problem
        self.members[m.id] = [m.raft_address, m.http_url]
        self.member_epoch += 1
        self.last_added = m.id
        self._record(cmd.actor, "add_node", m.id,
                     {"raft_address": m.raft_address, "http_url": m.http_url})
        return self.members_view()

    def _remove_member(self, cmd: RemoveMember) -> Result:
        problem = self._epoch_problem(cmd.epoch)
        if problem is not None:
            return problem
        if cmd.id not in self.members:
            return reject("not_found", f"node {cmd.id} is not a member")
        if len(self.members) == 1:
            return reject("invalid", f"node {cmd.id} is the last member")
        del self.members[cmd.id]
        self.member_epoch += 1
        if self.last_added == cmd.id:
            self.last_added = ""
        self._record(cmd.actor, "remove_node", cmd.id, {})
        return self.members_view()

    def _member_ready(self, cmd: MemberReady) -> Result:
        if cmd.id == self.last_added:
            self.last_added = ""
            self._record(cmd.id, "node_ready", cmd.id, {})
        return {"ready": cmd.id, "epoch": self.member_epoch}

    def _epoch_problem(self, epoch: int) -> Result | None:
        if not self.members:
            return reject("unavailable", "the cluster's membership is not recorded yet "
                                         "(it is recorded by the first leader); retry")
        if epoch != self.member_epoch:
            return reject("conflict", f"the membership changed meanwhile (epoch {epoch} "
                                      f"became {self.member_epoch}); look again and retry")
        return None

    def _member_problem(self, m: Member) -> Result | None:
        if not m.id or not m.raft_address or not m.http_url:
            return reject("invalid", "a node needs an id, a raft address and an HTTP URL")
        if m.id in self.members:
            return reject("conflict", f"node {m.id} is already a member")
        for other, record in self.members.items():
            if record[RAFT_ADDRESS] == m.raft_address:
                return reject("conflict", f"raft address {m.raft_address} is node {other}'s")
        return None
