"""A tiny blocking JSON-over-HTTP call used by every harness process.

Deliberately not raftq's client: the harness must see each attempt's raw
outcome (status, error code, timeout) to record it, with no hidden retries.
"""

from __future__ import annotations

import http.client
import json
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int | None
    """``None`` when there was no answer (timeout, refused, reset)."""
    body: Any = None
    error: str | None = None
    """The ``error.code`` of an error answer, or the exception's name."""


def call(
    base_url: str, method: str, path: str, body: Any = None, *, timeout: float = 3.0,
    api_key: str | None = None, idempotency_key: str | None = None,
) -> Reply:
    """One request, with ``api_key`` (default: RAFTQ_API_KEY) as its bearer token."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    key = os.environ.get("RAFTQ_API_KEY") if api_key is None else api_key
    try:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        conn.request(method, path, body=payload, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as exc:  # TimeoutError is an OSError
        return Reply(None, error=type(exc).__name__)
    finally:
        conn.close()
    try:
        data = json.loads(raw) if raw else None
    except ValueError:
        data = None
    error = None
    if resp.status >= 400:
        error = f"http_{resp.status}"
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            error = str(data["error"].get("code", error))
    return Reply(resp.status, data, error)
