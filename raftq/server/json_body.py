"""The request body as JSON, decoded strictly.

JSON has no NaN or Infinity, yet Python's json reads them (and 1e999 as
infinity): a body holding one is refused with ``InvalidRequest`` naming the
field it sits in. The field checks of the decoded body are in
``raftq.server.fields``.
"""

from __future__ import annotations

import json
import math
from typing import Any

from raftq.errors import InvalidRequest
from raftq.server.fields import _f


class _NotFinite(ValueError):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _refuse_constant(text: str) -> Any:
    raise _NotFinite(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NotFinite(text)
    return value


class _Marked:
    """Where a non-finite number was, found again to name its field."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _mark_float(text: str) -> float | _Marked:
    value = float(text)
    return value if math.isfinite(value) else _Marked(text)


_STRICT = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
_MARKING = json.JSONDecoder(parse_constant=_Marked, parse_float=_mark_float)


def _find_marked(value: Any, path: str) -> tuple[str, str] | None:
    if isinstance(value, _Marked):
        return path, value.text
    items: Any = (value.items() if isinstance(value, dict)
                  else enumerate(value) if isinstance(value, list) else ())
    for key, item in items:
        found = _find_marked(item, f"{path}[{key}]" if isinstance(key, int) else _f(path, key))
        if found is not None:
            return found
    return None


def json_body(raw: bytes) -> Any:
    """The decoded body. JSON has no NaN or Infinity (Python's json reads them,
    and 1e999 as infinity, and orjson would later write them as null): a body
    holding one is refused, naming its field."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass")
        return _STRICT.decode(text)
    except _NotFinite as exc:
        found = _find_marked(_MARKING.decode(text), "")
        name, number = found if found is not None else ("", exc.text)
        raise InvalidRequest(f"{name or 'body'} is {number}: numbers must be finite "
                             "(no NaN, Infinity or out of range)", field=name or None) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
