"""A scripted stand-in for a node's HTTP port, for client UNIT tests only.

It answers each request with the next scripted reply (a status and JSON body,
``DROP`` to close the connection without answering, or a function of the
request returning one of those) and records what it received. It knows
nothing of raftq: the integration tests use real nodes.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DROP = "drop"
CLOSE_AFTER = "close-after"  # answer 200 {} as if keeping the connection, then close it


class FakeNode:
    def __init__(self, replies: list[Any] | None = None, default: Any = (200, {})) -> None:
        self.replies = list(replies or [])
        self.default = default
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                fake.requests.append({
                    "method": self.command, "path": self.path, "headers": dict(self.headers),
                    "body": json.loads(raw) if raw else None,
                })
                reply = fake.replies.pop(0) if fake.replies else fake.default
                if callable(reply):  # computed from the request it answers
                    reply = reply(fake.requests[-1])
                if reply == DROP:
                    self.close_connection = True
                    return
                if reply == CLOSE_AFTER:
                    reply = (200, {})
                    self.close_connection = True
                status, body = reply[0], reply[1]
                headers = reply[2] if len(reply) > 2 else {}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


_held_sockets: list[Any] = []


def dead_url() -> str:
    """A loopback URL nothing listens on. Its port stays bound (not listening) for
    the rest of the session: a freed port in the ephemeral range may become a
    client's own source port, and a connect from it to itself succeeds (a TCP
    self-connect), so the "dead" node would answer."""
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _held_sockets.append(s)
    return f"http://127.0.0.1:{s.getsockname()[1]}"
