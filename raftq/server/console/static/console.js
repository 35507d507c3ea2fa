// raftq console: what every page shares. The API key stays in this tab's
// sessionStorage and goes with every call as a bearer token; every action is
// a call of the same HTTP API the CLI uses. A page defines RQ.page(), run once
// the key's role is known.
"use strict";
const RQ = {
  key: sessionStorage.getItem("raftq-key") || "",
  who: null,
  routes: JSON.parse(document.getElementById("rq-routes").textContent),
  node: document.body.dataset.node,
  page: null,
};

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const esc = s => String(s ?? "").replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
const enc = encodeURIComponent;
const fmtTime = ms => ms ? new Date(ms).toLocaleString() : "";
function ago(ms) {
  if (!ms) return "";
  const s = Math.round((Date.now() - ms) / 1000), a = Math.abs(s);
  const t = a < 60 ? a + "s" : a < 3600 ? Math.round(a / 60) + "m" : a < 86400 ? Math.round(a / 3600) + "h" : Math.round(a / 86400) + "d";
  return s >= 0 ? t + " ago" : "in " + t;
}
const status = s => `<span class="status ${esc(s)}">${esc(s)}</span>`;
const taskLink = id => `<a href="/ui/task?id=${enc(id)}">${esc(id)}</a>`;

function toast(message, error = false) {
  const box = $("#toast"), div = document.createElement("div");
  div.className = error ? "error" : "";
  div.textContent = message;
  box.appendChild(div);
  setTimeout(() => div.remove(), error ? 8000 : 4000);
}

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || ("HTTP " + status));
    this.status = status; this.body = body;
  }
}

// One call of the API; errors are shown and re-raised.
async function api(method, path, body, quiet = false) {
  const headers = {"Accept": "application/json"};
  if (RQ.key) headers["Authorization"] = "Bearer " + RQ.key;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let r;
  try {
    r = await fetch(path, {method, headers, body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (e) {
    if (!quiet) toast("this node does not answer: " + e.message, true);
    throw e;
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    if (r.status === 401) signOut("your API key was not accepted: " + err.message);
    else if (!quiet) toast(`${method} ${path}: ${err.message}`, true);
    throw err;
  }
  return data;
}

// May this key call METHOD /path (as the route table names it)?
function can(route) {
  const roles = RQ.routes[route];
  return !!(RQ.who && roles && (roles.length === 0 || roles.includes(RQ.who.role)));
}
// What a role cannot do is not offered: [data-can="METHOD /path"] goes unless allowed.
function gate(root = document) {
  $$("[data-can]", root).forEach(el => { if (!can(el.dataset.can)) el.remove(); });
}

function table(el, head, rows, empty = "nothing here") {
  if (typeof el === "string") el = $(el);
  const th = head.map(h => h.startsWith("#") ? `<th class="num">${esc(h.slice(1))}</th>` : `<th>${esc(h)}</th>`).join("");
  const body = rows.length ? rows.map(r => "<tr>" + r.map((c, i) => head[i] && head[i].startsWith("#") ? `<td class="num">${c}</td>` : `<td>${c}</td>`).join("") + "</tr>").join("")
    : `<tr><td colspan="${head.length}" class="muted">${esc(empty)}</td></tr>`;
  el.innerHTML = `<thead><tr>${th}</tr></thead><tbody>${body}</tbody>`;
  gate(el);
}

// Ask before acting; resolves true when confirmed.
function confirmAction(text, label = "Confirm") {
  return new Promise(resolve => {
    const dlg = $("#confirm");
    $("p", dlg).textContent = text;
    $("button.go", dlg).textContent = label;
    dlg.returnValue = "";
    dlg.onclose = () => resolve(dlg.returnValue === "go");
    dlg.showModal();
  });
}

// Follow GET /v1/events (fetch, so the key goes as a header), resuming from the
// last index after a drop. onChanges(changes, index) per log entry.
function follow(params, onChanges) {
  let since = params.since ?? null, stopped = false, ctrl = null;
  const live = $("#live");
  async function run() {
    while (!stopped) {
      ctrl = new AbortController();
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (k !== "since" && v) q.set(k, v);
      if (since !== null) q.set("since", since);
      try {
        const r = await fetch("/v1/events?" + q, {headers: {"Authorization": "Bearer " + RQ.key}, signal: ctrl.signal});
        if (!r.ok) throw new Error("HTTP " + r.status);
        if (live) live.classList.add("on");
        const reader = r.body.getReader(), dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += dec.decode(value, {stream: true});
          let cut;
          while ((cut = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, cut); buf = buf.slice(cut + 2);
            let event = "message", data = "";
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) event = line.slice(6).trim();
              else if (line.startsWith("data:")) data += line.slice(5).trim();
            }
            if (event === "changes") { const e = JSON.parse(data); since = e.index; onChanges(e.changes, e.index, e.at_ms); }
            else if (event === "position") since = JSON.parse(data).index;
            else if (event === "gone") { since = null; toast("the event stream skipped ahead; reload for the full picture"); }
          }
        }
      } catch (e) {
        if (stopped) return;
      }
      if (live) live.classList.remove("on");
      await new Promise(r => setTimeout(r, 1000));
    }
  }
  run();
  return () => { stopped = true; if (ctrl) ctrl.abort(); };
}

