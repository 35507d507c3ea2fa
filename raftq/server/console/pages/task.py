"""One task: arguments, result, attempts with their errors, timeline, graph, actions."""

from raftq.server.console.pages import Page

BODY = """
<h1>Task <span id="task-id"></span> <span id="task-status"></span></h1>
<div class="actions" id="actions">
<button id="cancel" class="danger" data-can="DELETE /v1/tasks/{id}" hidden>Cancel</button>
<button id="retry-now" class="primary" data-can="POST /v1/tasks/{id}/retry-now" hidden>Retry now</button>
<button id="requeue" class="primary" data-can="POST /v1/dead-letters/{id}/requeue" hidden>Requeue</button>
<button id="purge" class="danger" data-can="DELETE /v1/dead-letters/{id}" hidden>Purge</button>
</div>
<div class="grid">
<section class="card"><h2>Task</h2><dl class="kv" id="facts"></dl>
<p id="why" class="muted"></p></section>
<section class="card"><h2>Arguments</h2><pre id="args"></pre>
<h2>Result</h2><pre id="result"></pre></section>
</div>
<section class="card"><h2>Attempts</h2><table id="attempts"></table></section>
<section class="card" id="graph-card" hidden><h2>Workflow</h2><dl class="kv" id="graph"></dl></section>
<section class="card"><h2>Timeline <span class="muted">(changes this node still holds)</span></h2>
<table id="timeline"></table></section>
"""

SCRIPT = r"""
const id = new URLSearchParams(location.search).get("id") || "";
let task = null;
const timeline = [];

function why(t) {
  if (t.status === "scheduled") return `Waits until ${fmtTime(t.ready_at_ms)} (${ago(t.ready_at_ms)})` + (t.attempts ? ", the backoff after a failed attempt." : ", its delay or ETA.");
  if (t.status === "waiting") return `Waits for its parents: ${(t.depends_on || []).join(", ")}.`;
  if (t.status === "queued") return `Ready; waits for a worker on queue ${t.queue}.`;
  if (t.status === "leased") return `Running on ${t.lease ? t.lease.worker_id : "a worker"}, lease until ${fmtTime(t.lease && t.lease.expires_ms)}.`;
  if (t.status === "dead") return "Out of attempts (or failed without retry): requeue it to run again.";
  return "";
}

function progressBar(p) {
  if (!p) return "none";
  return `<span class="bar"><span style="width:${Math.round(p.fraction * 100)}%"></span></span> ${Math.round(p.fraction * 100)}% ${esc(p.message)}`;
}

function render() {
  const t = task;
  $("#task-id").textContent = t.id;
  $("#task-status").innerHTML = status(t.status);
  const facts = [["name", esc(t.name)], ["queue", `<a href="/ui/tasks?queue=${enc(t.queue)}">${esc(t.queue)}</a>`],
    ["priority", esc(t.priority)], ["attempts", `${t.attempts} of ${t.max_attempts}`], ["progress", progressBar(t.progress)],
    ["created", esc(fmtTime(t.created_ms))], ["updated", esc(fmtTime(t.updated_ms))], ["finished", esc(fmtTime(t.finished_ms))],
    ["timeout", esc(t.timeout_ms) + " ms"], ["lease", t.lease ? esc(`${t.lease.worker_id} until ${fmtTime(t.lease.expires_ms)}`) : "none"]];
  if (t.expires_at_ms) facts.push(["expires", esc(fmtTime(t.expires_at_ms))]);
  $("#facts").innerHTML = facts.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  $("#why").textContent = why(t);
  $("#args").textContent = JSON.stringify({args: t.args, kwargs: t.kwargs}, null, 2);
  $("#result").textContent = t.result === null || t.result === undefined ? "none" : JSON.stringify(t.result, null, 2);
  table("#attempts", ["#attempt", "at", "error", "traceback"], (t.errors || []).map(e => [e.attempt, esc(fmtTime(e.at_ms)),
    `<b>${esc(e.error.type)}</b>: ${esc(e.error.message)}`,
    e.error.traceback ? `<details><summary>traceback</summary><pre>${esc(e.error.traceback)}</pre></details>` : ""]),
    t.attempts ? "no failed attempt" : "not run yet");
  const graph = [];
  if (t.workflow_id) graph.push(["workflow", `<a href="/ui/workflow?id=${enc(t.workflow_id)}">${esc(t.workflow_id)}</a>`]);
  if (t.depends_on && t.depends_on.length) graph.push(["parents", t.depends_on.map(taskLink).join(", ")]);
  if (t.children && t.children.length) graph.push(["children", t.children.map(taskLink).join(", ")]);
  if (t.run_when) graph.push(["runs when", esc(t.run_when)]);
  $("#graph-card").hidden = !graph.length;
  $("#graph").innerHTML = graph.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("");
  const show = (sel, on) => { const el = $(sel); if (el) el.hidden = !on; };
  show("#cancel", ["queued", "scheduled", "waiting"].includes(t.status));
  show("#retry-now", t.status === "scheduled" && t.attempts > 0);
  show("#requeue", t.status === "dead");
  show("#purge", t.status === "dead");
}

function renderTimeline() {
  table("#timeline", ["#log index", "at", "change", "status", "#attempt", "detail"], timeline.map(c => [c.index, esc(fmtTime(c.at_ms)), esc(c.type),
    status(c.status), c.attempt, c.error ? esc(`${c.error.type}: ${c.error.message}`) : c.progress ? esc(`${Math.round(c.progress.fraction * 100)}% ${c.progress.message}`) : ""]),
    "no change held");
}

async function load() {
  try {
    task = (await api("GET", "/v1/tasks/" + enc(id), undefined, true)).task;
  } catch (e) {
    $("#task-id").textContent = id;
    $("#why").textContent = e.status === 404 ? "No such task (or dropped after its result TTL)." : e.message;
    return;
  }
  render();
  if (!["succeeded", "cancelled", "expired"].includes(task.status)) {
    const why = await api("GET", `/v1/tasks/${enc(id)}/explain`, undefined, true).catch(() => null);
    if (why && why.reasons && why.reasons.length) $("#why").textContent = why.reasons.map(r => r.message).join(" ");
  }
}

async function act(method, path, what) {
  if (!(await confirmAction(`${what} task ${id}?`, what))) return;
  const out = await api(method, path).catch(() => null);
  if (out) { toast(`${what}: done`); if (method === "DELETE" && path.startsWith("/v1/dead-letters")) location.href = "/ui/dead-letters"; else load(); }
}

RQ.page = async () => {
  const c = $("#cancel"), r = $("#requeue"), p = $("#purge"), n = $("#retry-now");
  if (n) n.onclick = () => act("POST", `/v1/tasks/${enc(id)}/retry-now`, "Retry now");
  if (c) c.onclick = () => act("DELETE", "/v1/tasks/" + enc(id), "Cancel");
  if (r) r.onclick = () => act("POST", `/v1/dead-letters/${enc(id)}/requeue`, "Requeue");
  if (p) p.onclick = () => act("DELETE", "/v1/dead-letters/" + enc(id), "Purge");
  await load();
  follow({since: 0, task: id}, (changes, index, at_ms) => {
    for (const ch of changes) timeline.push({index, at_ms, ...ch});
    renderTimeline();
    load();
  });
  renderTimeline();
};
"""

PAGE = Page(slug="task", title="Task", body=BODY, script=SCRIPT, order=0)
