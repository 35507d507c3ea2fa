"""Queues and limits: each queue's depth and settings (pause, resume, cap), rate and
concurrency limits."""

from raftq.server.console.pages import Page

BODY = """
<h1>Queues and limits</h1>
<section class="card"><h2>Queues</h2><table id="queue-settings"></table></section>
<div class="grid">
<section class="card"><h2>Rate limits</h2><table id="rates-table"></table></section>
<section class="card"><h2>Concurrency limits</h2><table id="concurrency-table"></table></section>
</div>
"""

SCRIPT = r"""
async function load() {
  const q = await api("GET", "/v1/queues");
  const names = Object.keys(q.queues);
  const settings = await Promise.all(names.map(n => api("GET", "/v1/queues/" + enc(n), undefined, true).then(r => r.queue).catch(() => ({}))));
  table("#queue-settings", ["queue", "state", "#queued", "#leased", "#dead", "cap", "tenant weights", "actions"], names.map((n, i) => {
    const s = settings[i] || {}, d = q.queues[n];
    const paused = !!s.paused;
    return [`<a href="/ui/tasks?queue=${enc(n)}">${esc(n)}</a>`, paused ? '<span class="bad">paused</span>' : '<span class="ok">running</span>',
      d.queued, d.leased, d.dead, s.max_queued ? esc(s.max_queued) : "none",
      esc(Object.entries(s.tenant_weights || {}).map(([t, w]) => `${t}: ${w}`).join(", ")),
      `<button data-can="PUT /v1/queues/{name}" data-queue="${esc(n)}" data-paused="${paused ? "false" : "true"}">${paused ? "Resume" : "Pause"}</button>` +
      ` <button data-can="PUT /v1/queues/{name}" data-cap="${esc(n)}">Set cap</button>`];
  }), "no queues yet");
  $$("#queue-settings button[data-queue]").forEach(b => b.onclick = async () => {
    const pause = b.dataset.paused === "true", name = b.dataset.queue;
    if (pause && !(await confirmAction(`Pause queue ${name}? Workers stop getting its tasks until it is resumed.`, "Pause"))) return;
    const out = await api("PUT", "/v1/queues/" + enc(name), {paused: pause}).catch(() => null);
    if (out) toast(`${name}: ${pause ? "paused" : "resumed"}`);
    load();
  });
  $$("#queue-settings button[data-cap]").forEach(b => b.onclick = async () => {
    const raw = prompt(`Most tasks queue ${b.dataset.cap} may hold (0: no cap)`, "0");
    if (raw === null) return;
    const out = await api("PUT", "/v1/queues/" + enc(b.dataset.cap), {max_queued: Number(raw)}).catch(() => null);
    if (out) toast(`${b.dataset.cap}: cap ${raw}`);
    load();
  });
  const r = await api("GET", "/v1/limits", undefined, true).catch(() => ({limits: []}));
  table("#rates-table", ["key", "#rate", "per", "#burst", "#room", "#waiting"], r.limits.map(l => [esc(l.key), l.rate, `${l.per_ms} ms`, l.burst, l.room, l.waiting]), "no rate limits");
  const c = await api("GET", "/v1/concurrency", undefined, true).catch(() => ({limits: []}));
  table("#concurrency-table", ["key", "#max", "#running", "#waiting"], (c.limits || []).map(l => [esc(l.key), l.max, l.running, l.waiting]), "no concurrency limits");
}

RQ.page = async () => {
  await load();
  follow({}, throttle(load, 3000));
};
"""

PAGE = Page(slug="queues", title="Queues", body=BODY, script=SCRIPT, order=25)
