"""API keys and their roles: who may call the API.

A key is stored under its name with its role and the SHA-256 hash of its
token. The token itself never enters a command or the state: the node that
receives it hashes it at the edge. Every node checks requests against this
table, so a revocation is refused everywhere once it commits.

A revoked key stays as a tombstone (so a bootstrap key that an operator
revoked is not installed again by the next node start); a new key may take a
revoked key's name. The last active admin key cannot be revoked: nobody could
manage keys afterwards.
"""

from __future__ import annotations

from typing import Any

from raftq.state.audit import Audit
from raftq.state.commands import CreateKey, RevokeKey
from raftq.state.indexes import Result, reject

ROLES = ("admin", "producer", "worker", "reader")

# The fields of a key record: name -> [role, key_hash, created_ms, created_by, revoked_ms]
ROLE, HASH, CREATED_MS, CREATED_BY, REVOKED_MS = range(5)


class Keys(Audit):
    def __init__(self) -> None:
        super().__init__()
        self.keys: dict[str, list[Any]] = {}
        self.key_names: dict[str, str] = {}  # key_hash -> name, active keys only

    def _create_key(self, cmd: CreateKey) -> Result:
        if cmd.role not in ROLES:
            return reject("invalid", f"role must be one of {', '.join(ROLES)}")
        if not cmd.name or not cmd.key_hash:
            return reject("invalid", "a key needs a name and a hash")
        existing = self.keys.get(cmd.name)
        if cmd.bootstrap and existing is not None:
            return {"created": False, "key": self.key_view(cmd.name)}
        if existing is not None and not existing[REVOKED_MS]:
            return reject("conflict", f"a key named {cmd.name} exists; revoke it first")
        if cmd.key_hash in self.key_names:
            return reject("conflict", "that token is already the token of another key")
        if existing is not None:  # a revoked key's name, taken again
            self.key_names.pop(existing[HASH], None)
        self.keys[cmd.name] = [cmd.role, cmd.key_hash, self.clock_ms, cmd.actor, 0]
        self.key_names[cmd.key_hash] = cmd.name
        self._record(cmd.actor, "key.create", cmd.name, {"role": cmd.role})
        return {"created": True, "key": self.key_view(cmd.name)}

    def _revoke_key(self, cmd: RevokeKey) -> Result:
        record = self.keys.get(cmd.name)
        if record is None:
            return reject("not_found", f"no key named {cmd.name}")
        if record[REVOKED_MS]:
            return {"revoked": True, "key": self.key_view(cmd.name)}
        if record[ROLE] == "admin" and self._active_admins() == 1:
            return reject("conflict", f"{cmd.name} is the last admin key; create another "
                          "admin key before revoking it")
        record[REVOKED_MS] = self.clock_ms
        del self.key_names[record[HASH]]
        self._record(cmd.actor, "key.revoke", cmd.name, {"role": record[ROLE]})
        return {"revoked": True, "key": self.key_view(cmd.name)}

    def _active_admins(self) -> int:
        return sum(1 for r in self.keys.values() if r[ROLE] == "admin" and not r[REVOKED_MS])

    # ------------------------------------------------------------------ reads

    def key_by_hash(self, key_hash: str) -> tuple[str, str, str] | None:
        """(name, role, stored hash) of the active key with this hash, else None."""
        name = self.key_names.get(key_hash)
        if name is None:
            return None
        record = self.keys[name]
        return name, record[ROLE], record[HASH]

    def key_view(self, name: str) -> dict[str, Any]:
        role, _hash, created_ms, created_by, revoked_ms = self.keys[name]
        return {"name": name, "role": role, "created_ms": created_ms, "created_by": created_by,
                "revoked_ms": revoked_ms or None}

    def keys_view(self) -> list[dict[str, Any]]:
        return [self.key_view(name) for name in self.keys]
