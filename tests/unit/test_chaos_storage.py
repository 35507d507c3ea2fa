"""The storage nemeses' pieces that need no root: expectations in the checker,
where ``corrupt-node`` damages files, and waiting for a frozen process group."""

from __future__ import annotations

import os
import random
import signal
import subprocess
from pathlib import Path
from typing import Any

from raftq.chaos.checker import DrainState, check
from raftq.chaos.cluster import _group_stopped, wait_for
from raftq.chaos.storage_faults import _corrupt, _corruptible
from raftq.raft.journal_format import encode_entry, file_header, frame

T0 = 1_700_000_000_000.0


def expect_op(what: str, ok: bool, detail: str = "") -> dict[str, Any]:
    return {"type": "expect", "t": T0, "what": what, "ok": ok, "detail": detail}


def test_expectations_are_counted_and_a_failed_one_fails_the_run() -> None:
    drain = DrainState(tasks={}, t_final_heal=T0, t_all_terminal=T0)
    ops = [expect_op("507 through the full node", True),
           expect_op("507 through the full node", True),
           expect_op("no node died", True)]
    v = check(ops, drain, lease_ms=1000)
    assert v.ok, v.failures()
    assert v.expectations == {"507 through the full node": {"held": 2, "failed": 0},
                              "no node died": {"held": 1, "failed": 0}}
    ops.append(expect_op("refuses to start on a corrupt file", False,
                         "n2 started on raft.snapshot (truncated by 3 bytes)"))
    v = check(ops, drain, lease_ms=1000)
    assert not v.ok
    assert v.violations == ["refuses to start on a corrupt file: "
                            "n2 started on raft.snapshot (truncated by 3 bytes)"]
    assert v.violations[0] in v.failures()


class _Ctx:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)


def _journal(frames: int) -> bytes:
    """A header and ``frames`` frames of a few entries each."""
    out = file_header()
    for i in range(frames):
        out += frame(None, [encode_entry(bytes(range(1, 200)), 3 * i + k, 1) for k in range(3)])
    return out


def test_corruption_damages_the_snapshot_or_the_journal_before_its_last_frame(
    tmp_path: Path,
) -> None:
    written = _journal(5)
    last_frame = len(written) - (len(_journal(5)) - len(_journal(4)))
    snapshot = bytes(range(1, 201))
    hit = set()
    for seed in range(40):
        (tmp_path / "raft.journal").write_bytes(written + b"\0" * 4096)  # preallocated tail
        (tmp_path / "raft.snapshot").write_bytes(snapshot)
        damage = _corrupt(_Ctx(seed), tmp_path)  # type: ignore[arg-type]
        journal = (tmp_path / "raft.journal").read_bytes()
        after = (tmp_path / "raft.snapshot").read_bytes()
        hit.add(Path(str(damage["file"])).name)
        if damage["file"] == str(tmp_path / "raft.journal"):
            changed = [i for i, (a, b) in enumerate(zip(journal, written, strict=False)) if a != b]
            assert changed and max(changed) < last_frame  # a torn last frame is no corruption
            assert after == snapshot
        else:
            assert after != snapshot and journal[:len(written)] == written
            flipped = sum(a != b for a, b in zip(after, snapshot, strict=False))
            assert len(after) < len(snapshot) or flipped
    assert hit == {"raft.journal", "raft.snapshot"}


def test_nothing_to_corrupt_until_something_was_written(tmp_path: Path) -> None:
    assert _corruptible(tmp_path) == []
    (tmp_path / "raft.journal").write_bytes(b"\0" * (1 << 20))  # preallocated, never written
    assert _corruptible(tmp_path) == []
    (tmp_path / "raft.journal").write_bytes(_journal(1) + b"\0" * (1 << 20))
    assert _corruptible(tmp_path) == [(tmp_path / "raft.journal", len(file_header()))]
    (tmp_path / "raft.snapshot").write_bytes(b"snapshot")
    assert (tmp_path / "raft.snapshot", 8) in _corruptible(tmp_path)


def test_a_stopped_process_group_is_seen_stopped() -> None:
    proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert not _group_stopped(proc.pid)
        os.killpg(proc.pid, signal.SIGSTOP)
        assert wait_for(lambda: _group_stopped(proc.pid), timeout=5, interval=0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
