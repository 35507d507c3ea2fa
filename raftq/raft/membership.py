"""Membership in the raft layer: PySyncObj's peers follow the replicated membership.

The membership is part of the replicated state (``raftq.state.members``);
PySyncObj's own membership changes (``dynamicMembershipChange``) stay off. Its
changes are pickled entries of their own kind, outside our journal's commands,
and its bookkeeping has known faults: the topology in ``fullDumpFile`` overrides
the configured peers after a restart (PySyncObj issue 133), and its guard
against two changes at once (``__changeClusterIDx``) is never set. Instead,
after each membership command is applied (and after a snapshot is loaded),
``PeerSet.follow`` adds and drops PySyncObj's peers to match, the way etcd
applies a configuration change once it is committed; one change at a time is
enforced by the state (the membership epoch) and at the edge.

The membership is also written to ``<data_dir>/members`` (framed, checksummed,
fsynced) whenever it changes, and a node that restarts starts from that file,
not from its config's ``peers``, which seed a brand-new cluster only. A node
whose own removal it applies is told so through ``on_removed``.

PySyncObj's transport accepts a peer only by an address in its node table, so
a removed node, whose address has left every table, is refused by every
member: it hears from no one and, connected to nobody, never starts an
election (``raftq.raft.port`` also refuses PySyncObj's read-only peers).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
from pysyncobj import FAIL_REASON
from pysyncobj.node import TCPNode

from raftq.raft.durable import (
    CorruptDataError,
    Durability,
    FileOps,
    StorageFullError,
    read_framed,
    write_framed,
)
from raftq.state.commands import (
    AddMember,
    Command,
    Group,
    MemberReady,
    RemoveMember,
    SeedMembers,
)

log = logging.getLogger(__name__)

MEMBERS_FILE = "members"
_MAGIC = b"RQMEMBRS"

MEMBERSHIP_BODIES = (SeedMembers, AddMember, RemoveMember, MemberReady)
LEAVING_GRACE_S = 1.0


@dataclass(slots=True)
class Membership:
    """What a node knows of the membership when it starts (or last saved it)."""

    members: list[tuple[str, str, str]]  # (id, raft_address, http_url)
    epoch: int = 0
    # The epoch of the membership this node joined with (0: a seed node): a
    # removal of this node's id at or before it concerns an earlier node of
    # the same id, not this one.
    joined_epoch: int = 0

    def raft_addresses(self, except_address: str = "") -> list[str]:
        return [r for _, r, _ in self.members if r != except_address]


def members_path(data_dir: str) -> str:
    return os.path.join(data_dir, MEMBERS_FILE)


def load(data_dir: str, ops: FileOps | None = None) -> Membership | None:
    """The saved membership, or None when this data directory has none."""
    path = members_path(data_dir)
    ops = ops or FileOps()
    if not ops.exists(path):
        return None
    try:
        plain = msgpack.unpackb(read_framed(path, _MAGIC, ops=ops), raw=False)
        return Membership([(str(i), str(r), str(h)) for i, r, h in plain["members"]],
                          int(plain["epoch"]), int(plain["joined_epoch"]))
    except CorruptDataError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptDataError(path, f"not a membership: {exc}") from None


def save(data_dir: str, membership: Membership, durability: Durability = "fsync",
         ops: FileOps | None = None) -> None:
    plain = {"members": [list(m) for m in membership.members], "epoch": membership.epoch,
             "joined_epoch": membership.joined_epoch}
    os.makedirs(data_dir, exist_ok=True)
    write_framed(members_path(data_dir), _MAGIC, msgpack.packb(plain, use_bin_type=True),
                 durable=durability == "fsync", ops=ops or FileOps())


def touches_membership(cmd: Command | Group) -> bool:
    if isinstance(cmd, Group):
        return any(isinstance(c.body, MEMBERSHIP_BODIES) for c in cmd.commands)
    return isinstance(cmd.body, MEMBERSHIP_BODIES)


@dataclass
class PeerSet:
    """This node's peers in PySyncObj, kept equal to the replicated membership."""

    node_id: str
    self_address: str
    data_dir: str
    durability: Durability = "fsync"
    joined_epoch: int = 0
    # The epoch of the membership the node started with (saved, or asked with
    # ``join``): the log it replays holds older ones, which must not move its
    # peers back (a joining node would drop the leader it is catching up from).
    known_epoch: int = 0
    saved_epoch: int = -1
    removed: bool = False
    on_removed: Callable[[], None] | None = None
    # The raft addresses of the other members, as PySyncObj has them now.
    addresses: list[str] = field(default_factory=list)
    # A member's raft address -> the address to dial it at instead (config ``raft_dial``).
    dial: dict[str, str] = field(default_factory=dict)
    # The other members' raft addresses once the membership is recorded, and the
    # removed peers the leader still keeps (until a deadline).
    _wanted: list[str] | None = field(default=None, init=False)
    _leaving: dict[str, float] = field(default_factory=dict, init=False)
    # A membership not saved yet because the write failed (a full disk): retried
    # every tick. The file only speeds up a restart (the log and the snapshots
    # hold the membership), so a failed save must not stop the node applying.
    _unsaved: Membership | None = field(default=None, init=False)
    _failed_epoch: int = field(default=-1, init=False)

    def follow(self, machine: Any, members: dict[str, list[str]], epoch: int) -> None:
        """Make ``machine``'s peers the members of ``members`` other than this node,
        save the membership, and notice this node's own removal."""
        if not members or machine is None or epoch < self.known_epoch:
            return  # not recorded yet, or older than what the node knows: its peers stand
        self.known_epoch = epoch
        wanted = [self.dial.get(record[0], record[0]) for member_id, record in members.items()
                  if member_id != self.node_id and record[0] != self.self_address]
        if machine._isLeader():
            # The leader keeps a removed peer a moment longer, so that the
            # commit index that applies its removal reaches it and it stops.
            deadline = time.monotonic() + LEAVING_GRACE_S
            for node in machine._SyncObj__otherNodes:
                if node.address not in wanted:
                    self._leaving.setdefault(node.address, deadline)
        self._wanted = wanted
        self.settle(machine)
        if epoch != self.saved_epoch:
            self._unsaved = Membership([(i, r[0], r[1]) for i, r in members.items()],
                                       epoch, self.joined_epoch)
            self._save_unsaved()
        if self.node_id not in members and epoch > self.joined_epoch and not self.removed:
            self.removed = True
            log.warning("node %s was removed from the cluster (membership epoch %d)",
                        self.node_id, epoch)
            if self.on_removed is not None:
                self.on_removed()

    def _save_unsaved(self) -> None:
        pending = self._unsaved
        if pending is None:
            return
        try:
            save(self.data_dir, pending, self.durability)
        except (OSError, StorageFullError) as exc:
            # Not the storage's 507 either: the journal's own space check says
            # when client writes must be refused; this file can wait.
            if self._failed_epoch != pending.epoch:  # once per epoch, not every tick
                log.warning("could not save membership epoch %d in %s (%s); retrying",
                            pending.epoch, self.data_dir, exc)
                self._failed_epoch = pending.epoch
            return
        self.saved_epoch, self._unsaved = pending.epoch, None

    def settle(self, machine: Any) -> None:
        """Drop the removed peers whose grace has passed, and retry a membership save
        that failed (called on every tick)."""
        self._save_unsaved()
        if self._wanted is None or machine is None:
            return
        now = time.monotonic()
        keep = [a for a, until in self._leaving.items() if until > now and a not in self._wanted]
        self._leaving = {a: self._leaving[a] for a in keep}
        target = self._wanted + keep
        if target != self.addresses:
            change_peers(machine, target)
            self.addresses = target


