"""Schemas that both check requests and describe them (``GET /openapi.json``).

Each ``Schema`` checks a decoded JSON value (``check``: the value, or
``InvalidRequest`` naming the field) and says what it accepts as JSON Schema
(``json``). The request bodies and query parameters of the API are declared
once with these (``raftq.server.contract``); the handlers validate with those
declarations and the OpenAPI document is generated from the same objects, so
the two cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from raftq.errors import InvalidRequest

MISSING: Any = object()


def _name(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


class Schema:
    description: str = ""

    def check(self, value: Any, name: str) -> Any:
        raise NotImplementedError

    def json(self) -> dict[str, Any]:
        raise NotImplementedError

    def described(self, out: dict[str, Any]) -> dict[str, Any]:
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Str(Schema):
    min_len: int = 1
    max_len: int = 200
    pattern: re.Pattern[str] | None = None
    pattern_says: str = ""  # what the pattern allows, for the error
    enum: Sequence[str] = ()
    description: str = ""

    def check(self, value: Any, name: str) -> str:
        if self.enum:
            if value not in self.enum:
                raise InvalidRequest(f"{name or 'value'} must be one of {', '.join(self.enum)}",
                                     field=name or None)
            return str(value)
        if not isinstance(value, str) or not self.min_len <= len(value) <= self.max_len:
            size = ("a non-empty string" if self.min_len else "a string")
            raise InvalidRequest(f"{name} must be {size} of at most {self.max_len} characters",
                                 field=name or None)
        if self.pattern is not None and not self.pattern.match(value):
            raise InvalidRequest(f"{name} may only contain {self.pattern_says}",
                                 field=name or None)
        return value

    def json(self) -> dict[str, Any]:
        if self.enum:
            return self.described({"type": "string", "enum": list(self.enum)})
        out: dict[str, Any] = {"type": "string", "minLength": self.min_len,
                               "maxLength": self.max_len}
        if self.pattern is not None:
            out["pattern"] = self.pattern.pattern
        return self.described(out)


@dataclass(frozen=True)
class Int(Schema):
    lo: int = 0
    hi: int = 2**53
    description: str = ""

    def check(self, value: Any, name: str) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRequest(f"{name} must be an integer", field=name or None)
        if not self.lo <= value <= self.hi:
            raise InvalidRequest(f"{name} must be between {self.lo} and {self.hi}",
                                 field=name or None)
        return value

    def json(self) -> dict[str, Any]:
        return self.described({"type": "integer", "minimum": self.lo, "maximum": self.hi})


@dataclass(frozen=True)
class Num(Schema):
    lo: float = 0.0
    hi: float = 1.0
    description: str = ""

    def check(self, value: Any, name: str) -> float:
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or not self.lo <= value <= self.hi):
            raise InvalidRequest(f"{name} must be a number from {self.lo:g} to {self.hi:g}",
                                 field=name or None)
        return float(value)

    def json(self) -> dict[str, Any]:
        return self.described({"type": "number", "minimum": self.lo, "maximum": self.hi})


@dataclass(frozen=True)
class Bool(Schema):
    description: str = ""

    def check(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise InvalidRequest(f"{name} must be true or false", field=name or None)
        return value

    def json(self) -> dict[str, Any]:
        return self.described({"type": "boolean"})


@dataclass(frozen=True)
class Anything(Schema):
    """Any JSON value (a task's arguments, its result)."""

    kind: str = ""  # "array", "object", "null" or "" for any
    description: str = ""

    def check(self, value: Any, name: str) -> Any:
        if self.kind == "null" and value is not None:
            raise InvalidRequest(f"{name} must be null", field=name or None)
        if self.kind == "array" and not isinstance(value, list):
            raise InvalidRequest(f"{name} must be a list", field=name or None)
        if self.kind == "object" and not isinstance(value, dict):
            raise InvalidRequest(f"{name} must be an object", field=name or None)
        return value

    def json(self) -> dict[str, Any]:
        return self.described({"type": self.kind} if self.kind else {})


@dataclass(frozen=True)
class Arr(Schema):
    items: Schema
    min_items: int = 0
    max_items: int = 1000
    description: str = ""

    def check(self, value: Any, name: str) -> list[Any]:
        if not isinstance(value, list) or not self.min_items <= len(value) <= self.max_items:
            raise InvalidRequest(f"{name} must be a list of {self.min_items}-{self.max_items}",
                                 field=name or None)
        return [self.items.check(item, _name(name, i)) for i, item in enumerate(value)]

    def json(self) -> dict[str, Any]:
        return self.described({"type": "array", "items": self.items.json(),
                               "minItems": self.min_items, "maxItems": self.max_items})


@dataclass(frozen=True)
class OneOf(Schema):
    options: Sequence[Schema]
    says: str = ""  # the error when none fits
    description: str = ""

    def check(self, value: Any, name: str) -> Any:
        for option in self.options:
            try:
                return option.check(value, name)
            except InvalidRequest:
                continue
        raise InvalidRequest(f"{name} must be {self.says}", field=name or None)

    def json(self) -> dict[str, Any]:
        return self.described({"oneOf": [o.json() for o in self.options]})


@dataclass(frozen=True)
class Obj(Schema):
    """An object of known fields; ``required`` ones must be there, no others may be."""

    fields: Mapping[str, Schema]
    required: frozenset[str] = frozenset()
    open: bool = False  # other keys allowed (and not checked)
    description: str = ""
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def check(self, value: Any, name: str) -> dict[str, Any]:
        """The checked fields that are present (``defaults`` filled in)."""
        if not isinstance(value, dict):
            raise InvalidRequest(f"{name or 'body'} must be a JSON object", field=name or None)
        if not self.open:
            unknown = sorted(set(value) - set(self.fields))
            if unknown:
                raise InvalidRequest(f"unknown field {_name(name, unknown[0])!r}",
                                     field=_name(name, unknown[0]))
        out = dict(self.defaults)
        for key, schema in self.fields.items():
            item = value.get(key, MISSING)
            if item is MISSING or (item is None and key not in self.required):
                if key in self.required:
                    raise InvalidRequest(f"{_name(name, key)} is required",
                                         field=_name(name, key))
                continue
            out[key] = schema.check(item, _name(name, key))
        return out

    def json(self) -> dict[str, Any]:
        props = {}
        for key, schema in self.fields.items():
            prop = schema.json()
            if key in self.defaults:
                prop["default"] = self.defaults[key]
            props[key] = prop
        out: dict[str, Any] = {"type": "object", "properties": props,
                               "additionalProperties": self.open}
        if self.required:
            out["required"] = sorted(self.required)
        return self.described(out)


@dataclass(frozen=True)
class Param:
    """A query parameter: its text is turned into a value for ``schema`` (integers
    and booleans from their text) and checked."""

    name: str
    schema: Schema
    description: str = ""

    def parse(self, text: str) -> Any:
        value: Any = text
        if isinstance(self.schema, Int):
            if not text.isdigit() or len(text) > 18:
                raise InvalidRequest(f"{self.name} must be a non-negative integer",
                                     field=self.name)
            value = int(text)
        elif isinstance(self.schema, Bool):
            if text not in ("true", "false"):
                raise InvalidRequest(f"{self.name} must be true or false", field=self.name)
            value = text == "true"
        return self.schema.check(value, self.name)


def query(params: Sequence[Param], q: Mapping[str, str]) -> dict[str, Any]:
    """The checked values of the parameters present; unknown ones are refused."""
    known = {p.name: p for p in params}
    unknown = sorted(set(q) - set(known))
    if unknown:
        raise InvalidRequest(f"unknown query parameter {unknown[0]!r}", field=unknown[0])
    return {name: known[name].parse(text) for name, text in q.items()}
