"""The msgpack encoding of the membership commands (ops 40-44, see ``raftq.state.encoding``)."""

from __future__ import annotations

from typing import Any

from raftq.state.commands import AddMember, Member, MemberReady, RemoveMember, SeedMembers
from raftq.state.plain import _int as integer
from raftq.state.plain import _list as items
from raftq.state.plain import _str as string


def to_plain(body: SeedMembers | AddMember | RemoveMember | MemberReady) -> list[Any]:
    if isinstance(body, SeedMembers):
        return [[m.id, m.raft_address, m.http_url] for m in body.members]
    if isinstance(body, AddMember):
        m = body.member
        return [m.id, m.raft_address, m.http_url, body.epoch, body.actor]
    if isinstance(body, RemoveMember):
        return [body.id, body.epoch, body.actor]
    return [body.id]


def _member(p: Any) -> Member:
    member_id, raft_address, http_url = items(p, 3)
    return Member(string(member_id), string(raft_address), string(http_url))


def seed_members(p: Any) -> SeedMembers:
    return SeedMembers([_member(m) for m in items(p)])


def add_member(p: Any) -> AddMember:
    row = items(p, 5)
    return AddMember(_member(row[:3]), integer(row[3]), string(row[4]))


def remove_member(p: Any) -> RemoveMember:
    member_id, epoch, actor = items(p, 3)
    return RemoveMember(string(member_id), integer(epoch), string(actor))


def member_ready(p: Any) -> MemberReady:
    return MemberReady(string(items(p, 1)[0]))
