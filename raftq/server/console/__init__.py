"""The web console every node serves at ``/`` and ``/ui/<page>``.

Server-rendered: the node writes each page's HTML (the frame with the
cluster's navigation and which node you are on, and the page's own body)
from the page modules in ``raftq.server.console.pages``; a small shared
script (``static/console.js``) signs in with an API key, fills the page from
the JSON API with the key as a bearer token, and follows the event stream
for live updates. Every action is a call of the same HTTP API the CLI uses,
and what a key's role may not call (the route table, ``raftq.server.auth``)
is not offered. No build step, no third-party script: the chart is a few
lines of SVG.

The pages and the assets are open (no data in them); ``GET /v1/whoami``
tells the script the key's name and role.
"""

from __future__ import annotations

import hashlib
import html
import json
from importlib import resources

from raftq.errors import NotFound
from raftq.server.auth import ROUTES, Auth, roles_of
from raftq.server.config import NodeConfig
from raftq.server.console.pages import Page, discover
from raftq.server.http import Request, Response, json_response

_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def _asset(name: str) -> tuple[bytes, str]:
    data = resources.files(__name__).joinpath("static", name).read_bytes()
    return data, hashlib.sha256(data).hexdigest()[:12]


class Console:
    def __init__(self, config: NodeConfig, auth: Auth) -> None:
        self.config = config
        self.auth = auth
        self.pages = discover()
        self.by_slug = {p.slug: p for p in self.pages}
        self.assets = {name: _asset(name) for name in ("console.js", "console.css")}
        routes: dict[str, list[str]] = {}
        for spec in ROUTES:
            if spec.path.startswith("/v1/"):
                routes[f"{spec.method} {spec.path}"] = sorted(roles_of(spec, config))
        self.routes_json = json.dumps(routes, sort_keys=True).replace("</", "<\\/")
        self._rendered: dict[str, bytes] = {}

    async def overview(self, request: Request) -> Response:
        return self._page("overview")

    async def page(self, request: Request) -> Response:
        return self._page(request.match_info["page"])

    async def asset(self, request: Request) -> Response:
        found = self.assets.get(request.match_info["name"])
        if found is None:
            raise NotFound(f"no console asset {request.match_info['name']}")
        data, etag = found
        headers = {"Cache-Control": "public, max-age=300", "ETag": f'"{etag}"'}
        if request.headers.get("if-none-match") == f'"{etag}"':
            return Response(b"", status=304, content_type="text/plain", headers=headers)
        suffix = request.match_info["name"][request.match_info["name"].rfind("."):]
        return Response(data, content_type=_TYPES[suffix], headers=headers)

    async def whoami(self, request: Request) -> Response:
        """The calling key's name and role, and this node's id."""
        name, role = self.auth.identify(request)
        return json_response({"name": name, "role": role, "node_id": self.config.node_id})

    def _page(self, slug: str) -> Response:
        body = self._rendered.get(slug)
        if body is None:
            page = self.by_slug.get(slug)
            if page is None:
                raise NotFound(f"no console page {slug}")
            body = self._rendered[slug] = self.render(page).encode()
        return Response(body, content_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    def render(self, page: Page) -> str:
        node = html.escape(self.config.node_id)
        nav = "".join(
            f'<a href="/ui/{p.slug}"{" class=here" if p is page else ""}'
            f'{f" data-can={chr(34)}{p.needs}{chr(34)}" if p.needs else ""}>'
            f"{html.escape(p.title)}</a>"
            for p in self.pages if p.order)
        _, js_tag = self.assets["console.js"]
        _, css_tag = self.assets["console.css"]
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(page.title)} · raftq {node}</title><link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/static/console.css?v={css_tag}">
</head><body data-node="{node}" data-page="{page.slug}">
<header><span class="brand">raftq</span>
<span class="node">node <b id="node-id">{node}</b></span>
<nav>{nav}</nav><span id="live" class="live">live</span><span id="who"></span></header>
<main>
<section id="signin-box" class="card" hidden><h1>Sign in</h1>
<form id="signin"><label for="key">API key</label>
<input id="key" type="password" size="50" autocomplete="off" placeholder="rq_...">
<button class="primary" type="submit">Sign in</button></form>
<p id="signin-problem" class="bad"></p>
<p class="muted">Any key works; what its role may not do is not offered. The key stays in
this browser tab (sessionStorage) and goes to this node with each call.</p></section>
<div id="content" hidden>
{page.body}
</div></main>
<div id="toast"></div>
<dialog id="confirm"><form method="dialog"><p></p><div class="actions">
<button value="cancel">Cancel</button><button class="primary go" value="go">Confirm</button>
</div></form></dialog>
<script id="rq-routes" type="application/json">{self.routes_json}</script>
<script src="/ui/static/console.js?v={js_tag}"></script>
<script>{page.script}</script>
</body></html>
"""
