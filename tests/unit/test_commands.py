"""The command envelope: every command survives encode/decode; garbage is a DecodeError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from state_helpers import ERROR, Harness, check_consistency, internal_errors, spec

from raftq.state import commands as c
from raftq.state import encoding
from raftq.state.machine import State

EXAMPLES: list[c.Body] = [
    c.Submit([spec("a"), spec("b", queue="q", priority=7, delay_ms=99, eta_ms=5)]),
    c.Submit([]),
    c.Claim("w1", ["default", "q"], 10, 30_000, "host", 1234),
    c.Claim("w1", [], 0, 0),
    c.Extend("w1", [("a", 1), ("b", 2)], 5_000),
    c.Release("w1", [("a", 1)]),
    c.Finish("w1", [c.Outcome("a", 1, b"\x01"), c.Outcome("b", 2, None, dict(ERROR), False)]),
    c.Cancel("a"),
    c.Requeue("a"),
    c.Purge("a", None),
    c.Purge(None, "q"),
    c.Purge(),
    c.Tick(100, 1_700_000_000_000, 7, "n1"),
    c.Purge("a", None, "admin"),
    c.Cancel("a", "producer-1"),
    c.Barrier(),
    c.Leave("w1"),
    c.CreateKey("ci", "worker", "ab" * 32, "admin"),
    c.CreateKey("admin", "admin", "cd" * 32, "bootstrap:node1", True),
    c.RevokeKey("ci", "admin"),
    c.Linked([spec("a"), spec("b")], [c.Deps([]), c.Deps(["a", "x"], "run", "failure", True)],
             "wf", ["ka", "kb"]),
    c.Linked([spec("c")], [c.Deps(["a"])]),
    c.CancelWorkflow("wf", "admin"),
    c.Submit([c.TaskSpec("x", "n", "q", 1, b"", 0, 0, 3, 1, 1, 1, 500, 0),
              c.TaskSpec("y", "n", "q", 1, b"", 0, 0, 3, 1, 1, 1, 0, 1_700_000_000_000)]),
    c.PutSchedule(c.ScheduleSpec("s", spec(""), cron="*/5 * * * *", timezone="Europe/Berlin",
                                 overlap="buffer_one", catchup="all", jitter_ms=9, end_ms=5)),
    c.PutSchedule(c.ScheduleSpec("s", spec(""), every_ms=1000), paused=True),
    c.PauseSchedule("s", True),
    c.DeleteSchedule("s"),
    c.Fire("s", 1_000, 3, spec("s@1000")),
    c.Fire("s", 1_000, 3, spec("s@1000:trigger"), manual=True),
    c.SeedMembers([c.Member("n1", "10.0.0.1:7101", "http://10.0.0.1:8101"),
                   c.Member("n2", "10.0.0.2:7101", "https://n2.example:8101")]),
    c.AddMember(c.Member("n3", "10.0.0.3:7101", "http://10.0.0.3:8101"), 4, "admin"),
    c.RemoveMember("n1", 5, "ops"),
    c.MemberReady("n3"),
    c.Claim("w1", ["a"], 2, 1_000, "h", 1, ["b", "c"]),
    c.Submit([c.TaskSpec("x", "n", "q", 1, b"", 0, 0, 3, 1, 1, 1, 0, 0, "acme"),
              c.TaskSpec("y", "n", "q", 1, b"", 0, 0, 3, 1, 1, 1, 9, 0, "", "r", "c", "u", 50)]),
    c.PutRateLimit("task:send", 100, 1_000, 20, "admin"),
    c.PutConcurrency("tenant:acme", 5, "admin"),
    c.DeleteLimit("rate", "task:send", "admin"),
    c.PutQueue("q", 10, True, [("acme", 3), ("b", 1)], "admin"),
    c.PutQueue("q"),
    c.Claim("w1", ["default"], 5, 30_000, "host", 1234, [], ["add", "slow"]),
    c.Claim("w1", ["default"], 5, 30_000, "host", 1234, ["q"], []),
    c.WorkerBeat("w1", "host", 12, ["default", "q"],
                 [c.TaskDef("add", "default", 128), c.TaskDef("slow", "q", 64, 1, 1_000, 0)],
                 2_000, 60_000, 8, "process", "paused", 125, 51_200, 3),
    c.WorkerBeat("w1", "", 0, [], [], 0, 0, 0),
    c.WorkerControl("w1", "pause", 0, "admin"),
    c.WorkerControl("w1", "concurrency", 4),
    c.Progress("w1", [("a", 3, 400, "step 2 of 5"), ("b", 4, 1000, "")]),
    c.RetryNow("a", "admin"),
]


def test_entries_from_before_the_audit_log_decode_with_no_actor() -> None:
    for op, body, want in [
        (c.Op.CANCEL, ["a"], c.Cancel("a")),
        (c.Op.REQUEUE, ["a"], c.Requeue("a")),
        (c.Op.PURGE, [None, "q"], c.Purge(None, "q")),
    ]:
        assert encoding.decode(_pack([c.VERSION, int(op), "r", 5, body])) == c.Command(want, "r", 5)


@pytest.mark.parametrize("body", EXAMPLES, ids=lambda b: type(b).__name__)
def test_every_command_round_trips(body: c.Body) -> None:
    cmd = c.Command(body, "req-1", 123_456)
    data = encoding.encode(cmd)
    assert isinstance(data, bytes)
    assert encoding.decode(data) == cmd
    assert encoding.encode(encoding.decode(data)) == data


def test_every_op_has_an_example() -> None:
    ops = {msgpack.unpackb(encoding.encode(c.Command(b)))[1] for b in EXAMPLES}
    assert ops == {int(op) for op in c.Op if op is not c.Op.GROUP}


def test_group_round_trips() -> None:
    group = c.Group([c.Command(body, f"r{i}", i) for i, body in enumerate(EXAMPLES)])
    assert encoding.decode(encoding.encode(group)) == group
    assert encoding.decode(encoding.encode(c.Group())) == c.Group()


def test_envelope_is_versioned() -> None:
    plain = msgpack.unpackb(encoding.encode(c.Command(c.Tick(1, 2, 3, "n"), "r", 5)))
    assert plain == [c.VERSION, int(c.Op.TICK), "r", 5, [1, 2, 3, "n"]]
    plain[0] = c.VERSION + 1
    with pytest.raises(encoding.DecodeError, match="version"):
        encoding.decode(msgpack.packb(plain))


def _pack(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True))


TICK = [100, 1_700_000_000_000, 0, "n1"]
_ROW = ["a", "n", "q", 1, b"", 0, 0, 3, 1, 1, 1]


def _with(index: int, value: Any) -> list[Any]:
    row = list(_ROW)
    row[index] = value
    return row


def _submit(row: list[Any]) -> bytes:
    return _pack([c.VERSION, int(c.Op.SUBMIT), "r", 0, [row]])


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used in msgpack
        b"\x93\x01\x02",  # truncated
        _pack([c.VERSION, int(c.Op.TICK), "r", 0, TICK]) + b"\x00",  # trailing bytes
        _pack(None),
        _pack({"op": 1}),
        _pack([c.VERSION, 99, "r", 0, []]),  # unknown op
        _pack([c.VERSION, True, "r", 0, [_ROW]]),  # bool op
        _pack([c.VERSION, 1.0, "r", 0, []]),
        _pack([c.VERSION, int(c.Op.TICK), "r", 0]),  # short envelope
        _pack([c.VERSION, int(c.Op.TICK), "r", 0, []]),  # a version 2 tick has a body
        _pack([c.VERSION, int(c.Op.TICK), "r", 0, [1, 2, 3]]),
        _pack([c.VERSION, int(c.Op.TICK), "r", 0, [1.5, 2, 3, ""]]),
        _pack([c.VERSION, int(c.Op.TICK), "r", 0, [1, 2, 3, None]]),
        _pack([c.LEGACY_VERSION, int(c.Op.TICK), "r", 0, TICK]),  # a version 1 tick has none
        _pack([c.LEGACY_VERSION, int(c.Op.SUBMIT), "r", 0, [_ROW]]),  # 10 fields in version 1
        _pack([0, int(c.Op.TICK), "r", 0, TICK]),
        _pack([c.VERSION, int(c.Op.TICK), "r", "soon", TICK]),  # now_ms not a number
        _pack([c.VERSION, int(c.Op.CLAIM), "r", 0, ["w"]]),  # short body
        _pack([c.VERSION, int(c.Op.SUBMIT), "r", 0, [["a", "n"]]]),  # short task spec
        _pack([c.VERSION, int(c.Op.EXTEND), "r", 0, ["w", [["a"]], 5]]),  # lease without token
        _pack([c.VERSION, int(c.Op.RELEASE), "r", 0, ["w", [["a", "x"]]]]),  # token not int
        _pack([c.VERSION, int(c.Op.FINISH), "r", 0, ["w", 5]]),  # items not a list
        _pack([c.VERSION, int(c.Op.GROUP), "", 0, [[int(c.Op.TICK), "r"]]]),  # bad member
        _pack([c.VERSION, int(c.Op.GROUP), "", 0, 7]),
        # well framed, but a field of the wrong type: apply must never see these
        _pack([c.VERSION, int(c.Op.TICK), 5, 0, TICK]),  # request id not a string
        _pack([c.VERSION, int(c.Op.TICK), "r", True, TICK]),  # a bool is not a time
        _pack([c.VERSION, int(c.Op.TICK), "r", 2**64 - 1, TICK]),  # out of range
        _pack([c.VERSION, int(c.Op.TICK), "r", 1.5, TICK]),
        _submit(_with(3, None)),  # priority
        _submit(_with(5, "x")),  # delay
        _submit(_with(6, None)),  # eta
        _submit(_with(0, ["a"])),  # id
        _submit(_with(4, "str")),  # payload
        _pack([c.VERSION, int(c.Op.CLAIM), "r", 0, ["w", "default", 1, 5, "", 0]]),
        _pack([c.VERSION, int(c.Op.CLAIM), "r", 0, ["w", ["q"], 1, None, "", 0]]),
        _pack([c.VERSION, int(c.Op.CLAIM), "r", 0, ["w", [7], 1, 5, "", 0]]),
        _pack([c.VERSION, int(c.Op.FINISH), "r", 0, ["w", [["a", 1, "text", None, True]]]]),
        _pack([c.VERSION, int(c.Op.FINISH), "r", 0, ["w", [["a", 1, None, "oops", True]]]]),
        _pack([c.VERSION, int(c.Op.FINISH), "r", 0, ["w", [["a", 1, None, None, 1]]]]),
        _pack([c.VERSION, int(c.Op.CANCEL), "r", 0, [None]]),
        _pack([c.VERSION, int(c.Op.PURGE), "r", 0, [1, None]]),
    ],
)
def test_garbage_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(encoding.DecodeError):
        encoding.decode(data)


def _decode_or_reject(data: bytes) -> c.Command | c.Group | None:
    try:
        return encoding.decode(data)
    except encoding.DecodeError:
        return None
    # anything else propagates and fails the test


def _busy_state() -> State:
    h = Harness(now_ms=0)
    h.submit(spec("a"), spec("b", priority=1), spec("c", delay_ms=50))
    h.claim_one()
    return h.state


def _apply_cleanly(cmd: c.Command | c.Group) -> None:
    state = _busy_state()
    result = state.apply(cmd)
    assert not internal_errors(result), result
    check_consistency(state)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    cmd = _decode_or_reject(data)
    if cmd is not None:
        _apply_cleanly(cmd)


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False),
    st.text(max_size=4), st.binary(max_size=4),
)
_plain = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                 max_size=3),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    op=st.sampled_from([int(op) for op in c.Op]) | st.integers(-3, 300),
    request_id=_plain,
    now_ms=_plain,
    body=_plain,
)
def test_well_framed_garbage_decodes_or_raises_decode_error(
    op: int, request_id: Any, now_ms: Any, body: Any
) -> None:
    cmd = _decode_or_reject(_pack([c.VERSION, op, request_id, now_ms, body]))
    if cmd is not None:
        _apply_cleanly(cmd)


@pytest.mark.parametrize("index", [3, 5, 6, 7, 8, 9, 10])
@pytest.mark.parametrize(
    ("value", "ok"),
    [(0, True), (-1, True), (2**53 - 1, True), (2**53, True), (-(2**53), True),
     (2**53 + 1, False), (-(2**53) - 1, False), (2**64 - 1, False), (True, False), (1.0, False)],
)
def test_task_spec_integers_are_checked_at_the_edges(index: int, value: Any, ok: bool) -> None:
    row = list(_ROW)
    row[index] = value
    data = _pack([c.VERSION, int(c.Op.SUBMIT), "r", 0, [_ROW, row]])
    if ok:
        cmd = encoding.decode(data)
        assert isinstance(cmd, c.Command) and isinstance(cmd.body, c.Submit)
        assert encoding.encode(cmd) == data
    else:
        with pytest.raises(encoding.DecodeError):
            encoding.decode(data)


@settings(max_examples=300, deadline=None)
@given(row=st.lists(_scalars, min_size=11, max_size=11) | st.tuples(
    st.text(max_size=3), st.text(max_size=3), st.text(max_size=3), _scalars, st.binary(max_size=3),
    _scalars, _scalars, _scalars, _scalars, _scalars, _scalars,
).map(list))
def test_task_spec_rows_decode_like_the_field_by_field_check(row: list[Any]) -> None:
    try:
        want: Any = encoding.spec_from_plain(row)
    except encoding.DecodeError:
        want = encoding.DecodeError
    try:
        got: Any = encoding._specs([row])[0]
    except encoding.DecodeError:
        got = encoding.DecodeError
    assert got == want
