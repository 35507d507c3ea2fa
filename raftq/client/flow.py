"""Flow-control calls of both clients: rate and concurrency limits, queue settings and
``explain`` (see docs/flow-control.md). ``FlowCalls`` and ``AsyncFlowCalls`` are mixed
into ``Client`` and ``AsyncClient``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from raftq.client import calls
from raftq.client.calls import Call, Json, JsonList


def rate_body(rate: int, per: float = 1.0, burst: int = 1) -> Json:
    """A rate limit of ``rate`` starts per ``per`` seconds, bursts of ``burst``."""
    return {"rate": rate, "per_ms": round(per * 1000), "burst": burst}


def queue_body(max_queued: int | None, paused: bool | None,
               tenant_weights: Mapping[str, int] | None) -> Json:
    body: Json = {"max_queued": max_queued, "paused": paused,
                  "tenant_weights": None if tenant_weights is None else dict(tenant_weights)}
    return {k: v for k, v in body.items() if v is not None}


class FlowCalls:
    """The flow-control calls of ``Client``."""

    def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # Client's

    def explain(self, id: str) -> Json:
        """Why task ``id`` waits: ``{"status", "reasons": [{"code", "message"}], "limits"}``."""
        out: Json = self._call(calls.explain(id))
        return out

    def set_rate_limit(self, key: str, rate: int, per: float = 1.0, burst: int = 1) -> Json:
        out: Json = self._call(calls.put_limit("limits", key, rate_body(rate, per, burst)))
        return out

    def set_concurrency_limit(self, key: str, max: int) -> Json:
        out: Json = self._call(calls.put_limit("concurrency", key, {"max": max}))
        return out

    def limits(self, kind: str = "limits") -> JsonList:
        """Rate limits (``kind="limits"``) or concurrency limits (``"concurrency"``)."""
        out: JsonList = self._call(calls.limits(kind))
        return out

    def delete_limit(self, key: str, kind: str = "limits") -> Json:
        out: Json = self._call(calls.delete_limit(kind, key))
        return out

    def set_queue(self, name: str, *, max_queued: int | None = None,
                  paused: bool | None = None,
                  tenant_weights: Mapping[str, int] | None = None) -> Json:
        out: Json = self._call(calls.put_queue(name, queue_body(max_queued, paused,
                                                                tenant_weights)))
        return out


class AsyncFlowCalls:
    """``FlowCalls`` for ``AsyncClient``."""

    async def _call(self, call: Call, node: str | None = None) -> Any:
        raise NotImplementedError  # AsyncClient's

    async def explain(self, id: str) -> Json:
        out: Json = await self._call(calls.explain(id))
        return out

    async def set_rate_limit(self, key: str, rate: int, per: float = 1.0,
                             burst: int = 1) -> Json:
        out: Json = await self._call(calls.put_limit("limits", key, rate_body(rate, per, burst)))
        return out

    async def set_concurrency_limit(self, key: str, max: int) -> Json:
        out: Json = await self._call(calls.put_limit("concurrency", key, {"max": max}))
        return out

    async def limits(self, kind: str = "limits") -> JsonList:
        out: JsonList = await self._call(calls.limits(kind))
        return out

    async def delete_limit(self, key: str, kind: str = "limits") -> Json:
        out: Json = await self._call(calls.delete_limit(kind, key))
        return out

    async def set_queue(self, name: str, *, max_queued: int | None = None,
                        paused: bool | None = None,
                        tenant_weights: Mapping[str, int] | None = None) -> Json:
        out: Json = await self._call(calls.put_queue(name, queue_body(max_queued, paused,
                                                                      tenant_weights)))
        return out
