"""API keys and roles on a real 3-node cluster.

The access test is generated from the route table (``raftq.server.auth.ROUTES``):
every route is called by every kind of caller, and each must get exactly the
answer its roles give: no key or an unknown one 401, a role not allowed 403,
an allowed one a success (each call is given a valid request, so "allowed"
means the call works, not merely that it got past the check).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from clusterkit import http, settled, wait_for

from raftq.local.cluster import LocalCluster
from raftq.server.auth import OPEN, ROUTES, RouteSpec

CALLERS = ("none", "wrong", "reader", "producer", "worker", "admin")


def call(url: str, method: str, key: str, body: Any = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One request; the body as JSON when it is JSON, else as text."""
    data = None if body is None else json.dumps(body).encode()
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url, method=method, data=data, headers={
        "Content-Type": "application/json", **auth, **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw or b"null")
    except ValueError:
        return status, raw.decode(errors="replace")


class Fixtures:
    """Makes, with the admin key, what an allowed call needs to succeed."""

    def __init__(self, url: str, admin: str, urls: list[str] | None = None) -> None:
        self.url = url
        self.admin = admin
        self.urls = urls or [url]
        self.n = 0

    def everywhere(self, path: str) -> None:
        """Wait until every node reads ``path``: made through one node, read through any
        (a read that has no ``?consistency=leader``)."""
        for url in self.urls:
            wait_for(lambda u=url: call(u + path, "GET", self.admin)[0] == 200,
                     what=f"{path} on every node")

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = call(self.url + path, method, self.admin, body)
        assert status < 300, (method, path, status, answer)
        return answer

    def unique(self, what: str) -> str:
        self.n += 1
        return f"{what}-{self.n}-{secrets.token_hex(3)}"

    def queued(self) -> str:
        queue = self.unique("q")
        answer = self.ok("POST", "/v1/tasks", {"name": "t", "queue": queue})
        return str(answer["task"]["id"])

    def leased(self, **spec: Any) -> tuple[str, int]:
        queue = self.unique("q")
        self.ok("POST", "/v1/tasks", {"name": "t", "queue": queue, "max_attempts": 1, **spec})
        (task,) = self.ok("POST", "/v1/claims", {"worker_id": "fixture", "queues": [queue]})[
            "tasks"]
        return task["id"], task["lease_token"]

    def dead(self) -> str:
        task_id, token = self.leased()
        self.ok("POST", f"/v1/tasks/{task_id}/fail",
                {"lease_token": token, "error": "boom", "retry": False})
        return task_id

    def request(self, route: RouteSpec) -> tuple[str, Any]:
        """A path and body with which ``route`` succeeds."""
        p, m = route.path, route.method
        if "{id}" in p:
            if p.startswith("/v1/dead-letters"):
                return p.replace("{id}", self.dead()), {} if m == "POST" else None
            if p == "/v1/cluster/nodes/{id}":  # the spare node the POST added
                return p.replace("{id}", "spare"), None
            if p == "/v1/workers/{id}":
                return p.replace("{id}", self.unique("worker")), None
            if p.startswith("/v1/workers/"):
                wid = self.unique("worker")
                beat = {"tasks": [{"name": "t"}]}
                if p.endswith("/heartbeat"):
                    return p.replace("{id}", wid), beat
                self.ok("POST", f"/v1/workers/{wid}/heartbeat", beat)
                return p.replace("{id}", wid), {"concurrency": 2} if p.endswith(
                    "/concurrency") else None
            if p == "/v1/workflows/{id}":
                wid = self.unique("wf")
                self.ok("POST", "/v1/workflows", {"id": wid, "tasks": [
                    {"key": "a", "name": "t", "queue": "matrix"}]})
                # read right after it is made, maybe on a follower: ask the leader
                query = "?consistency=leader" if m == "GET" else ""
                return p.replace("{id}", wid) + query, None
            if p.startswith("/v1/schedules/"):
                sid = self.unique("sched")
                schedule = {"task": {"name": "t"}, "every_ms": 3_600_000}
                if m == "PUT":
                    return p.replace("{id}", sid), schedule
                self.ok("PUT", f"/v1/schedules/{sid}", schedule)
                return p.replace("{id}", sid), {} if m == "POST" else None
            if p.endswith("/retry-now"):  # a task waiting out an hour's backoff
                task_id, token = self.leased(max_attempts=2, retry_backoff_ms=3_600_000)
                self.ok("POST", f"/v1/tasks/{task_id}/fail",
                        {"lease_token": token, "error": "boom", "retry": True})
                return p.replace("{id}", task_id), {}
            if p.endswith(("/complete", "/fail")):
                task_id, token = self.leased()
                body: dict[str, Any] = {"lease_token": token, "result": 1}
                if p.endswith("/fail"):
                    body = {"lease_token": token, "error": "e", "retry": False}
                return p.replace("{id}", task_id), body
            if m == "GET":  # read right after the submit, maybe on a follower
                return p.replace("{id}", self.queued()) + "?consistency=leader", None
            return p.replace("{id}", self.queued()), None
        if p in ("/v1/limits/{key}", "/v1/concurrency/{key}"):
            key, limit = self.unique("key"), {"rate": 10} if "limits" in p else {"max": 2}
            if m != "PUT":
                self.ok("PUT", p.replace("{key}", key), limit)
                self.everywhere(p.replace("{key}", key))
            return p.replace("{key}", key), limit if m == "PUT" else None
        if p == "/v1/queues/{name}":
            return p.replace("{name}", self.unique("q")), {"paused": False} if m == "PUT" else None
        if p == "/v1/keys/{name}":
            name = self.unique("k")
            self.ok("POST", "/v1/keys", {"name": name, "role": "reader"})
            return p.replace("{name}", name), None
        if p == "/ui/{page}":
            return "/ui/tasks", None
        if p == "/ui/static/{name}":
            return "/ui/static/console.js", None
        if p in ("/v1/completions", "/v1/leases/extend", "/v1/leases/release", "/v1/progress"):
            task_id, token = self.leased()
            if p == "/v1/progress":
                return p, {"worker_id": "fixture", "items": [
                    {"id": task_id, "lease_token": token, "fraction": 0.5, "message": "half"}]}
            if p == "/v1/completions":
                return p, {"items": [{"id": task_id, "lease_token": token, "result": 1}]}
            return p, {"worker_id": "fixture", "leases": [{"id": task_id, "lease_token": token}]}
        bodies: dict[tuple[str, str], Any] = {
            ("POST", "/v1/tasks"): {"name": "t", "queue": "matrix"},
            ("POST", "/v1/tasks/batch"): {"tasks": [{"name": "t", "queue": "matrix"}]},
            ("POST", "/v1/claims"): {"worker_id": "w", "queues": ["empty"], "wait_ms": 0},
            ("POST", "/v1/keys"): {"name": self.unique("k"), "role": "reader"},
            ("POST", "/v1/workflows"): {"tasks": [{"key": "a", "name": "t", "queue": "matrix"}]},
            # Never started (so removable at once: it is the change under way).
            ("POST", "/v1/cluster/nodes"): {"id": "spare", "raft_address": "127.0.0.1:9",
                                            "http_url": "http://127.0.0.1:9"},
        }
        if p == "/v1/events":
            return p + "?since=0&follow=false", None
        if (m, p) == ("DELETE", "/v1/dead-letters"):
            return p + "?queue=" + self.unique("none"), None
        return p, bodies.get((m, p))


