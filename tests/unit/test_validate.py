"""Task spec validation: the one-pass path agrees with the field-by-field one."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from raftq.errors import InvalidRequest, PayloadTooLarge
from raftq.server import validate as v
from raftq.state.commands import TaskSpec

MAX_PAYLOAD = 64


def _ids() -> Any:
    counter = itertools.count(1)
    return lambda: f"gen-{next(counter)}"


def _outcome(fn: Any, body: Any) -> tuple[str, Any]:
    try:
        return "ok", fn(body, where="tasks[3]", new_id=_ids(), result_ttl_ms=5_000,
                        max_payload=MAX_PAYLOAD)
    except InvalidRequest as exc:
        return type(exc).__name__, (exc.message, exc.field)


names = st.sampled_from(["noop", "a.b:c-d/e_f", "", "bad name", "x" * 200, "x" * 201,
                         "x" * 200 + "\n", "noop\n", "ü"])
ints = (st.sampled_from([0, 1, 255, 256, 1000, 1001, -1, 86_400_000, 2**53, 2**64])
        | st.integers(-5, 2**40))
values = (st.none() | st.booleans() | ints | names | st.floats(allow_nan=False)
          | st.sampled_from(["critical", "high", "normal", "low", "urgent"])
          | st.lists(st.integers() | st.text(max_size=30), max_size=4)
          | st.dictionaries(st.text(max_size=3), st.integers(), max_size=3))
FIELDS = sorted(v.TASK_FIELDS) + ["other"]
bodies = st.dictionaries(st.sampled_from(FIELDS), values, max_size=7) | values
# mostly valid: a good name plus fields whose values are often in range
nearly_valid = st.fixed_dictionaries(
    {"name": st.just("noop")},
    optional={
        "id": st.sampled_from(["mine", "", "x" * 201]) | values,
        "queue": names,
        "priority": st.sampled_from(["high", "urgent", 0, 255, 256, None, True]),
        "args": st.lists(st.integers(-(2**70), 2**70) | st.text(max_size=30), max_size=3),
        "kwargs": st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
        "max_attempts": ints, "timeout_ms": ints, "retry_backoff_ms": ints,
        "result_ttl_ms": ints, "delay_ms": ints,
    },
)


@settings(max_examples=2_000, deadline=None)
@given(body=bodies | nearly_valid)
def test_one_pass_and_field_by_field_agree(body: Any) -> None:
    assert _outcome(v.task_spec, body) == _outcome(v._task_spec, body)


@pytest.mark.parametrize(
    "body",
    [
        {"name": "noop"},
        {"name": "noop", "queue": "q", "priority": "high", "id": "mine", "args": [1, "x"],
         "kwargs": {"k": None}, "max_attempts": 1000, "timeout_ms": 1, "retry_backoff_ms": 0,
         "result_ttl_ms": 1},
        {"name": "noop", "priority": 0, "priority_": 1},
        {"name": "noop", "delay_ms": 5},
        {"name": "noop", "eta_ms": 5},
        {"name": "noop", "args": ["x" * 100]},
        {"name": "noop", "args": [2**64]},
        {"name": "noop", "max_attempts": True},
        {"name": "noop", "queue": None},
        {"name": "noop", "id": ""},
    ],
)
def test_examples_agree(body: dict[str, Any]) -> None:
    assert _outcome(v.task_spec, body) == _outcome(v._task_spec, body)


def test_the_common_shape_takes_one_pass() -> None:
    spec = v._plain_task_spec({"name": "noop", "queue": "q"}, _ids(), 5_000, MAX_PAYLOAD)
    assert spec == TaskSpec("gen-1", "noop", "q", 128, b"\x92\x90\x80", 0, 0, 3, 300_000, 1_000,
                            5_000)
    assert _outcome(v.task_spec, {"name": "noop", "args": ["x" * 100]})[0] == \
        PayloadTooLarge.__name__


def _batch(bodies: list[Any]) -> Any:
    return v.task_specs(bodies, new_id=_ids(), result_ttl_ms=5_000,
                        max_payload=MAX_PAYLOAD)


def test_a_batch_is_its_task_specs_in_order() -> None:
    bodies = [{"name": "a"}, {"name": "b", "delay_ms": 5, "id": "x"}, {"name": "c", "queue": "q"}]
    new_id = _ids()
    want = [v.task_spec(b, where="", new_id=new_id, result_ttl_ms=5_000,
                        max_payload=MAX_PAYLOAD) for b in bodies]
    assert _batch(bodies) == want


@pytest.mark.parametrize(
    ("bodies", "field"),
    [
        ([{"name": "a"}, {"name": "bad name"}], "tasks[1].name"),
        ([{"name": "a"}, 7], "tasks[1]"),
        ([{"name": "a"}, {"name": "b", "colour": 1}], "tasks[1].colour"),
        ([{"name": "a", "args": ["x" * 100]}], "tasks[0].args"),
        ([{"name": "a", "id": "x"}, {"name": "b", "id": "x"}], "tasks"),
    ],
)
def test_a_batch_names_the_bad_task(bodies: list[Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        _batch(bodies)
    assert info.value.field == field


@pytest.mark.parametrize(("raw", "field", "number"), [
    (b'{"name": "t", "args": [1, NaN]}', "args[1]", "NaN"),
    (b'{"name": "t", "kwargs": {"x": Infinity}}', "kwargs.x", "Infinity"),
    (b'{"name": "t", "kwargs": {"x": [-Infinity]}}', "kwargs.x[0]", "-Infinity"),
    (b'{"tasks": [{"name": "t"}, {"name": "t", "args": [1e999]}]}', "tasks[1].args[0]", "1e999"),
    (b'{"result": -1E+400}', "result", "-1E+400"),
])
def test_non_finite_numbers_are_refused_naming_the_field(raw: bytes, field: str,
                                                          number: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        v.json_body(raw)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field} is {number}: numbers must be finite")


def test_finite_json_decodes_as_before() -> None:
    assert v.json_body(b'{"args": [1.5, 1e308, -0.0, 2]}') == {"args": [1.5, 1e308, -0.0, 2]}
    assert v.json_body('{"a": "é"}'.encode("utf-16")) == {"a": "é"}
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        v.json_body(b"{")
    with pytest.raises(InvalidRequest, match="not valid JSON"):
        v.json_body(b"\xff\xfe\xfd")


@pytest.mark.parametrize(("extra", "field"), [
    ({"expires_ms": 0}, "expires_ms"), ({"expires_ms": "1"}, "expires_ms"),
    ({"expires_at_ms": -1}, "expires_at_ms"), ({"expires_at_ms": True}, "expires_at_ms"),
])
def test_a_bad_expiry_names_its_field(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        v.task_spec({"name": "x", **extra}, where="", new_id=_ids(), result_ttl_ms=5_000,
                    max_payload=MAX_PAYLOAD)
    assert info.value.field == field


def test_an_expiry_travels_in_the_spec() -> None:
    spec = v.task_spec({"name": "x", "expires_ms": 5, "expires_at_ms": 7}, where="",
                       new_id=_ids(), result_ttl_ms=5_000, max_payload=MAX_PAYLOAD)
    assert (spec.expires_ms, spec.expires_at_ms) == (5, 7)
