"""Prometheus metrics of one node, in a registry of its own (no globals).

Counters and histograms are updated by the API and the replica; gauges of the
queue and of Raft are read from the state when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


class _Gauges(Collector):
    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        snap = self.read()
        depth = GaugeMetricFamily("raftq_queue_tasks", "Tasks by queue and status",
                                  labels=["queue", "status"])
        for (queue, status), n in snap["counts"].items():
            depth.add_metric([queue, status], n)
        yield depth
        ready = GaugeMetricFamily("raftq_queue_ready", "Ready tasks by queue and priority",
                                  labels=["queue", "priority"])
        for (queue, prio), n in snap["ready_counts"].items():
            ready.add_metric([queue, str(prio)], n)
        yield ready
        yield GaugeMetricFamily("raftq_leases", "Tasks currently leased", value=snap["leased"])
        yield GaugeMetricFamily("raftq_dead_letters", "Dead-lettered tasks", value=snap["dead"])
        yield GaugeMetricFamily("raftq_workers", "Workers seen recently", value=snap["workers"])
        raft = snap["raft"]
        yield GaugeMetricFamily("raftq_raft_term", "Current Raft term", value=raft["term"])
        yield CounterMetricFamily("raftq_raft_elections_started", "Elections this node "
                                  "started (asked for votes at a new term) since it started",
                                  value=raft["elections_started"])
        yield GaugeMetricFamily("raftq_raft_commit_index", "Raft commit index",
                                value=raft["commit_index"])
        yield GaugeMetricFamily("raftq_raft_applied_index", "Raft applied index",
                                value=raft["applied_index"])
        role = GaugeMetricFamily("raftq_raft_role", "1 for this node's current role",
                                 labels=["role"])
        for name in ("follower", "candidate", "leader"):
            role.add_metric([name], 1 if raft["role"] == name else 0)
        yield role
        yield GaugeMetricFamily("raftq_raft_has_leader", "1 if this node is in contact with a "
                                "leader (heard from it within the election timeout)",
                                value=0 if raft["leader"] is None else 1)
        if snap.get("clock_offset_ms") is not None:
            yield GaugeMetricFamily("raftq_clock_offset_seconds", "This node's wall clock minus "
                                    "the leader's, from the leader's recent ticks",
                                    value=snap["clock_offset_ms"] / 1000)
        yield GaugeMetricFamily("raftq_storage_writable", "0 while this node refuses writes "
                                "(507) because its disk is full, else 1",
                                value=0 if snap.get("storage_problem") else 1)
        port = snap["raft_port"]
        closed = CounterMetricFamily("raftq_raft_port_closed", "Raft-port connections closed "
                                     "by the guard, by reason", labels=["reason"])
        for reason, n in sorted(port.closed.items()):
            closed.add_metric([reason], n)
        yield closed
        yield CounterMetricFamily("raftq_raft_port_accept_pauses", "Times the raft listener "
                                  "paused, out of file descriptors", value=port.accept_pauses)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("raftq_http_requests", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.request_latency = Histogram("raftq_http_request_seconds", "HTTP request latency",
                                         ["route"], buckets=LATENCY_BUCKETS,
                                         registry=self.registry)
        self.proposal_latency = Histogram("raftq_proposal_seconds",
                                          "Time from proposing an entry to its commit here",
                                          buckets=LATENCY_BUCKETS, registry=self.registry)
        self.tasks_submitted = Counter("raftq_tasks_submitted", "Tasks created via this node",
                                       registry=self.registry)
        self.tasks_claimed = Counter("raftq_tasks_claimed", "Tasks leased via this node",
                                     registry=self.registry)
        self.tasks_finished = Counter("raftq_tasks_finished", "Completions and failures via "
                                      "this node, by resulting status", ["status"],
                                      registry=self.registry)
        self.http_refused = Counter("raftq_http_refused", "HTTP connections closed by the "
                                    "limits (request_timeout: 408, too_many_connections: 503)",
                                    ["code"], registry=self.registry)
        self._request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def attach_gauges(self, read: Callable[[], dict[str, Any]]) -> None:
        self.registry.register(_Gauges(read))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        children = self._request_children.get(key)
        if children is None:  # looking labels up costs more than the update itself
            children = (self.requests.labels(method, route, str(status)),
                        self.request_latency.labels(route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def refused(self, code: str) -> None:
        self.http_refused.labels(code).inc()

    def observe_commit(self, seconds: float) -> None:
        self.proposal_latency.observe(seconds)

    def submitted(self, n: int) -> None:
        if n:
            self.tasks_submitted.inc(n)

    def claimed(self, n: int) -> None:
        if n:
            self.tasks_claimed.inc(n)

    def finished(self, status: str) -> None:
        self.tasks_finished.labels(status).inc()

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
