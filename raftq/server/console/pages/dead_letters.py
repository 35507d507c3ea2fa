"""Dead letters: filter by queue, requeue or purge one, many or all, after a confirmation."""

from raftq.server.console.pages import Page

BODY = """
<h1>Dead letters</h1>
<section class="card">
<form class="filters" id="filter"><input name="queue" placeholder="queue" size="16">
<button type="submit">Filter</button><span id="count" class="muted"></span></form>
<div class="actions">
<button id="requeue-selected" class="primary" data-can="POST /v1/dead-letters/{id}/requeue">Requeue selected</button>
<button id="purge-selected" class="danger" data-can="DELETE /v1/dead-letters/{id}">Purge selected</button>
<button id="purge-all" class="danger" data-can="DELETE /v1/dead-letters">Purge all</button>
</div>
<table id="dead"></table></section>
"""

SCRIPT = r"""
let shown = [];
const queue = () => new FormData($("#filter")).get("queue") || "";

async function load() {
  const q = queue();
  const d = await api("GET", "/v1/dead-letters?limit=1000" + (q ? "&queue=" + enc(q) : ""));
  shown = d.tasks;
  $("#count").textContent = `${shown.length} dead letter${shown.length === 1 ? "" : "s"}` + (shown.length === 1000 ? " (the first 1,000)" : "");
  const pick = can("DELETE /v1/dead-letters/{id}") || can("POST /v1/dead-letters/{id}/requeue");
  table("#dead", [pick ? `<input type="checkbox" id="all">` : "", "id", "name", "queue", "#attempts", "died", "last error"].map((h, i) => i === 0 ? "" : h),
    shown.map(t => {
      const e = (t.errors[t.errors.length - 1] || {error: {}}).error;
      return [pick ? `<input type="checkbox" class="pick" value="${esc(t.id)}">` : "", taskLink(t.id), esc(t.name), esc(t.queue), t.attempts,
        esc(ago(t.finished_ms)), `<b>${esc(e.type)}</b> ${esc(e.message)}`];
    }), "no dead letters");
  if (pick && shown.length) {
    $("#dead thead th").innerHTML = `<input type="checkbox" id="all" title="select all">`;
    $("#all").onchange = e => $$(".pick").forEach(b => { b.checked = e.target.checked; });
  }
}

const picked = () => $$(".pick").filter(b => b.checked).map(b => b.value);

async function each(ids, method, path, verb) {
  if (!ids.length) { toast("select some dead letters first"); return; }
  if (!(await confirmAction(`${verb} ${ids.length} dead letter${ids.length === 1 ? "" : "s"}?`, verb))) return;
  let ok = 0;
  for (const id of ids) {
    try { await api(method, path(id), undefined, true); ok += 1; } catch (e) { toast(`${id}: ${e.message}`, true); }
  }
  toast(`${verb}: ${ok} of ${ids.length} done`);
  load();
}

RQ.page = async () => {
  const params = new URLSearchParams(location.search);
  if (params.get("queue")) $("#filter [name=queue]").value = params.get("queue");
  $("#filter").onsubmit = e => { e.preventDefault(); load(); };
  const rq = $("#requeue-selected"), ps = $("#purge-selected"), pa = $("#purge-all");
  if (rq) rq.onclick = () => each(picked(), "POST", id => `/v1/dead-letters/${enc(id)}/requeue`, "Requeue");
  if (ps) ps.onclick = () => each(picked(), "DELETE", id => "/v1/dead-letters/" + enc(id), "Purge");
  if (pa) pa.onclick = async () => {
    const q = queue();
    if (!(await confirmAction(`Purge every dead letter${q ? " of queue " + q : " of every queue"}? This cannot be undone.`, "Purge all"))) return;
    const out = await api("DELETE", "/v1/dead-letters" + (q ? "?queue=" + enc(q) : "")).catch(() => null);
    if (out) toast(`purged ${out.purged}`);
    load();
  };
  await load();
  const reload = throttle(load, 2000);
  follow({queue: queue()}, changes => { if (changes.some(c => c.type === "dead" || c.type === "requeued")) reload(); });
};
"""

PAGE = Page(slug="dead-letters", title="Dead letters", body=BODY, script=SCRIPT, order=30)
