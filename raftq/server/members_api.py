"""HTTP handlers for the cluster's membership: list it, add a node, remove one.

A change is decided on the leader, the only node that knows which members
answer it: a node that is not the leader hands the request to the leader's
HTTP URL (from the replicated membership) and relays its answer. On the
leader a change is refused

- while another is under way: one proposed by this leader and not applied
  yet, or a node added by the latest change that has not yet reported that
  it caught up with the log (``MemberReady``, proposed by the node itself,
  ``raftq.server.node``); removing that node is the way to undo the change;
- when, after it, the members that answer the leader would not be a
  majority of the members (a node being added counts as not answering).

The state machine refuses a change decided on an older membership
(``raftq.state.members``), so two leaders in a row cannot both apply one.
Removing the leader itself first hands its leadership to the most caught-up
follower, then relays the request to the new leader.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp

from raftq.errors import (
    ChangeInProgress,
    InvalidRequest,
    NoLeader,
    NotFound,
    Unavailable,
    WouldLoseQuorum,
)
from raftq.server import validate as v
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import AddMember, Body, Member, RemoveMember
from raftq.state.members import RAFT_ADDRESS

if TYPE_CHECKING:
    from raftq.server.api import Api

NODE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
FORWARDED = "x-raftq-forwarded"
HANDOVER_WAIT_S = 5.0


class MembersApi:
    def __init__(self, api: Api) -> None:
        self.api = api
        self.replica = api.replica
        self._changing = False  # a change proposed by this node, not applied yet

    # ---------------------------------------------------------------- reads

    async def list(self, request: Request) -> Response:
        state = self.replica.state
        status = self.replica.raft_status()
        return json_response({**state.members_view(), "self": self.api.config.node_id,
                              "leader": self.api.status.id_of(status["leader"])})

    # -------------------------------------------------------------- changes

    async def add(self, request: Request) -> Response:
        body = v.obj(self.api.body(request), {"id", "raft_address", "http_url"})
        member = Member(node_id(v.string(body, "id"), "id"),
                        raft_address(v.string(body, "raft_address")),
                        http_url(v.string(body, "http_url")))
        done = self._already_done(request)
        if done is not None:
            return done
        relayed = await self._relay_to_leader(request)
        if relayed is not None:
            return relayed
        state = self.replica.state
        record = state.members.get(member.id)
        if record == [member.raft_address, member.http_url]:
            return json_response(state.members_view())  # already done (a retry)
        self._check_can_change(len(state.members) + 1, None)
        return await self._change(request, AddMember(member, state.member_epoch, request.actor))

    async def remove(self, request: Request) -> Response:
        target = node_id(request.match_info["id"], "id")
        state = self.replica.state
        done = self._already_done(request)
        if done is not None:
            return done
        if state.members and target not in state.members:
            raise NotFound(f"node {target} is not a member")
        record = state.members.get(target)
        if (record is not None and record[RAFT_ADDRESS] == self.replica.self_addr
                and self.replica.is_leader() and FORWARDED not in request.headers):
            await self._hand_over_leadership()
        relayed = await self._relay_to_leader(request)
        if relayed is not None:
            return relayed
        if target not in state.members:
            raise NotFound(f"node {target} is not a member")
        self._check_can_change(len(state.members) - 1, target)
        return await self._change(request, RemoveMember(target, state.member_epoch,
                                                        request.actor))

    async def _change(self, request: Request, body: Body) -> Response:
        self._changing = True
        try:
            result = await self.api.propose(request, body)
        finally:
            self._changing = False
        return _answer(result)

    def _already_done(self, request: Request) -> Response | None:
        """The answer of a retried request whose change was already applied (the
        node that relayed the first attempt may have stopped: it was removed)."""
        key = request.headers.get("idempotency-key")
        result = self.replica.state.dedupe.get(key) if key else None
        if result is None:
            return None
        return _answer(result)

    # ---------------------------------------------------------------- rules

    def _check_can_change(self, size_after: int, removing: str | None) -> None:
        """Raise unless this leader may make a change now (see the module docstring)."""
        state = self.replica.state
        if not state.members:
            raise Unavailable("the cluster's membership is not recorded yet (its first "
                              "leader records it within a second); retry")
        if self._changing:
            raise ChangeInProgress("another membership change is being committed; retry "
                                   "when it is done")
        last = state.last_added
        if last and last != removing and last in state.members:
            raise ChangeInProgress(
                f"node {last}, added by the last change, has not caught up yet: one change "
                "at a time. Start it (with `join`) and wait, or remove it, then retry")
        silence = self.replica.peer_silence()
        timeout_s = self.replica.tuning.raft_max_timeout_s
        dial = self.replica.peers.dial
        silent = [silence.get(dial.get(r[RAFT_ADDRESS], r[RAFT_ADDRESS]), float("inf"))
                  for member_id, r in state.members.items()
                  if member_id != removing and r[RAFT_ADDRESS] != self.replica.self_addr]
        answering = 1 + sum(1 for s in silent if s <= timeout_s)
        if answering * 2 <= size_after:
            raise WouldLoseQuorum(
                f"after this change {answering} of {size_after} members would answer the "
                f"leader, not a majority: the cluster would stop. Bring members back (or "
                "remove dead ones) first")

    # -------------------------------------------------------------- relaying

    async def _hand_over_leadership(self) -> None:
        if not self.replica.transfer_leadership():
            raise Unavailable("this node leads and no follower has caught up to take over; "
                              "retry shortly")
        deadline = time.monotonic() + HANDOVER_WAIT_S
        while time.monotonic() < deadline:
            status = self.replica.raft_status()
            if status["leader"] not in (None, self.replica.self_addr):
                return
            await self.replica.wait_changed(0.05)
        raise Unavailable("leadership is moving to another node; retry")

    async def _relay_to_leader(self, request: Request) -> Response | None:
        """None on the leader; elsewhere the leader's answer to the same request."""
        if self.replica.is_leader():
            return None
        leader = self.replica.raft_status()["leader"]
        url = self.api.status.http_url_of(leader)
        if leader is None or url is None or FORWARDED in request.headers:
            raise NoLeader("no leader to decide the membership change right now; retry")
        session = self.api.status.peer_session
        if session is None:
            raise NoLeader("this node is starting; retry")
        headers = {FORWARDED: "1", "Content-Type": "application/json"}
        for name in ("authorization", "idempotency-key"):
            if name in request.headers:
                headers[name] = request.headers[name]
        target = url.rstrip("/") + request.path
        try:
            async with session.request(
                    request.method, target, data=request.body or None, headers=headers,
                    ssl=self.api.status.peer_ssl,
                    timeout=aiohttp.ClientTimeout(total=15.0)) as resp:
                return Response(await resp.read(), status=resp.status,
                                headers=_retry_after(resp.headers))
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise NoLeader(f"the leader ({url}) did not answer: {exc}; retry") from None


def _answer(result: Any) -> Response:
    """The membership after a change, or the error of its refusal."""
    from raftq.server.api import raise_for  # api imports this module

    return json_response(raise_for(result))


def _retry_after(headers: Any) -> dict[str, str] | None:
    value = headers.get("Retry-After")
    return {"Retry-After": value} if value else None


def node_id(value: str, field: str) -> str:
    if not NODE_ID.match(value):
        raise InvalidRequest(f"{field} must be 1-64 letters, digits or _.- (starting with a "
                             "letter or digit)", field=field)
    return value


def raft_address(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidRequest(f"raft_address must look like host:port, got {value[:80]!r}",
                             field="raft_address")
    if host in ("0.0.0.0", "::", "[::]"):
        raise InvalidRequest("raft_address must be an address the other nodes can reach, "
                             "not a wildcard", field="raft_address")
    return value


def http_url(value: str) -> str:
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("http", "https") or not parts.hostname or port is None:
        raise InvalidRequest(f"http_url must look like http://host:port, got {value[:80]!r}",
                             field="http_url")
    return value.rstrip("/")
