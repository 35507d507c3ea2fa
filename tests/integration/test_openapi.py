"""GET /openapi.json describes every route, and a real node keeps to it: schemathesis
sends it requests generated from the document (0 server errors, every answer's status,
content type and body as documented)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from clusterkit import http

from raftq.local.cluster import LocalCluster
from raftq.server.auth import ROUTES

HERE = Path(__file__).resolve().parent
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")


def test_the_document_lists_every_route(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(size=1)
    status, doc = http(cluster.http_urls[0] + "/openapi.json", api_key="")
    assert status == 200 and doc["openapi"] == "3.1.0"
    listed = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert listed == {(r.method, r.path) for r in ROUTES}
    claim = doc["paths"]["/v1/claims"]["post"]
    body = claim["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["max"] == {"type": "integer", "minimum": 1, "maximum": 1000,
                                         "default": 1}
    assert claim["security"] == [{"apiKey": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    # What the document says is what the node enforces: one definition.
    status, answer = http(cluster.http_urls[0] + "/v1/claims", "POST",
                          {"worker_id": "w", "max": 1001})
    assert status == 400 and answer["error"]["field"] == "max"
    # The workers' heartbeat and pool size are described by what checks them.
    paths = doc["paths"]
    beat, size = (paths[f"/v1/workers/{{id}}/{p}"]["post"]["requestBody"]["content"][
        "application/json"]["schema"] for p in ("heartbeat", "concurrency"))
    assert beat["additionalProperties"] is False
    assert beat["properties"]["concurrency"] == {"type": "integer", "minimum": 1,
                                                 "maximum": 10_000, "default": 1}
    assert beat["properties"]["mode"]["enum"] == ["running", "paused", "draining"]
    assert beat["properties"]["tasks"]["items"]["required"] == ["name"]
    assert size["required"] == ["concurrency"]
    for path, body, field in (("heartbeat", {"concurrency": 10_001}, "concurrency"),
                              ("heartbeat", {"tasks": [{"name": "a", "x": 1}]}, "tasks[0].x"),
                              ("concurrency", {"concurrency": 0}, "concurrency")):
        status, answer = http(f"{cluster.http_urls[0]}/v1/workers/w/{path}", "POST", body)
        assert status == 400 and answer["error"]["field"] == field, (path, answer)


def test_schemathesis_finds_no_server_error_and_no_answer_off_the_spec(
        make_cluster: Callable[..., LocalCluster], tmp_path: Path) -> None:
    cluster = make_cluster(size=1)
    url = cluster.http_urls[0]
    env = dict(os.environ, SCHEMATHESIS_HOOKS="schemathesis_hooks",
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    run = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "run", url + "/openapi.json",
         "--header", f"Authorization: Bearer {os.environ['RAFTQ_API_KEY']}",
         "--checks", CHECKS, "--mode", "positive", "--max-examples", "15",
         "--phases", "examples,fuzzing", "--seed", "1",
         "--exclude-path", "/v1/events",  # a stream that does not end
         # Adding and removing nodes changes the cluster under test (test_membership's).
         "--exclude-path-regex", "^/v1/cluster/nodes",
         "--request-timeout", "10", "--no-color", "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    print(run.stdout[-3000:])
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
