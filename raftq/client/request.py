"""One HTTP request of the API as plain data (``Call``), the JSON shapes the
clients pass around, and the ids they mint.

``Client`` (sync) and ``AsyncClient`` differ only in how they send bytes and
how they sleep; what each call sends is a ``Call`` (``raftq.client.calls``
builds them).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from raftq import errors

Json = dict[str, Any]
JsonList = list[Json]


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Call:
    """One HTTP request of the API; ``unwrap`` names the body key the caller wants."""

    method: str
    path: str
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    idempotency_key: str | None = None
    unwrap: str | None = None
    wait_s: float = 0.0  # server-side long-poll time, added to the socket timeout

    @property
    def target(self) -> str:
        query = {k: v for k, v in self.query.items() if v is not None}
        return self.path + ("?" + urlencode(query) if query else "")

    def headers(self, api_key: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if self.body is not None:
            headers["Content-Type"] = "application/json"
        if self.idempotency_key is not None:
            headers["Idempotency-Key"] = self.idempotency_key
        return headers

    def pick(self, body: Any) -> Any:
        if self.unwrap is None:
            return body
        if not isinstance(body, dict) or self.unwrap not in body:
            raise errors.RaftqError(f"{self.method} {self.path}: answer has no {self.unwrap!r}")
        return body[self.unwrap]