def change_peers(machine: Any, wanted: list[str]) -> None:
    """Add and drop PySyncObj's peers so that they are ``wanted`` (raft addresses).

    Through PySyncObj's own ``__doChangeCluster``, which keeps its next and
    match indexes and its transport's node table in step; on the leader a new
    peer starts as just heard from, so it does not count against the quorum
    before it had a chance to answer.
    """
    current = {node.address: node for node in machine._SyncObj__otherNodes}
    change = machine._SyncObj__doChangeCluster
    for address in sorted(set(current) - set(wanted)):
        change(["rem", address, current[address]])
    for address in wanted:
        if address not in current:
            change(["add", address, TCPNode(address)])


def hand_over(machine: Any) -> bool:
    """On the leader: ask the most caught-up follower to take over (Raft's
    TimeoutNow); False when this node does not lead or no follower is caught up."""
    if machine is None or not machine._isLeader():
        return False
    outcome: list[int] = []
    machine.transferLeadership(None, lambda _res, err: outcome.append(err))
    return outcome == [FAIL_REASON.SUCCESS]


def peer_silence(machine: Any) -> dict[str, float]:
    """On the leader: seconds since each peer last answered (infinite while it is not
    connected); empty elsewhere."""
    if machine is None or not machine._isLeader():
        return {}
    heard = machine._SyncObj__lastResponseTime
    connected = machine._SyncObj__connectedNodes
    now = time.monotonic()  # PySyncObj's monotonicTime
    return {node.address: now - heard.get(node, 0.0) if node in connected else float("inf")
            for node in machine._SyncObj__otherNodes}
