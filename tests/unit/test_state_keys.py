"""API keys and the audit log in the replicated state."""

from __future__ import annotations

from state_helpers import Harness, spec

from raftq.state import commands as c
from raftq.state import snapshot

H1, H2, H3 = "11" * 32, "22" * 32, "33" * 32


def test_a_key_is_found_by_its_hash_until_revoked() -> None:
    h = Harness()
    assert h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))["created"]
    created = h.run(c.CreateKey("ci", "worker", H2, "admin"))
    assert created["key"] == {"name": "ci", "role": "worker", "created_ms": h.now_ms,
                              "created_by": "admin", "revoked_ms": None}
    assert h.state.key_by_hash(H2) == ("ci", "worker", H2)
    assert h.run(c.RevokeKey("ci", "admin"))["revoked"]
    assert h.state.key_by_hash(H2) is None
    assert h.state.key_by_hash(H1) == ("admin", "admin", H1)
    assert [k["name"] for k in h.state.keys_view()] == ["admin", "ci"]
    assert h.state.keys_view()[1]["revoked_ms"] == h.now_ms


def test_a_bootstrap_key_is_installed_once_and_never_again_after_a_revocation() -> None:
    h = Harness()
    h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))
    again = h.run(c.CreateKey("admin", "admin", H3, "bootstrap:node2", True))
    assert again["created"] is False
    assert h.state.key_by_hash(H3) is None
    h.run(c.CreateKey("admin2", "admin", H2, "admin"))
    h.run(c.RevokeKey("admin", "admin2"))
    assert h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))["created"] is False
    assert h.state.key_by_hash(H1) is None


def test_names_and_tokens_are_unique_among_active_keys() -> None:
    h = Harness()
    h.run(c.CreateKey("a", "reader", H1, "admin"))
    assert h.run(c.CreateKey("a", "reader", H2, "admin"))["error"] == "conflict"
    assert h.run(c.CreateKey("b", "reader", H1, "admin"))["error"] == "conflict"
    assert h.run(c.CreateKey("c", "root", H3, "admin"))["error"] == "invalid"
    h.run(c.RevokeKey("a", "admin"))
    assert h.run(c.CreateKey("a", "producer", H2, "admin"))["created"]  # the name is free again
    assert h.state.key_by_hash(H2) == ("a", "producer", H2)
    assert h.run(c.RevokeKey("nope", "admin"))["error"] == "not_found"


def test_the_last_admin_key_cannot_be_revoked() -> None:
    h = Harness()
    h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))
    assert h.run(c.RevokeKey("admin", "admin"))["error"] == "conflict"
    assert h.state.key_by_hash(H1) is not None


def test_admin_actions_are_audited_with_their_actor() -> None:
    h = Harness()
    h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))
    h.submit(spec("a"), spec("b"))
    h.run(c.Cancel("a", "producer1"))
    h.run(c.Cancel("missing", "producer1"))  # refused: not audited
    token = h.claim_one()
    h.fail("b", token, retry=False)
    h.run(c.Requeue("b", "admin"))
    token = h.claim_one()
    h.fail("b", token, retry=False)
    h.run(c.Purge(None, None, "admin"))
    rows = [(e["actor"], e["action"], e["target"], e["detail"]) for e in h.state.audit_view()]
    assert rows == [
        ("bootstrap:node1", "key.create", "admin", {"role": "admin"}),
        ("producer1", "cancel", "a", {}),
        ("admin", "requeue", "b", {}),
        ("admin", "purge", "queue:*", {"purged": 1}),
    ]
    assert [e["seq"] for e in h.state.audit_view(after_seq=2, limit=1)] == [3]
    assert [e["seq"] for e in h.state.audit_view(limit=2)] == [3, 4]


def test_keys_and_audit_survive_a_snapshot() -> None:
    h = Harness()
    h.run(c.CreateKey("admin", "admin", H1, "bootstrap:node1", True))
    h.run(c.CreateKey("w", "worker", H2, "admin"))
    h.run(c.RevokeKey("w", "admin"))
    restored = snapshot.loads(snapshot.dumps(h.state))
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    assert restored.key_by_hash(H1) == ("admin", "admin", H1)
    assert restored.key_by_hash(H2) is None
    assert restored.audit_view() == h.state.audit_view()
    restored.apply(c.Command(c.CreateKey("x", "reader", H3, "admin"), "r", h.now_ms))
    assert restored.audit_view()[-1]["seq"] == 4