def expected(route: RouteSpec, role: str | None) -> str:
    if route.roles == OPEN:
        return "ok"
    if role is None:
        return "401"
    return "ok" if role in route.roles else "403"


def outcome(status: int) -> str:
    return "ok" if 200 <= status < 300 else str(status)


def make_keys(url: str, admin: str) -> dict[str, str]:
    keys = {"none": "", "wrong": "rq_" + secrets.token_urlsafe(32), "admin": admin}
    for role in ("reader", "producer", "worker"):
        status, answer = call(url + "/v1/keys", "POST", admin, {"name": f"{role}-1", "role": role})
        assert status == 201, answer
        keys[role] = answer["token"]
    return keys


def test_every_route_answers_every_caller_as_the_route_table_says(
    cluster: LocalCluster,
) -> None:
    urls = cluster.http_urls
    keys = make_keys(urls[0], cluster.admin_key)
    # A key is usable on a node once that node has applied its creation.
    for url in urls:
        wait_for(lambda u=url: call(u + "/v1/queues", "GET", keys["worker"])[0] == 200,
                 what="the new keys on every node")
    fixtures = Fixtures(urls[0], cluster.admin_key, urls)
    wrong: list[str] = []
    checked = 0
    for r, route in enumerate(ROUTES):
        for c, caller in enumerate(CALLERS):
            role = caller if caller not in ("none", "wrong") else None
            want = expected(route, role)
            path, body = fixtures.request(route) if want == "ok" else (
                route.path.replace("{id}", "x").replace("{name}", "x"), None)
            if want == "ok":
                settled(cluster)  # made on urls[0], asked of any node
            url = urls[(r + c) % 3]  # every node checks keys
            status, answer = call(url + path, route.method, keys[caller], body)
            checked += 1
            if outcome(status) != want:
                wrong.append(f"{route.method} {route.path} as {caller}: {status} {answer!r:.120}"
                             f" (expected {want})")
            elif want in ("401", "403"):
                code = "unauthorized" if want == "401" else "forbidden"
                if not (isinstance(answer, dict) and answer["error"]["code"] == code):
                    wrong.append(f"{route.method} {route.path} as {caller}: body {answer!r}")
    assert not wrong, "\n".join(wrong)
    assert checked == len(ROUTES) * len(CALLERS) >= 27 * 6


