"""The chaos checker judged on synthetic histories: each violation is reported,
and a clean history with an allowed after-expiry duplicate passes. Also the
harness's TCP fault proxy, which needs no privileges."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

from raftq.chaos.checker import DrainState, check
from raftq.chaos.history import FAIL, OK, UNKNOWN, HistoryWriter, read_history
from raftq.chaos.net import link
from raftq.chaos.proxy import FaultProxy

LEASE_MS = 1000.0
T0 = 1_700_000_000_000.0


def submit(ids: list[str], t: float, outcome: str = OK) -> dict[str, Any]:
    return {"type": "submit", "task_ids": ids, "batch": len(ids) > 1, "node": "n1",
            "t_inv": T0 + t, "t_done": T0 + t + 5, "outcome": outcome}


def claim(worker: str, tid: str, token: int, t: float) -> dict[str, Any]:
    """A claim answered 5 ms after it was sent, granted at ``t``."""
    return {"type": "claim", "worker_id": worker, "lease_ms": LEASE_MS, "t_inv": T0 + t,
            "t_done": T0 + t + 5, "outcome": OK,
            "tasks": [{"id": tid, "token": token, "expires_ms": T0 + t + LEASE_MS}]}


def complete(worker: str, tid: str, token: int, t: float, outcome: str = OK,
             code: str | None = None) -> dict[str, Any]:
    return {"type": "complete", "worker_id": worker, "task_id": tid, "token": token,
            "t_inv": T0 + t, "t_done": T0 + t + 5, "outcome": outcome, "code": code}


def heal(t: float) -> dict[str, Any]:
    return {"type": "fault", "phase": "heal", "fault": "kill", "targets": ["n1"], "t": T0 + t}


def succeeded(token: int) -> dict[str, Any]:
    return {"status": "succeeded", "result": {"token": token}}


def drain(tasks: dict[str, dict[str, Any] | None], **kw: Any) -> DrainState:
    return DrainState(tasks=tasks, t_final_heal=T0 + 5000, t_all_terminal=T0 + 5100, **kw)


def clean_history() -> tuple[list[dict[str, Any]], DrainState]:
    ops = [
        submit(["a", "b"], 0),
        submit(["c"], 10),
        submit(["x"], 20, outcome=UNKNOWN),  # never created: not lost, not acknowledged
        claim("w1", "a", 1, 100),
        complete("w1", "a", 1, 200),
        claim("w1", "b", 2, 100),
        complete("w1", "b", 2, 150),
        # c: w1's lease expires at 1100, w2 claims at 1500, w1 completes late (rejected).
        claim("w1", "c", 3, 100),
        claim("w2", "c", 4, 1500),
        complete("w1", "c", 3, 1600, outcome=FAIL, code="stale_lease"),
        complete("w2", "c", 4, 1700),
        heal(5000),
        submit(["d"], 5100),
        claim("w2", "d", 5, 5200),
        complete("w2", "d", 5, 5300),
        {"type": "node_status", "node": "n1", "t": T0, "role": "leader", "term": 3},
        {"type": "node_status", "node": "n2", "t": T0, "role": "follower", "term": 3},
    ]
    tasks: dict[str, dict[str, Any] | None] = {
        "a": succeeded(1), "b": succeeded(2), "c": succeeded(4), "d": succeeded(5),
    }
    return ops, drain(tasks)


def test_clean_history_passes_and_reports_after_expiry_duplicate() -> None:
    ops, state = clean_history()
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.ok, v.failures()
    assert v.acknowledged == 4 and v.attempted == 5 and v.completed == 4
    assert v.duplicated_after_expiry == ["c"]
    assert v.duplicated_while_valid == [] and v.stale_accepted == []
    assert v.stale_rejected == 1
    assert v.recoveries[0]["recovery_ms"] == 105
    assert v.to_json()["ok"] is True


def test_lost_task_is_reported() -> None:
    ops, state = clean_history()
    ops.append(submit(["e"], 30))
    state.tasks["e"] = None  # acknowledged, then gone
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.lost == ["e"] and not v.ok


def test_acknowledged_task_left_queued_is_lost() -> None:
    ops, state = clean_history()
    ops.append(submit(["e"], 30))
    state.tasks["e"] = {"status": "queued"}
    assert check(ops, state, lease_ms=LEASE_MS).lost == ["e"]


def test_double_completion_while_lease_valid_is_reported() -> None:
    ops, state = clean_history()
    ops += [
        submit(["f"], 40),
        claim("w1", "f", 10, 100),   # valid until 1100
        claim("w2", "f", 11, 400),   # granted while w1 holds the lease
        complete("w1", "f", 10, 500),
        complete("w2", "f", 11, 600),
    ]
    state.tasks["f"] = succeeded(10)
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.duplicated_while_valid == ["f"]
    assert "f" not in v.duplicated_after_expiry
    assert not v.ok


def test_extension_keeps_lease_valid() -> None:
    ops, state = clean_history()
    ops += [
        submit(["g"], 40),
        claim("w1", "g", 10, 100),  # expires 1100
        {"type": "extend", "task_id": "g", "token": 10, "expires_ms": T0 + 3000,
         "t_inv": T0 + 900, "t_done": T0 + 905, "outcome": OK},
        claim("w2", "g", 11, 2000),  # before the extended expiry
        complete("w2", "g", 11, 2100),
    ]
    state.tasks["g"] = succeeded(11)
    assert check(ops, state, lease_ms=LEASE_MS).duplicated_while_valid == ["g"]


def test_stale_token_completion_accepted_is_reported() -> None:
    ops, state = clean_history()
    ops += [
        submit(["h"], 40),
        claim("w1", "h", 20, 100),
        claim("w2", "h", 21, 1500),  # after w1's lease expired
        complete("w1", "h", 20, 1600),  # w1's stale token, yet accepted
    ]
    state.tasks["h"] = succeeded(20)
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.stale_accepted == ["h"] and not v.ok
    assert v.duplicated_while_valid == []


def test_stale_token_in_final_result_is_reported_even_if_answer_was_lost() -> None:
    ops, state = clean_history()
    ops += [
        submit(["i"], 40),
        claim("w1", "i", 30, 100),
        claim("w2", "i", 31, 1500),
        complete("w1", "i", 30, 1600, outcome=UNKNOWN),
        complete("w2", "i", 31, 1700, outcome=FAIL, code="conflict"),
    ]
    state.tasks["i"] = succeeded(30)
    assert check(ops, state, lease_ms=LEASE_MS).stale_accepted == ["i"]


def test_unexpected_completion_is_reported() -> None:
    ops, state = clean_history()
    ops += [claim("w1", "ghost", 40, 100), complete("w1", "ghost", 40, 200)]
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.unexpected == ["ghost"] and not v.ok


def test_two_leaders_in_one_term_are_reported() -> None:
    ops, state = clean_history()
    ops.append({"type": "node_status", "node": "n2", "t": T0 + 1, "role": "leader", "term": 3})
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.multiple_leaders == {"3": ["n1", "n2"]} and not v.ok


def test_slow_recovery_and_slow_drain_are_reported() -> None:
    ops, state = clean_history()
    ops.append(heal(20_000))
    ops.append(submit(["j"], 26_000))
    state.tasks["j"] = succeeded(0)
    state.t_all_terminal = T0 + 5000 + 3 * LEASE_MS
    v = check(ops, state, lease_ms=LEASE_MS)
    assert [r["recovery_ms"] for r in v.slow_recoveries] == [6005]
    assert v.max_recovery_ms == 6005
    assert not v.drain_ok and not v.ok


def test_digest_mismatch_and_unreadable_fail() -> None:
    ops, state = clean_history()
    state.digests_converged = False
    state.unreadable = ["a"]
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.unreadable == ["a"] and not v.ok
    assert any("digest" in line for line in v.failures())


def test_history_roundtrip_skips_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "w1.jsonl"
    writer = HistoryWriter(path, "w1")
    writer.record(submit(["a"], 5))
    writer.record(submit(["b"], 0))
    writer.close()
    with path.open("a") as f:
        f.write('{"type": "claim", "tas')  # SIGKILL mid-line
    ops = read_history([path])
    assert [op["task_ids"] for op in ops] == [["b"], ["a"]]
    assert ops[0]["process"] == "w1"


def test_failover_after_fault_start_is_reported_not_judged() -> None:
    ops, state = clean_history()
    ops.append({"type": "fault", "phase": "start", "fault": "kill-majority",
                "targets": ["n1", "n2"], "t": T0 + 30})
    ops.append(submit(["k"], 9000))
    ops.append({"type": "boot", "targets": ["n1", "n2"], "t": T0 + 4000, "boot_ms": 900})
    state.tasks["k"] = succeeded(0)
    v = check(ops, state, lease_ms=LEASE_MS)
    assert v.max_failover_ms == 5075  # the first write sent after the start: "d" at 5100
    assert v.max_boot_ms == 900
    assert v.ok, v.failures()


def test_fault_proxy_forwards_blocks_and_heals() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    target = server.getsockname()[1]

    def echo() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(1024):
                    conn.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    probe = socket.create_server(("127.0.0.1", 0))
    listen = probe.getsockname()[1]
    probe.close()
    proxy = FaultProxy(seed=1)
    try:
        proxy.add_route("127.0.0.1", listen, target, link("n2", "n1"))

        def roundtrip() -> bytes | None:
            with socket.create_connection(("127.0.0.1", listen), timeout=0.5) as s:
                s.sendall(b"ping")
                try:
                    return s.recv(16)
                except TimeoutError:
                    return None

        assert roundtrip() == b"ping"
        proxy.set_faults({link("n1", "n2")}, {})
        assert roundtrip() is None  # held, never forwarded: a black hole
        proxy.set_faults(set(), {link("n1", "n2"): 1.0})
        assert roundtrip() == b"ping"  # every chunk delayed, none lost
    finally:
        proxy.close()
        server.close()
