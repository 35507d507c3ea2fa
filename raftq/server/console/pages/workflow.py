"""One workflow: its tasks with their statuses, as a tree of dependencies."""

from raftq.server.console.pages import Page

BODY = """
<h1>Workflow</h1>
<section class="card">
<form class="filters" id="find"><input id="wid" placeholder="workflow id" size="36">
<button class="primary" type="submit">Show</button>
<button id="cancel-wf" type="button" class="danger" data-can="DELETE /v1/workflows/{id}" hidden>Cancel the workflow</button></form>
<p id="summary" class="muted">A workflow's id is in the <a href="/ui/workflows">list of
workflows</a>, its tasks' pages and what <code>POST /v1/workflows</code> answered.</p>
<table id="flow"></table></section>
"""

SCRIPT = r"""
let wid = new URLSearchParams(location.search).get("id") || "";

function depth(t, byId, seen = new Set()) {
  if (!t.depends_on || !t.depends_on.length || seen.has(t.id)) return 0;
  seen.add(t.id);
  return 1 + Math.max(...t.depends_on.map(p => byId[p] ? depth(byId[p], byId, seen) : 0));
}

async function load() {
  if (!wid) return;
  const w = (await api("GET", "/v1/workflows/" + enc(wid)).catch(() => ({workflow: null}))).workflow;
  if (!w) return;
  const byId = Object.fromEntries(w.tasks.map(t => [t.id, t]));
  $("#summary").innerHTML = `Workflow <b>${esc(w.id)}</b>: ${status(w.status)}, ${w.tasks.length} tasks, created ${esc(fmtTime(w.created_ms))}`;
  table("#flow", ["task", "key", "name", "status", "after", "runs when"], w.tasks.map(t => [
    "&nbsp;&nbsp;&nbsp;&nbsp;".repeat(depth(t, byId)) + taskLink(t.id), esc(t.key), esc(t.name), status(t.status),
    esc((t.depends_on || []).map(p => (byId[p] || {key: p}).key).join(", ")), esc(t.run_when || "")]));
  const c = $("#cancel-wf");
  if (c) c.hidden = w.status !== "running";
}

RQ.page = async () => {
  $("#wid").value = wid;
  $("#find").onsubmit = e => { e.preventDefault(); wid = $("#wid").value.trim(); history.replaceState(null, "", "/ui/workflow?id=" + enc(wid)); load(); };
  const c = $("#cancel-wf");
  if (c) c.onclick = async () => {
    if (!(await confirmAction(`Cancel every task of workflow ${wid} that has not started?`, "Cancel workflow"))) return;
    const out = await api("DELETE", "/v1/workflows/" + enc(wid)).catch(() => null);
    if (out) toast(`cancelled ${out.cancelled} tasks`);
    load();
  };
  await load();
  follow({}, throttle(load, 2000));
};
"""

PAGE = Page(slug="workflow", title="Workflow", body=BODY, script=SCRIPT, order=0)
