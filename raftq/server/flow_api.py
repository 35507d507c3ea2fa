"""HTTP handlers for flow control: ``/v1/limits``, ``/v1/concurrency``,
``/v1/queues/{name}`` and ``/v1/tasks/{id}/explain``.

Rate limits, concurrency limits and queue settings are replicated settings
(``raftq.state.flow``): a PUT replaces a limit (an identical PUT changes
nothing), a DELETE removes it; a queue's PUT changes the fields it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from raftq.errors import InvalidRequest, NotFound
from raftq.server import validate as v
from raftq.server.http import Request, Response, json_response
from raftq.state.commands import DeleteLimit, PutConcurrency, PutQueue, PutRateLimit
from raftq.state.explain import explain, limits_of

if TYPE_CHECKING:
    from raftq.server.api import Api

MAX_RATE = 1_000_000
MAX_WEIGHT = 1_000
MAX_QUEUED = 100_000_000


def _key(request: Request, name: str = "key") -> str:
    value = request.match_info[name]
    if not v.KEY_RE.match(value):
        raise InvalidRequest(f"a {name} is 1-200 letters, digits and _.:-", field=name)
    return value


class FlowApi:
    def __init__(self, api: Api) -> None:
        self.api = api

    @property
    def state(self) -> Any:
        return self.api.replica.state

    def _rate_json(self, key: str) -> dict[str, Any]:
        rate = self.state.rates[key]
        return {"key": key, "rate": rate.rate, "per_ms": rate.per_ms, "burst": rate.burst,
                "room": min(self.state.room(key), 1 << 31),
                "waiting": len(self.state.waiters.get(key, ()))}

    def _concurrency_json(self, key: str) -> dict[str, Any]:
        cap, running = self.state.concurrency[key]
        return {"key": key, "max": cap, "running": running,
                "waiting": len(self.state.waiters.get(key, ()))}

    # ------------------------------------------------------------ rate limits

    async def list_limits(self, request: Request) -> Response:
        await self.api.maybe_barrier(request)
        return json_response({"limits": [self._rate_json(k) for k in sorted(self.state.rates)]})

    async def get_limit(self, request: Request) -> Response:
        key = _key(request)
        await self.api.maybe_barrier(request)
        if key not in self.state.rates:
            raise NotFound(f"no rate limit {key}")
        return json_response({"limit": self._rate_json(key)})

    async def put_limit(self, request: Request) -> Response:
        key = _key(request)
        body = v.obj(self.api.body(request), {"rate", "per_ms", "burst"})
        cmd = PutRateLimit(key, v.integer(body, "rate", lo=1, hi=MAX_RATE),
                           v.integer(body, "per_ms", default=1_000, lo=1, hi=v.DAY_MS),
                           v.integer(body, "burst", default=1, lo=1, hi=MAX_RATE),
                           request.actor)
        self.api.raise_for(await self.api.propose(request, cmd))
        return json_response({"limit": self._rate_json(key)})

    async def delete_limit(self, request: Request) -> Response:
        key = _key(request)
        self.api.raise_for(await self.api.propose(request, DeleteLimit("rate", key,
                                                                       request.actor)))
        return json_response({"key": key, "deleted": True})

    # ------------------------------------------------------ concurrency limits

    async def list_concurrency(self, request: Request) -> Response:
        await self.api.maybe_barrier(request)
        keys = sorted(self.state.concurrency)
        return json_response({"limits": [self._concurrency_json(k) for k in keys]})

    async def get_concurrency(self, request: Request) -> Response:
        key = _key(request)
        await self.api.maybe_barrier(request)
        if key not in self.state.concurrency:
            raise NotFound(f"no concurrency limit {key}")
        return json_response({"limit": self._concurrency_json(key)})

    async def put_concurrency(self, request: Request) -> Response:
        key = _key(request)
        body = v.obj(self.api.body(request), {"max"})
        cmd = PutConcurrency(key, v.integer(body, "max", lo=1, hi=MAX_RATE), request.actor)
        self.api.raise_for(await self.api.propose(request, cmd))
        return json_response({"limit": self._concurrency_json(key)})

    async def delete_concurrency(self, request: Request) -> Response:
        key = _key(request)
        cmd = DeleteLimit("concurrency", key, request.actor)
        self.api.raise_for(await self.api.propose(request, cmd))
        return json_response({"key": key, "deleted": True})

    # ------------------------------------------------------------------ queues

    def _queue_json(self, name: str) -> dict[str, Any]:
        depth = self.state.depths().get(name, {})
        settings: dict[str, Any] = self.state.queue_settings(name)
        return settings | {"depth": depth}

    async def get_queue(self, request: Request) -> Response:
        name = _key(request, "name")
        await self.api.maybe_barrier(request)
        return json_response({"queue": self._queue_json(name)})

    async def put_queue(self, request: Request) -> Response:
        name = _key(request, "name")
        body = v.obj(self.api.body(request), {"max_queued", "paused", "tenant_weights"})
        max_queued = (v.integer(body, "max_queued", hi=MAX_QUEUED)
                      if body.get("max_queued") is not None else None)
        paused = v.boolean(body, "paused", False) if body.get("paused") is not None else None
        weights = None
        if body.get("tenant_weights") is not None:
            raw = body["tenant_weights"]
            if not isinstance(raw, dict) or len(raw) > 10_000:
                raise InvalidRequest("tenant_weights must be an object of tenant: weight",
                                     field="tenant_weights")
            weights = []
            for tenant, weight in raw.items():
                where = f"tenant_weights.{tenant}"
                if not v.KEY_RE.match(tenant):
                    raise InvalidRequest(f"{where}: a tenant is 1-200 letters, digits and _.:-",
                                         field=where)
                if isinstance(weight, bool) or not isinstance(weight, int) \
                        or not 1 <= weight <= MAX_WEIGHT:
                    raise InvalidRequest(f"{where} must be an integer 1-{MAX_WEIGHT}",
                                         field=where)
                weights.append((tenant, weight))
        cmd = PutQueue(name, max_queued, paused, weights, request.actor)
        self.api.raise_for(await self.api.propose(request, cmd))
        return json_response({"queue": self._queue_json(name)})

    # ----------------------------------------------------------------- explain

    async def explain(self, request: Request) -> Response:
        task_id = request.match_info["id"]
        await self.api.maybe_barrier(request)
        task = self.state.tasks.get(task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        return json_response({"id": task_id, "status": str(task.status),
                              "queue": task.queue, "priority": task.priority,
                              "tenant": task.tenant, "reasons": explain(self.state, task),
                              "limits": limits_of(self.state, task),
                              "clock_ms": self.state.clock_ms})
