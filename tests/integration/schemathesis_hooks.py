"""Schemathesis hooks for test_openapi: long-polls are cut to 50 ms (the spec allows a
minute; a run that waited that long per example would take hours)."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.hook
def map_query(context: Any, query: Any) -> Any:
    if isinstance(query, dict) and isinstance(query.get("wait_ms"), int):
        query["wait_ms"] = min(query["wait_ms"], 50)
    return query


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, dict) and isinstance(body.get("wait_ms"), int):
        body["wait_ms"] = min(body["wait_ms"], 50)
    return body
