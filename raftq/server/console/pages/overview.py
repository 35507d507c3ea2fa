"""The overview: the cluster as each node sees itself, live rates, queue depths."""

from raftq.server.console.pages import Page

BODY = """
<div class="grid">
<section class="card"><h2>Cluster <span class="muted" id="quorum"></span></h2>
<table id="cluster"></table>
<p class="muted">You are on node <b id="here"></b>; the highlighted row.</p></section>
<section class="card chart"><h2>Rates, per second, last 15 minutes</h2>
<div id="rates"></div><div class="legend" id="legend"></div></section>
</div>
<section class="card"><h2>Queues</h2><table id="queues"></table></section>
"""

SCRIPT = r"""
const SERIES = ["submitted", "started", "succeeded", "failed"];
const COLORS = ["#2457c5", "#b7791f", "#1f8a4c", "#c0392b"];
const TYPE_OF = {submitted: "submitted", leased: "started", succeeded: "succeeded", failed: "failed", dead: "failed"};
let rates = null;

async function loadCluster() {
  const c = await api("GET", "/v1/cluster", undefined, true).catch(() => null);
  if (!c) return;
  $("#here").textContent = RQ.node;
  $("#quorum").textContent = c.has_quorum ? `term ${c.term}, leader ${c.leader}` : "no quorum";
  table("#cluster", ["node", "role", "#term", "#commit", "#applied", "#lag", "#clock offset ms", "http"],
    c.nodes.map(n => [
      esc(n.id) + (n.id === RQ.node ? " <b>(you)</b>" : ""),
      `<span class="${n.role === "leader" ? "leader" : n.reachable ? "" : "down"}">${esc(n.reachable ? n.role : "unreachable")}</span>`,
      esc(n.term), esc(n.commit_index), esc(n.applied_index), esc(n.lag), esc(n.clock_offset_ms), esc(n.http_address)]));
  $$("#cluster tbody tr").forEach((tr, i) => { if (c.nodes[i].id === RQ.node) tr.classList.add("you"); });
}

async function loadQueues() {
  const q = await api("GET", "/v1/queues", undefined, true).catch(() => null);
  if (!q) return;
  table("#queues", ["queue", "#queued", "#scheduled", "#waiting", "#leased", "#succeeded", "#dead", "#cancelled", "#expired", "ready by priority"],
    Object.entries(q.queues).map(([name, d]) => [
      `<a href="/ui/tasks?queue=${enc(name)}">${esc(name)}</a>`, d.queued, d.scheduled, d.waiting ?? 0, d.leased, d.succeeded,
      d.dead ? `<a href="/ui/dead-letters?queue=${enc(name)}">${d.dead}</a>` : 0, d.cancelled, d.expired ?? 0,
      Object.entries(d.ready_by_priority).map(([p, n]) => `${esc(p)}: ${n}`).join(", ")]), "no queues yet");
}

function drawRates() {
  if (!rates) return;
  const now = Math.floor(Date.now() / 1000);
  while (rates.start_s + rates.submitted.length - 1 < now) {
    for (const k of SERIES) { rates[k].push(0); rates[k].shift(); }
    rates.start_s += 1;
  }
  lineChart($("#rates"), Object.fromEntries(SERIES.map(k => [k, rates[k]])), COLORS);
  const recent = k => rates[k].slice(-11, -1).reduce((a, b) => a + b, 0) / 10;
  $("#legend").innerHTML = SERIES.map((k, i) => `<span style="color:${COLORS[i]}">■ ${k} <b data-rate="${k}">${recent(k).toFixed(1)}</b>/s</span>`).join("");
}

RQ.page = async () => {
  await Promise.all([loadCluster(), loadQueues()]);
  rates = await api("GET", "/v1/rates", undefined, true).catch(() => null);
  drawRates();
  const queues = throttle(loadQueues, 1000);
  follow({}, (changes, index, at_ms) => {
    if (rates) {
      const i = Math.floor(at_ms / 1000) - rates.start_s;
      for (const c of changes) {
        const k = TYPE_OF[c.type];
        if (k && i >= 0 && i < rates[k].length) rates[k][i] += 1;
      }
    }
    queues();
  });
  setInterval(drawRates, 1000);
  setInterval(loadCluster, 5000);
};
"""

PAGE = Page(slug="overview", title="Overview", body=BODY, script=SCRIPT, order=10)
