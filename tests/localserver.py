"""A real HTTP server on 127.0.0.1 for client tests: it replays recorded files and misbehaves on
purpose (error codes, Retry-After, connection resets, truncated bodies). No network leaves the host.

Usage (see the `local_server` fixture in conftest.py):

    server.route("/rss/cs", body=path.read_bytes(), headers={"ETag": '"x"'})
    server.route("/flaky", responses=[Reply(503, headers={"Retry-After": "1"}), Reply(200, body=b"ok")])
    server.url("/rss/cs")  -> "http://127.0.0.1:PORT/rss/cs"
    server.requests        -> list of (path_with_query, headers) seen, in order
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the socket with RST before answering
    truncate_to: int | None = None  # announce the full Content-Length, send only this many bytes


@dataclass
class _Route:
    replies: list[Reply]
    repeat_last: bool = True
    handler: Callable[[str, dict], Reply] | None = None
    hits: int = 0


class LocalServer:
    def __init__(self) -> None:
        self.routes: dict[str, _Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.bodies: list[bytes] = []  # request bodies of POSTs, in order
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):  # noqa: N802 - http.server naming
                length = int(self.headers.get("Content-Length") or 0)
                with owner._lock:
                    owner.bodies.append(self.rfile.read(length) if length else b"")
                self.do_GET()

            def do_GET(self):  # noqa: N802 - http.server naming
                headers = {k: v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append((self.path, headers))
                    reply = owner._next_reply(self.path, headers)
                if reply.reset:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                if reply.truncate_to is not None:
                    self.send_header("Connection", "close")
                self.end_headers()
                body = reply.body if reply.truncate_to is None else reply.body[: reply.truncate_to]
                self.wfile.write(body)
                if reply.truncate_to is not None:
                    self.wfile.flush()
                    self.close_connection = True

        class Server(ThreadingHTTPServer):
            def handle_error(self, request, client_address):  # a client that hung up on purpose is no error
                import sys

                if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
                    return
                super().handle_error(request, client_address)

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def _next_reply(self, raw_path: str, headers: dict[str, str]) -> Reply:
        path = urlsplit(raw_path).path
        route = self.routes.get(raw_path) or self.routes.get(path)
        if route is None:
            return Reply(404, b"Resource not found.", {"Content-Type": "text/plain"})
        route.hits += 1
        if route.handler is not None:
            return route.handler(raw_path, headers)
        index = route.hits - 1
        if index >= len(route.replies):
            index = len(route.replies) - 1
        return route.replies[index]

    def route(
        self,
        path: str,
        *,
        body: bytes = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        responses: list[Reply] | None = None,
        handler: Callable[[str, dict], Reply] | None = None,
    ) -> None:
        """Serve `path` (exact path, or path with query string for an exact match first)."""
        replies = responses or [Reply(status, body, headers or {})]
        self.routes[path] = _Route(replies=replies, handler=handler)

    def hits(self, path: str) -> int:
        route = self.routes.get(path)
        return route.hits if route else 0

    def url(self, path: str = "/") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def start(self) -> LocalServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
