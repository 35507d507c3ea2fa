"""Schedules: when each fires next and fired last; pause, resume, trigger."""

from raftq.server.console.pages import Page

BODY = """
<h1>Schedules</h1>
<section class="card"><table id="schedules"></table></section>
"""

SCRIPT = r"""
async function load() {
  const s = await api("GET", "/v1/schedules");
  const when = x => x.cron ? `cron ${esc(x.cron)} (${esc(x.timezone)})` : `every ${x.every_ms / 1000} s`;
  table("#schedules", ["schedule", "when", "task", "state", "#fired", "#skipped", "last tick", "actions"], s.schedules.map(x => [
    esc(x.id), when(x), esc(x.task.name) + " → " + esc(x.task.queue || "default"), x.paused ? '<span class="muted">paused</span>' : '<span class="ok">running</span>',
    x.fired, x.skipped, esc(fmtTime(x.last_tick_ms)),
    (x.paused ? `<button data-can="POST /v1/schedules/{id}/resume" data-do="resume" data-id="${esc(x.id)}">Resume</button>`
              : `<button data-can="POST /v1/schedules/{id}/pause" data-do="pause" data-id="${esc(x.id)}">Pause</button>`) +
    ` <button data-can="POST /v1/schedules/{id}/trigger" data-do="trigger" data-id="${esc(x.id)}">Trigger now</button>`]), "no schedules");
  $$("#schedules button[data-do]").forEach(b => b.onclick = async () => {
    const out = await api("POST", `/v1/schedules/${enc(b.dataset.id)}/${b.dataset.do}`, {}).catch(() => null);
    if (out) toast(`${b.dataset.id}: ${b.dataset.do} done`);
    load();
  });
}

RQ.page = async () => { await load(); setInterval(load, 10000); };
"""

PAGE = Page(slug="schedules", title="Schedules", body=BODY, script=SCRIPT, order=50)