// At most one run of fn per `ms`, the last call always honoured.
function throttle(fn, ms) {
  let timer = null, again = false;
  return () => {
    if (timer) { again = true; return; }
    fn();
    timer = setTimeout(function tick() { timer = null; if (again) { again = false; fn(); timer = setTimeout(tick, ms); } }, ms);
  };
}

// A small SVG line chart: series {name: [numbers]}, one point a second.
function lineChart(el, series, colors) {
  const names = Object.keys(series), n = Math.max(...names.map(k => series[k].length), 2);
  const max = Math.max(1, ...names.flatMap(k => series[k]));
  const W = 900, H = 180, P = 4;
  const x = i => P + i * (W - 2 * P) / (n - 1), y = v => H - P - v * (H - 2 * P) / max;
  const lines = names.map((k, j) => `<polyline fill="none" stroke="${colors[j]}" stroke-width="1.5" points="${series[k].map((v, i) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" ")}"/>`).join("");
  el.innerHTML = `<svg viewBox="0 0 ${W} ${H}" preserveAspectRatio="none"><line x1="0" y1="${H - P}" x2="${W}" y2="${H - P}" stroke="#e3e6ec"/>${lines}</svg>`;
  return max;
}

async function signIn(key) {
  RQ.key = key;
  try {
    RQ.who = await api("GET", "/v1/whoami", undefined, true);
  } catch (e) {
    RQ.who = null;
    showSignIn(e.status === 401 || e.status === 403 ? "that key was not accepted" : "this node did not answer");
    return;
  }
  sessionStorage.setItem("raftq-key", key);
  $("#who").innerHTML = `signed in as <b>${esc(RQ.who.name)}</b> (${esc(RQ.who.role)}) · <a href="#" id="signout">sign out</a>`;
  $("#signout").onclick = e => { e.preventDefault(); signOut(); };
  $("#signin-box").hidden = true;
  $("#content").hidden = false;
  gate();
  if (RQ.page) await RQ.page();
}

function signOut(why) {
  sessionStorage.removeItem("raftq-key");
  RQ.key = ""; RQ.who = null;
  location.href = "/?signed-out" + (why ? "=" + enc(why) : "");
}

function showSignIn(problem) {
  $("#content").hidden = true;
  $("#signin-box").hidden = false;
  $("#who").textContent = "";
  if (problem) $("#signin-problem").textContent = problem;
}

document.addEventListener("DOMContentLoaded", () => {
  $("#signin").onsubmit = e => { e.preventDefault(); signIn($("#key").value.trim()); };
  const why = new URLSearchParams(location.search).get("signed-out");
  if (RQ.key) signIn(RQ.key); else showSignIn(why || "");
});
