"""Schedules on a real 3-node cluster: the HTTP API, and one task per tick across a
leader kill."""

from __future__ import annotations

from typing import Any

from clusterkit import http, wait_for

from raftq.local.cluster import LocalCluster

EVERY_MS = 500


def fired_tasks(url: str, sid: str) -> list[dict[str, Any]] | None:
    """The schedule's tasks (None while the cluster has no leader)."""
    status, listing = http(url + "/v1/tasks?limit=1000&consistency=leader")
    if status != 200:
        return None
    return [t for t in listing["tasks"] if t["id"].startswith(f"{sid}@")]


def count(url: str, sid: str) -> int:
    return len(fired_tasks(url, sid) or [])


def schedule(url: str, sid: str) -> dict[str, Any]:
    status, body = http(f"{url}/v1/schedules/{sid}?consistency=leader")
    assert status == 200, body
    view: dict[str, Any] = body["schedule"]
    return view


def test_the_schedules_api(cluster: LocalCluster) -> None:
    a, b, _ = cluster.http_urls
    body = {"task": {"name": "report", "args": [1]}, "cron": "0 3 * * *",
            "timezone": "Europe/Berlin"}
    status, out = http(a + "/v1/schedules/nightly", "PUT", body)
    assert status == 201 and out["created"] and out["schedule"]["cron"] == "0 3 * * *"
    assert len(out["schedule"]["next_fires_ms"]) == 5
    status, out = http(b + "/v1/schedules/nightly", "PUT", body)  # any node; identical
    assert (status, out["created"], out["changed"]) == (200, False, False)
    status, out = http(a + "/v1/schedules/nightly", "PUT", {**body, "cron": "0 4 * * *"})
    assert (status, out["changed"]) == (200, True)
    for bad, field in [({**body, "cron": "0 25 * * *"}, "cron"),
                       ({**body, "timezone": "Nowhere/Land"}, "timezone"),
                       ({**body, "every_ms": 1000}, "every_ms")]:
        status, out = http(a + "/v1/schedules/nightly", "PUT", bad)
        assert (status, out["error"]["field"]) == (400, field), out
    status, out = http(a + "/v1/schedules/bad@id", "PUT", body)
    assert (status, out["error"]["field"]) == (400, "id")

    status, out = http(a + "/v1/schedules/nightly/pause", "POST")
    assert status == 200 and out["schedule"]["paused"] and out["schedule"]["next_fires_ms"] == []
    status, out = http(a + "/v1/schedules/nightly", "PUT", {**body, "cron": "0 4 * * *"})
    assert out["schedule"]["paused"]  # a redeploy keeps an operator's pause
    status, out = http(a + "/v1/schedules/nightly/trigger", "POST")
    assert status == 201 and out["task"]["id"].startswith("nightly@")
    assert out["task"]["id"].endswith(":trigger") and out["task"]["name"] == "report"
    status, out = http(a + "/v1/schedules/nightly/resume", "POST")
    assert status == 200 and not out["schedule"]["paused"]
    fires = schedule(b, "nightly")["fires"]
    assert [f["outcome"] for f in fires] == ["triggered"] and fires[0]["task_status"] == "queued"

    status, out = http(b + "/v1/schedules?consistency=leader")
    assert [s["id"] for s in out["schedules"]] == ["nightly"]
    assert http(a + "/v1/schedules/nightly", "DELETE") == (200, {"id": "nightly",
                                                               "deleted": True})
    assert http(a + "/v1/schedules/nightly", "DELETE")[0] == 404
    assert http(a + "/v1/schedules/nightly/trigger", "POST")[0] == 404
    assert http(a + "/v1/schedules/nightly")[0] == 404


def test_an_interval_schedule_fires_each_tick_once_across_a_leader_kill(
    cluster: LocalCluster,
) -> None:
    url = cluster.http_urls[0]
    body = {"task": {"name": "beat"}, "every_ms": EVERY_MS, "overlap": "allow",
            "catchup": "all", "catchup_window_ms": 60_000}
    assert http(url + "/v1/schedules/beat", "PUT", body)[0] == 201
    wait_for(lambda: count(url, "beat") >= 4, timeout=15, what="four fires")

    leader = cluster.leader_index()
    assert leader is not None
    before = count(url, "beat")
    cluster.kill(leader)
    survivor = cluster.http_urls[(leader + 1) % 3]
    wait_for(lambda: count(survivor, "beat") >= before + 8, timeout=30,
             what="fires under the new leader")

    assert http(survivor + "/v1/schedules/beat/pause", "POST")[0] == 200
    tasks = fired_tasks(survivor, "beat") or []
    ticks = sorted(int(t["id"].split("@")[1]) for t in tasks)
    # Every tick from the first to the last, the outage's caught up, each once: a tick
    # applied twice would count in "fired" without a task of its own.
    assert [b - a for a, b in zip(ticks, ticks[1:], strict=False)] == [EVERY_MS] * (
        len(ticks) - 1)
    view = schedule(survivor, "beat")
    assert (view["fired"], view["skipped"]) == (len(ticks), 0)
