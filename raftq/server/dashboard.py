"""The dashboard page: one static HTML page polling the node's JSON API."""

from __future__ import annotations

from raftq.server.http import Request, Response

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>raftq</title>
<style>
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:4px 10px;text-align:left}
th{background:#f4f4f4} .leader{font-weight:bold;color:#06c} .down{color:#c00}
</style></head><body>
<h1>raftq</h1>
<p id="auth"></p>
<h2>Cluster</h2><table id="cluster"></table>
<h2>Queues</h2><table id="queues"></table>
<h2>Waiting for a worker</h2><table id="idle"></table>
<h2>Workers</h2><table id="workers"></table>
<h2>Dead letters</h2><table id="dead"></table>
<script>
const esc = s => String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"}[c]));
function table(id, head, rows) {
  document.getElementById(id).innerHTML = "<tr>" + head.map(h => "<th>" + esc(h) + "</th>").join("") + "</tr>" +
    rows.map(r => "<tr>" + r.map(c => "<td>" + c + "</td>").join("") + "</tr>").join("");
}
// The page itself is open; its data needs a key of any role (reader is enough),
// kept in this tab's sessionStorage only.
async function get(path) {
  const key = sessionStorage.getItem("raftq-key") || "";
  const r = await fetch(path, {headers: key ? {"Authorization": "Bearer " + key} : {}});
  if (r.status === 401 || r.status === 403) {
    if (!document.getElementById("key")) document.getElementById("auth").innerHTML = "This node needs an API key: " +
      '<input id="key" type="password" size="50"> <button onclick="setKey()">use</button>';
    throw new Error("no usable API key");
  }
  document.getElementById("auth").innerHTML = "";
  return r.json();
}
function setKey() { sessionStorage.setItem("raftq-key", document.getElementById("key").value); refresh(); }
async function refresh() {
  try {
    const c = await get("/v1/cluster");
    table("cluster", ["node", "role", "term", "commit", "applied", "lag", "http"],
      c.nodes.map(n => [esc(n.id), `<span class="${n.role === "leader" ? "leader" : n.reachable ? "" : "down"}">${esc(n.role)}</span>`,
        esc(n.term), esc(n.commit_index), esc(n.applied_index), esc(n.lag), esc(n.http_address)]));
    const q = await get("/v1/queues");
    table("queues", ["queue", "queued", "scheduled", "leased", "succeeded", "dead", "cancelled"],
      Object.entries(q.queues).map(([name, d]) => [esc(name), d.queued, d.scheduled, d.leased, d.succeeded, d.dead, d.cancelled]));
    // Queued tasks no live worker runs, by queue and name (the nodes decide, as in `raftq list`).
    const idle = Object.entries(q.queues).flatMap(([name, d]) => Object.entries(d.no_worker || {}).map(([task, n]) => [task, name, n]));
    table("idle", ["queued", "task", "queue", "why"], idle.map(([task, queue, n]) =>
      [esc(n), esc(task), esc(queue), `<span class="down">no worker runs '${esc(task)}'</span>`]));
    const w = await get("/v1/workers");
    // As `raftq workers`: lost after three silent heartbeats, on the cluster's clock.
    table("workers", ["worker", "host", "pid", "queues", "state", "tasks", "concurrency", "running", "cpu", "memory", "last heartbeat"],
      w.workers.map(x => [esc(x.worker_id), esc(x.host), esc(x.pid), esc(x.queues.join(",")),
        x.state === "lost" ? '<span class="down">lost</span>' : esc(x.mode && x.mode !== "running" ? x.mode : x.state),
        esc(x.announced ? x.tasks.join(",") : "(any)"), esc(x.concurrency), esc((x.running_ids || []).join(", ")),
        x.cpu_pct == null ? "" : esc(x.cpu_pct.toFixed(1) + "%"), x.rss_kb == null ? "" : esc(Math.round(x.rss_kb / 1024) + " MiB"),
        esc((x.silent_ms / 1000).toFixed(1) + " s ago")]));
    const d = await get("/v1/dead-letters?limit=20");
    table("dead", ["task", "name", "attempts", "last error"],
      d.tasks.map(t => [esc(t.id), esc(t.name), esc(t.attempts), esc((t.errors.at(-1) || {error: {}}).error.message)]));
  } catch (e) { console.log(e); }
}
refresh(); setInterval(refresh, 1000);
</script></body></html>
"""


_PAGE_BYTES = PAGE.encode()


async def dashboard(request: Request) -> Response:
    return Response(_PAGE_BYTES, content_type="text/html; charset=utf-8")
