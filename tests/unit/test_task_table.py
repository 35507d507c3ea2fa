"""The task table of a snapshot by columns (raftq.state.task_table, format 5): the
same tasks back, one object per run of equal values, never a list shared between
tasks, and the snapshots written before it (rows) still load."""

from __future__ import annotations

import msgpack
from state_helpers import ERROR, Harness, check_consistency, spec

from raftq.state import snapshot
from raftq.state.model import Status, Task
from raftq.state.sharing import Shared
from raftq.state.task_table import (
    ids_from_plain,
    ids_to_plain,
    positions,
    tasks_from_plain,
    tasks_to_plain,
)


def _harness() -> Harness:
    h = Harness()
    h.submit(*(spec(f"q{i}", name="bulk", queue="load") for i in range(50)))
    h.submit(spec("x", name="other", priority=255), spec("y", delay_ms=5_000))
    h.fail("x", h.claim_one("w1", "default"), retry=True)
    h.tick(3_000)
    h.fail("x", h.claim_one("w1", "default"), retry=False)
    leased = h.claim("w2", ["load"], max=3)
    for task in leased[:2]:  # two equal errors lists, side by side in the table
        h.fail(task["id"], task["lease_token"], retry=False, worker_id="w2")
    return h


def _packed(task: Task) -> bytes:
    return bytes(msgpack.packb(task.to_plain(), use_bin_type=True))


def _roundtrip(tasks: list[Task]) -> dict[str, Task]:
    blob = msgpack.packb(tasks_to_plain(tasks), use_bin_type=True)
    return tasks_from_plain(msgpack.unpackb(blob, raw=False), Shared())


def test_restore_takes_the_fields_in_their_order() -> None:
    row = [f"v{i}" for i in range(len(Task.FIELDS))]
    (task,) = Task.restore([row])
    assert [getattr(task, f) for f in Task.FIELDS] == row


def test_the_tasks_come_back_field_for_field_in_their_order() -> None:
    h = _harness()
    tasks = list(h.state.tasks.values())
    back = _roundtrip(tasks)
    assert list(back) == [t.id for t in tasks]
    assert [_packed(t) for t in back.values()] == [_packed(t) for t in tasks]
    assert all(type(t.status) is Status for t in back.values())


def test_repeated_values_are_one_object_and_lists_are_never_shared() -> None:
    h = _harness()
    back = list(_roundtrip(list(h.state.tasks.values())).values())
    bulk = [t for t in back if t.name == "bulk"]
    assert len({id(t.name) for t in bulk}) == 1 and len({id(t.queue) for t in bulk}) == 1
    assert all(t.errors == () for t in back if t.id not in ("x", "q0", "q1"))  # shared
    failed = back[[t.id for t in back].index("x")]
    assert len(failed.errors) == 2 and failed.errors[0][2] == ERROR
    assert back[0].errors == back[1].errors != ()
    lists = [id(t.errors) for t in back if t.errors] + [id(t.flow_keys) for t in back
                                                          if t.flow_keys is not None]
    assert len(lists) == len(set(lists))


def test_a_column_of_unique_values_is_not_written_as_runs() -> None:
    h = _harness()
    columns = tasks_to_plain(h.state.tasks.values())
    by_field = dict(zip(Task.FIELDS, columns, strict=True))
    assert by_field["id"][1] is None and by_field["payload"][1] is None
    names, counts = by_field["name"]
    assert sum(counts) == len(h.state.tasks) and len(names) < len(h.state.tasks)


def test_a_format_4_snapshot_of_rows_loads_to_the_same_state() -> None:
    h = _harness()
    plain = snapshot.to_plain(h.state)
    assert plain["format"] == 5
    plain["format"] = 4
    plain["tasks"] = [t.to_plain() for t in h.state.tasks.values()]
    plain["by_status"] = {str(s): list(ids) for s, ids in h.state.by_status.items()}
    plain["dedupe"] = [[k, v] for k, v in h.state.dedupe.items()]
    old = snapshot.from_plain(msgpack.unpackb(msgpack.packb(plain, use_bin_type=True),
                                              raw=False, strict_map_key=False))
    assert snapshot.digest(old) == snapshot.digest(h.state)
    check_consistency(old)


def test_id_lists_are_written_as_runs_of_table_positions() -> None:
    table = [f"t{i}" for i in range(10)]
    at = positions(table)
    ids = ["t2", "t3", "t4", "gone", "t0", "t9", "t8", "other"]
    plain = ids_to_plain(ids, at)
    assert plain == [2, 3, "gone", 0, 1, 9, 1, 8, 1, "other"]
    back = ids_from_plain(plain, table)
    assert back == ids
    assert all(b is table[at[b]] for b in back if b in at)  # the table's own strings
    assert ids_to_plain(table, at) == [0, 10] and ids_to_plain([], at) == []


def test_a_bulk_load_restores_its_index_and_dedupe_from_a_few_positions() -> None:
    h = Harness()
    h.submit(*(spec(f"q{i}") for i in range(300)))
    plain = snapshot.to_plain(h.state)
    assert plain["by_status"]["queued"] == [0, 300]
    (kept,) = [v for _, v in plain["dedupe"] if isinstance(v, dict)]
    assert kept == {"queued_ids": [0, 300]}
    restored = snapshot.from_plain(plain)
    assert snapshot.digest(restored) == snapshot.digest(h.state)
    ids = list(restored.by_status[Status.QUEUED])
    assert all(i is restored.tasks[i].id for i in ids)
