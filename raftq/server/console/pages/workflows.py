"""Workflows: every workflow the cluster holds, newest first, by status, a page at a time;
each opens its graph (``workflow``)."""

from raftq.server.console.pages import Page

BODY = """
<h1>Workflows</h1>
<section class="card">
<form class="filters" id="search">
<select name="status"><option value="">any status</option></select>
<select name="limit"><option>25</option><option selected>50</option><option>100</option></select>
<button class="primary" type="submit">Show</button>
<span id="fresh" class="muted"></span></form>
<table id="workflows"></table>
<div class="actions"><button id="first" type="button">First page</button>
<button id="next" type="button">Next page</button></div>
</section>
"""

SCRIPT = r"""
const STATUSES = ["running", "succeeded", "failed", "cancelled"];
let cursor = null, current = null;

function filters() {
  const q = {};
  for (const [k, v] of new FormData($("#search")).entries()) if (v) q[k] = v;
  return q;
}

async function load(from) {
  current = from;
  const q = new URLSearchParams(filters());
  if (from) q.set("cursor", from);
  const page = await api("GET", "/v1/workflows?" + q);
  cursor = page.next_cursor;
  $("#next").disabled = !cursor;
  table("#workflows", ["workflow", "status", "#tasks", "#not ended", "created"], page.workflows.map(w => [
    `<a href="/ui/workflow?id=${enc(w.id)}">${esc(w.id)}</a>`, status(w.status), w.tasks, w.open,
    esc(fmtTime(w.created_ms))]), "no workflow matches");
}

RQ.page = async () => {
  const params = new URLSearchParams(location.search);
  if (params.get("id")) { location.replace("/ui/workflow?id=" + enc(params.get("id"))); return; }
  $("#search select[name=status]").innerHTML += STATUSES.map(s => `<option>${s}</option>`).join("");
  if (params.get("status")) $("#search [name=status]").value = params.get("status");
  $("#search").onsubmit = e => {
    e.preventDefault();
    history.replaceState(null, "", "/ui/workflows?" + new URLSearchParams(filters()));
    load(null);
  };
  $("#next").onclick = () => load(cursor);
  $("#first").onclick = () => load(null);
  await load(null);
  follow({}, throttle(() => load(current), 2000));
};
"""

PAGE = Page(slug="workflows", title="Workflows", body=BODY, script=SCRIPT, order=60)
