"""The msgpack form of the flow-control commands (ops 50-59; see ``raftq.state.encoding``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from raftq.state.commands import DeleteLimit, PutConcurrency, PutQueue, PutRateLimit
from raftq.state.plain import _bool, _int, _list, _str

FlowBody = PutRateLimit | PutConcurrency | DeleteLimit | PutQueue


def flow_to_plain(body: FlowBody) -> list[Any]:
    if isinstance(body, PutRateLimit):
        return [body.key, body.rate, body.per_ms, body.burst, body.actor]
    if isinstance(body, PutConcurrency):
        return [body.key, body.max, body.actor]
    if isinstance(body, DeleteLimit):
        return [body.kind, body.key, body.actor]
    weights = None if body.tenant_weights is None else [list(w) for w in body.tenant_weights]
    return [body.name, body.max_queued, body.paused, weights, body.actor]


def _put_rate_limit(p: Any) -> PutRateLimit:
    key, rate, per_ms, burst, actor = _list(p, 5)
    return PutRateLimit(_str(key), _int(rate), _int(per_ms), _int(burst), _str(actor))


def _put_concurrency(p: Any) -> PutConcurrency:
    key, max_, actor = _list(p, 3)
    return PutConcurrency(_str(key), _int(max_), _str(actor))


def _delete_limit(p: Any) -> DeleteLimit:
    kind, key, actor = _list(p, 3)
    return DeleteLimit(_str(kind), _str(key), _str(actor))


def _put_queue(p: Any) -> PutQueue:
    name, max_queued, paused, weights, actor = _list(p, 5)
    pairs = None
    if weights is not None:
        pairs = [(_str(w[0]), _int(w[1])) for w in (_list(x, 2) for x in _list(weights))]
    return PutQueue(_str(name), None if max_queued is None else _int(max_queued),
                    None if paused is None else _bool(paused), pairs, _str(actor))


FLOW_FROM_PLAIN: dict[int, Callable[[Any], FlowBody]] = {
    50: _put_rate_limit,
    51: _put_concurrency,
    52: _delete_limit,
    53: _put_queue,
}