def test_a_revoked_key_is_refused_on_every_node(cluster: LocalCluster) -> None:
    urls = cluster.http_urls
    admin = cluster.admin_key
    status, created = call(urls[1] + "/v1/keys", "POST", admin, {"name": "ci", "role": "producer"})
    assert status == 201
    token = created["token"]
    for url in urls:
        wait_for(lambda u=url: call(u + "/v1/queues", "GET", token)[0] == 200,
                 what="the key on every node")
    status, revoked = call(urls[2] + "/v1/keys/ci", "DELETE", admin)
    assert status == 200 and revoked["key"]["revoked_ms"] is not None
    for url in urls:
        status, answer = wait_for(
            lambda u=url: (r := call(u + "/v1/tasks", "POST", token, {"name": "x"}))[0] == 401
            and r, timeout=5, what="the revocation on every node")
        assert answer["error"]["code"] == "unauthorized"
    # The key table and the audit log say who did it.
    _, listed = call(urls[0] + "/v1/keys", "GET", admin)
    assert {k["name"]: k["revoked_ms"] is not None for k in listed["keys"]} == {
        "admin": False, "ci": True}
    _, audit = call(urls[0] + "/v1/audit", "GET", admin)
    rows = [(e["actor"], e["action"], e["target"]) for e in audit["entries"]
            if e["action"] != "seed_members"]  # the first leader records the membership
    assert rows[0][0].startswith("bootstrap:node") and rows[0][1:] == ("key.create", "admin")
    assert rows[1:] == [("admin", "key.create", "ci"), ("admin", "key.revoke", "ci")]


def test_a_restarting_node_asks_for_a_retry_rather_than_refusing_a_key_it_has_not_replayed(
        cluster: LocalCluster) -> None:
    # A worker that delivers to a node still replaying its log must be told to
    # retry (503), never that its key is unknown (401): a 401 makes it drop its
    # held outcomes, and the task runs twice once the lease lapses.
    urls = cluster.http_urls
    status, created = call(urls[0] + "/v1/keys", "POST", cluster.admin_key,
                           {"name": "w", "role": "worker"})
    assert status == 201
    token = created["token"]
    follower = next(i for i in range(3) if i != cluster.leader_index())
    wait_for(lambda: call(urls[follower] + "/v1/queues", "GET", token)[0] == 200,
             what="the key on the follower")
    cluster.kill(follower)
    cluster.start_node(follower)
    seen: list[int] = []

    def answered_ok() -> bool:
        try:
            status = call(urls[follower] + "/v1/queues", "GET", token)[0]
        except OSError:  # not listening yet
            return False
        seen.append(status)
        return status == 200

    wait_for(answered_ok, timeout=30, interval=0.005, what="the restarted node taking the key")
    assert 401 not in seen, seen
    assert set(seen) <= {200, 503}, seen
    # An unknown key: "retry" until the node has applied what the leader had
    # committed when it first asked, then 401.
    answers = []
    wait_for(lambda: answers.append(call(urls[follower] + "/v1/queues", "GET",
                                         "rq_" + "z" * 43)) or answers[-1][0] != 503,
             timeout=10, interval=0.005, what="the restarted node current")
    status, answer = answers[-1]
    assert status == 401 and answer["error"]["code"] == "unauthorized", answers[-1]


