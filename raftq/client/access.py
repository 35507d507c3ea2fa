"""Who a client is and whom it trusts, and the calls that manage keys.

The API key a client sends (``Authorization: Bearer``) and the CA file that
verifies ``https://`` nodes: given, else from the environment. The admin
calls (create, list and revoke keys; read the audit log) as plain ``Call``
data, like those of ``raftq.client.calls``. See docs/security.md.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import quote

from raftq import errors
from raftq.client.calls import Call, new_id

API_KEY_ENV = "RAFTQ_API_KEY"
CA_FILE_ENV = "RAFTQ_CA_FILE"


def resolve_api_key(api_key: str | None, environ: Mapping[str, str]) -> str | None:
    """The API key to send: the given one, else ``RAFTQ_API_KEY``, else none."""
    key = (api_key if api_key is not None else environ.get(API_KEY_ENV, "")).strip()
    if any(c.isspace() for c in key) or not key.isprintable():
        raise errors.ConfigError("an API key must be one word of printable characters")
    return key or None


def resolve_ca_file(ca_file: str | None, environ: Mapping[str, str]) -> str | None:
    """The CA file that verifies the nodes' certificates: the given one, else
    ``RAFTQ_CA_FILE``, else the system's trusted CAs (None)."""
    return ca_file or environ.get(CA_FILE_ENV) or None


def create_key(name: str, role: str) -> Call:
    # The token is made here, not by the node: every retry presents the same one.
    body = {"name": name, "role": role, "token": "rq_" + secrets.token_urlsafe(32)}
    return Call("POST", "/v1/keys", body=body, idempotency_key=new_id())


def list_keys() -> Call:
    return Call("GET", "/v1/keys", unwrap="keys")


def revoke_key(name: str) -> Call:
    return Call("DELETE", f"/v1/keys/{quote(name, safe='')}", idempotency_key=new_id(),
                unwrap="key")


def audit(after: int | None, limit: int) -> Call:
    return Call("GET", "/v1/audit", {"after": after, "limit": limit}, unwrap="entries")
