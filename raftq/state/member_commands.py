"""The membership's commands (ops 40-43; part of ``raftq.state.commands``, which exports
them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Member:
    """A voting node: its id, its raft address (host:port) and the URL of its HTTP API."""

    id: str
    raft_address: str
    http_url: str


@dataclass(slots=True)
class SeedMembers:
    """The first membership of a new cluster (from its nodes' configs); a no-op once
    there is one."""

    members: list[Member]


@dataclass(slots=True)
class AddMember:
    """Add a voting node; ``epoch`` is the membership's epoch the proposer saw, so
    of two changes decided on the same membership only the first applies."""

    member: Member
    epoch: int
    actor: str = ""


@dataclass(slots=True)
class RemoveMember:
    id: str
    epoch: int
    actor: str = ""


@dataclass(slots=True)
class MemberReady:
    """A node added by the latest change says it has caught up with the log: the
    change is over, and the next may be made."""

    id: str
