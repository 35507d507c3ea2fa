"""Tasks: find one by id, or search by name, status, queue and tenant, newest first, a page
at a time."""

from raftq.server.console.pages import Page

BODY = """
<h1>Tasks</h1>
<section class="card">
<form class="filters" id="find"><input id="find-id" placeholder="task id" size="36">
<button type="submit">Open</button></form>
<form class="filters" id="search">
<input name="name" placeholder="name" size="18">
<select name="status"><option value="">any status</option></select>
<input name="queue" placeholder="queue" size="14">
<input name="tenant" placeholder="tenant" size="14">
<select name="limit"><option>25</option><option selected>50</option><option>100</option></select>
<button class="primary" type="submit">Search</button>
<span id="fresh" class="muted"></span></form>
<table id="tasks"></table>
<div class="actions"><button id="first" type="button">First page</button>
<button id="next" type="button">Next page</button></div>
</section>
"""

SCRIPT = r"""
const STATUSES = ["queued", "waiting", "scheduled", "leased", "succeeded", "dead", "cancelled", "expired"];
let cursor = null, stopFollow = null, fresh = 0;

function filters() {
  const f = new FormData($("#search")), q = {};
  for (const [k, v] of f.entries()) if (v) q[k] = v;
  return q;
}

async function load(from) {
  const q = new URLSearchParams(filters());
  if (from) q.set("cursor", from);
  const page = await api("GET", "/v1/tasks?" + q);
  cursor = page.next_cursor;
  $("#next").disabled = !cursor;
  fresh = 0; $("#fresh").textContent = "";
  table("#tasks", ["id", "name", "queue", "tenant", "status", "#attempts", "created", "updated"],
    page.tasks.map(t => [taskLink(t.id), esc(t.name), esc(t.queue), esc(t.tenant || ""), status(t.status),
      `${t.attempts}/${t.max_attempts}`, esc(ago(t.created_ms)), esc(ago(t.updated_ms))]), "no task matches");
}

function watch() {
  if (stopFollow) stopFollow();
  const f = filters();
  stopFollow = follow({queue: f.queue, name: f.name}, changes => {
    fresh += changes.length;
    $("#fresh").innerHTML = `${fresh} changes since — <a href="#" id="reload">refresh</a>`;
    $("#reload").onclick = e => { e.preventDefault(); load(null); };
  });
}

RQ.page = async () => {
  const sel = $("#search select[name=status]");
  sel.innerHTML += STATUSES.map(s => `<option>${s}</option>`).join("");
  const params = new URLSearchParams(location.search);
  for (const k of ["name", "status", "queue", "tenant"]) if (params.get(k)) $(`#search [name=${k}]`).value = params.get(k);
  $("#find").onsubmit = e => { e.preventDefault(); const id = $("#find-id").value.trim(); if (id) location.href = "/ui/task?id=" + enc(id); };
  $("#search").onsubmit = e => {
    e.preventDefault();
    history.replaceState(null, "", "/ui/tasks?" + new URLSearchParams(filters()));
    load(null); watch();
  };
  $("#next").onclick = () => load(cursor);
  $("#first").onclick = () => load(null);
  await load(null);
  watch();
};
"""

PAGE = Page(slug="tasks", title="Tasks", body=BODY, script=SCRIPT, order=20)
