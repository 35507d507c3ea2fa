"""The audit log: who cancelled, requeued, purged or changed keys (admin keys only)."""

from raftq.server.console.pages import Page

BODY = """
<h1>Audit log</h1>
<section class="card"><table id="audit"></table>
<div class="actions"><button id="more">Older</button></div></section>
"""

SCRIPT = r"""
let entries = [];

async function load() {
  const out = await api("GET", "/v1/audit?limit=1000");
  entries = out.entries.slice().reverse();
  show(100);
}

function show(n) {
  table("#audit", ["#seq", "at", "actor", "action", "target", "detail"], entries.slice(0, n).map(e => [e.seq, esc(fmtTime(e.at_ms)),
    esc(e.actor), esc(e.action), e.target && !e.target.startsWith("queue:") && e.action !== "revoke_key" && e.action !== "create_key" ? taskLink(e.target) : esc(e.target),
    esc(JSON.stringify(e.detail || {}))]), "nothing audited yet");
  $("#more").hidden = entries.length <= n;
  $("#more").onclick = () => show(n + 100);
}

RQ.page = async () => {
  if (!can("GET /v1/audit")) { $("#audit").innerHTML = "<tr><td class='muted'>Only admin keys see the audit log.</td></tr>"; $("#more").hidden = true; return; }
  await load();
  follow({}, throttle(load, 3000));
};
"""

PAGE = Page(slug="audit", title="Audit", body=BODY, script=SCRIPT, order=90, needs="GET /v1/audit")
