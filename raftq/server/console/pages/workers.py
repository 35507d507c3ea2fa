"""Workers: those the cluster knows, live or lost, their tasks, CPU and memory; pause,
resume and drain (admin)."""

from raftq.server.console.pages import Page

BODY = """
<h1>Workers</h1>
<section class="card"><table id="workers"></table>
<p class="muted">A worker is lost after three silent heartbeats, on the cluster's clock
(as <code>raftq workers</code> says).</p></section>
"""

SCRIPT = r"""
async function load() {
  const w = await api("GET", "/v1/workers", undefined, true).catch(() => null);
  if (!w) return;
  table("#workers", ["worker", "host", "pid", "queues", "state", "tasks", "#concurrency", "running", "cpu", "memory", "last heartbeat", "actions"],
    w.workers.map(x => {
      const state = x.state === "lost" ? '<span class="bad">lost</span>' : `<span class="ok">${esc(x.mode && x.mode !== "running" ? x.mode : (x.state || "live"))}</span>`;
      const running = (x.running_ids || []).map(taskLink).join(", ") || esc(x.running ?? "");
      const act = x.state === "lost" ? "" :
        (x.mode === "paused" ? `<button data-can="POST /v1/workers/{id}/resume" data-w="${esc(x.worker_id)}" data-do="resume">Resume</button>`
                             : `<button data-can="POST /v1/workers/{id}/pause" data-w="${esc(x.worker_id)}" data-do="pause">Pause</button>`) +
        ` <button data-can="POST /v1/workers/{id}/drain" data-w="${esc(x.worker_id)}" data-do="drain">Drain</button>`;
      return [esc(x.worker_id), esc(x.host), esc(x.pid), esc((x.queues || []).join(", ")), state,
        esc(x.announced ? (x.tasks || []).join(", ") : "(any)"), esc(x.concurrency ?? ""), running,
        x.cpu_pct == null ? "" : esc(x.cpu_pct.toFixed(1) + "%"), x.rss_kb == null ? "" : esc(Math.round(x.rss_kb / 1024) + " MiB"),
        x.silent_ms == null ? esc(ago(x.last_seen_ms)) : esc((x.silent_ms / 1000).toFixed(1) + " s ago"), act];
    }), "no worker seen");
  $$("#workers button[data-do]").forEach(b => b.onclick = async () => {
    if (b.dataset.do === "drain" && !(await confirmAction(`Drain worker ${b.dataset.w}? It finishes its running tasks and exits.`, "Drain"))) return;
    const out = await api("POST", `/v1/workers/${enc(b.dataset.w)}/${b.dataset.do}`, {}).catch(() => null);
    if (out) toast(`${b.dataset.w}: ${b.dataset.do} sent`);
    load();
  });
}

RQ.page = async () => {
  await load();
  const reload = throttle(load, 2000);
  follow({}, changes => { if (changes.some(c => c.type === "leased" || c.type === "succeeded")) reload(); });
  setInterval(load, 5000);
};
"""

PAGE = Page(slug="workers", title="Workers", body=BODY, script=SCRIPT, order=40)
