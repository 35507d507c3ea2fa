"""Checked plain values: what the decoders of ``raftq.state.encoding`` build commands from.

Each helper returns its value with the expected type or raises ``DecodeError``.
"""

from __future__ import annotations

from typing import Any


class DecodeError(ValueError):
    """Bytes that are not a command this version understands."""


# Integers on the wire stay within what JSON and msgpack carry exactly, so sums
# of times in the state never overflow a snapshot.
_MAX_INT = 2**53


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not -_MAX_INT <= v <= _MAX_INT:
        raise DecodeError(f"expected an integer, got {v!r:.40}")
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise DecodeError(f"expected a string, got {v!r:.40}")
    return v


def _list(v: Any, n: int | None = None) -> list[Any]:
    if not isinstance(v, list) or (n is not None and len(v) != n):
        raise DecodeError(f"expected a list of {n or 'any number of'} items, got {v!r:.40}")
    return v


def _optional_str(v: Any) -> str | None:
    return None if v is None else _str(v)


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise DecodeError(f"expected a boolean, got {v!r:.40}")
    return v
