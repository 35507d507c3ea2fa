"""HTTP handlers for API keys and the audit log (admin only; see ``raftq.server.auth``).

A new key's token is made here (or given by the caller, so that a retried
request presents the same one) and shown once, in the answer; only its hash
is proposed. Revoking commits everywhere: every node refuses the key once it
has applied the revocation.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from raftq.errors import Conflict, InvalidRequest
from raftq.raft.replica import Replica
from raftq.server import validate as v
from raftq.server.auth import hash_key
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import Body, CreateKey, RevokeKey
from raftq.state.keys import HASH, ROLES

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,99}$")
TOKEN = re.compile(r"^[A-Za-z0-9_.~+/=-]{32,256}$")
TOKEN_PREFIX = "rq_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class KeysApi:
    def __init__(self, replica: Replica, body: Callable[[Request], Any],
                 propose: Callable[[Request, Body], Awaitable[Any]],
                 raise_for: Callable[[Any], Any]) -> None:
        self.replica = replica
        self.body = body
        self.propose = propose
        self.raise_for = raise_for

    async def create(self, request: Request) -> Response:
        body = v.obj(self.body(request), {"name", "role", "token"})
        name = v.string(body, "name")
        if not NAME.match(name):
            raise InvalidRequest("name must be 1-100 letters, digits or _.:@- (starting with a "
                                 "letter or digit)", field="name")
        role = v.string(body, "role")
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}", field="role")
        token = body.get("token")
        if token is None:
            token = new_token()
        elif not isinstance(token, str) or not TOKEN.match(token):
            raise InvalidRequest("token must be 32-256 URL-safe characters (or left out, and "
                                 "the node makes one)", field="token")
        key_hash = hash_key(token)
        result = self.raise_for(await self.propose(
            request, CreateKey(name, role, key_hash, request.actor)))
        if self.replica.state.keys.get(name, [None] * 5)[HASH] != key_hash:
            # A repeat of a request whose first attempt made the key with another
            # token (made by the node, and shown in that attempt's answer).
            raise Conflict(f"key {name} was created by an earlier attempt of this request; "
                           "revoke it and create it again")
        return json_response({"key": result["key"], "token": token}, status=201)

    async def list(self, request: Request) -> Response:
        return json_response({"keys": self.replica.state.keys_view()})

    async def revoke(self, request: Request) -> Response:
        name = request.match_info["name"]
        result = self.raise_for(await self.propose(request, RevokeKey(name, request.actor)))
        return json_response({"key": result["key"]})

    async def audit(self, request: Request) -> Response:
        q = request.query
        after = q.get("after")
        if after is not None and not (after.isdigit() and len(after) < 16):
            raise InvalidRequest("after must be an audit sequence number", field="after")
        limit = v.wait_ms(q.get("limit", "100"), "limit")
        if not 1 <= limit <= 1000:
            raise InvalidRequest("limit must be 1-1000", field="limit")
        return json_response({"entries": self.replica.state.audit_view(
            None if after is None else int(after), limit)})