def test_a_forged_completion_is_refused_and_a_second_completion_is_409(
    cluster: LocalCluster,
) -> None:
    urls = cluster.http_urls
    keys = make_keys(urls[0], cluster.admin_key)
    for url in urls:
        wait_for(lambda u=url: call(u + "/v1/queues", "GET", keys["worker"])[0] == 200,
                 what="the new keys on every node")
    status, submitted = call(urls[0] + "/v1/tasks", "POST", keys["producer"],
                             {"name": "add", "args": [2, 3], "queue": "forge"})
    assert status == 201
    task_id = submitted["task"]["id"]
    status, claimed = call(urls[1] + "/v1/claims", "POST", keys["worker"],
                           {"worker_id": "honest", "queues": ["forge"]})
    (lease,) = claimed["tasks"]
    token = lease["lease_token"]  # only the claim's answer carries it

    # An anonymous caller cannot read the task; a reader sees the lease but not its token.
    settled(cluster)  # claimed on urls[1], read on urls[2]
    assert call(urls[2] + f"/v1/tasks/{task_id}", "GET", "")[0] == 401
    status, seen = call(urls[2] + f"/v1/tasks/{task_id}", "GET", keys["reader"])
    assert status == 200 and seen["task"]["lease"]["worker_id"] == "honest"
    assert "lease_token" not in json.dumps(seen)
    assert set(seen["task"]["lease"]) == {"worker_id", "expires_ms"}
    # Even holding the token, no caller without the worker role can complete it.
    forged = {"lease_token": token, "result": "forged"}
    for caller, code in (("none", 401), ("wrong", 401), ("reader", 403), ("producer", 403)):
        status, _ = call(urls[2] + f"/v1/tasks/{task_id}/complete", "POST", keys[caller], forged)
        assert status == code, caller

    # The real worker completes it; a retry of that same request gets the same answer ...
    honest = {"lease_token": token, "result": 5}
    first = call(urls[1] + f"/v1/tasks/{task_id}/complete", "POST", keys["worker"], honest,
                 headers={"Idempotency-Key": "honest-1"})
    assert first[0] == 200 and first[1]["task"]["result"] == 5
    retry = call(urls[0] + f"/v1/tasks/{task_id}/complete", "POST", keys["worker"], honest,
                 headers={"Idempotency-Key": "honest-1"})
    assert retry[0] == 200 and retry[1]["task"]["result"] == 5
    # ... and a second completion, under another request, is 409 already_finished.
    for url in urls:
        status, answer = call(url + f"/v1/tasks/{task_id}/complete", "POST", keys["worker"],
                              forged)
        assert status == 409 and answer["error"]["code"] == "already_finished", answer
        status, answer = call(url + f"/v1/tasks/{task_id}/fail", "POST", keys["worker"],
                              {"lease_token": token, "error": "forged", "retry": False})
        assert status == 409 and answer["error"]["code"] == "already_finished", answer
    _, final = http(urls[2] + f"/v1/tasks/{task_id}?consistency=leader", api_key=keys["reader"])
    assert final["task"]["status"] == "succeeded" and final["task"]["result"] == 5


def test_metrics_can_be_made_public(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(metrics_public=True)
    status, _ = call(cluster.http_urls[0] + "/metrics", "GET", "")
    assert status == 200
    assert call(cluster.http_urls[0] + "/v1/queues", "GET", "")[0] == 401


def raftq_cli(cluster: LocalCluster, *args: str, key: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("RAFTQ_API_KEY", None)
    flags = ["--api-key", key] if key else []
    return subprocess.run([sys.executable, "-m", "raftq", *args, *flags,
                           "--nodes", ",".join(cluster.http_urls)],
                          capture_output=True, text=True, timeout=60, env=env)


def test_keys_and_the_audit_log_from_the_cli(cluster: LocalCluster) -> None:
    admin = cluster.admin_key
    out = raftq_cli(cluster, "keys", "create", "--role", "producer", "--name", "ci", key=admin)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.startswith("rq_") and len(token) > 40 and "shown only once" in out.stderr
    assert raftq_cli(cluster, "submit", "noop", "--id", "cli-1", key=token).returncode == 0
    out = raftq_cli(cluster, "cancel", "cli-1", key=token)
    assert out.returncode == 0, out.stderr
    # A producer may not manage keys; nobody without a key may do anything.
    out = raftq_cli(cluster, "keys", "list", key=token)
    assert out.returncode == 1 and "role producer" in out.stderr
    out = raftq_cli(cluster, "stats")
    assert out.returncode == 1 and out.stderr.startswith("error: an API key is required")
    out = raftq_cli(cluster, "keys", "create", "--role", "worker", "--name", "bad name!",
                    key=admin)
    assert out.returncode == 1 and out.stderr.startswith("error: --name:"), out.stderr

    out = raftq_cli(cluster, "keys", "list", "--output", "json", key=admin)
    listed = {k["name"]: k for k in json.loads(out.stdout)}
    assert listed["ci"]["role"] == "producer" and listed["ci"]["revoked_ms"] is None
    assert "token" not in out.stdout and "hash" not in out.stdout
    assert raftq_cli(cluster, "keys", "revoke", "ci", key=admin).returncode == 0
    out = wait_for(lambda: (r := raftq_cli(cluster, "stats", key=token)).returncode == 1 and r,
                   what="the revoked key refused")
    assert "unknown or revoked API key" in out.stderr

    out = raftq_cli(cluster, "audit", "--output", "json", key=admin)
    rows = [(e["actor"], e["action"], e["target"]) for e in json.loads(out.stdout)]
    assert rows[-3:] == [("admin", "key.create", "ci"), ("ci", "cancel", "cli-1"),
                         ("admin", "key.revoke", "ci")]
    table = raftq_cli(cluster, "audit", key=admin).stdout
    assert "key.revoke" in table and "WHO" in table
