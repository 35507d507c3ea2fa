"""Routes of the node's HTTP server: exact paths in a dict, ``{name}`` patterns in order."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from raftq.server.http import Handler, Request, Response, error_json


class Router:
    """Exact paths in a dict; ``{name}`` patterns tried in the order added."""

    def __init__(self) -> None:
        self._exact: dict[str, dict[str, Handler]] = {}
        self._patterns: list[tuple[re.Pattern[str], str, dict[str, Handler]]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        if "{" not in pattern:
            self._exact.setdefault(pattern, {})[method] = handler
            return
        for _regex, existing, methods in self._patterns:
            if existing == pattern:
                methods[method] = handler
                return
        regex = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(pattern))
                           + "$")
        self._patterns.append((regex, pattern, {method: handler}))

    def add_all(self, routes: Iterable[tuple[str, str, Handler]]) -> None:
        for method, pattern, handler in routes:
            self.add(method, pattern, handler)

    def resolve(self, request: Request) -> Handler:
        """The handler for ``request`` (filling its ``match_info``); for a path
        or method without a route, one that answers 404 or 405 (so those pass
        through the middleware and its metrics like any other answer)."""
        path = request.path
        methods = self._exact.get(path)
        if methods is not None:
            request.route = path
        else:
            for regex, pattern, candidates in self._patterns:
                m = regex.match(path)
                if m is not None:
                    request.match_info = {k: unquote(v) for k, v in m.groupdict().items()}
                    request.route = pattern
                    methods = candidates
                    break
            else:
                return _answer(error_json(404, "not_found", f"no route for {path}"))
        handler = methods.get("GET" if request.method == "HEAD" else request.method)
        if handler is None:
            allowed = ", ".join(sorted(methods))
            return _answer(error_json(405, "method_not_allowed", f"{request.method} is not "
                                      f"allowed on {request.route}; use {allowed}",
                                      headers={"Allow": allowed}))
        return handler


def _answer(response: Response) -> Handler:
    async def answer(request: Request) -> Response:
        return response
    return answer
