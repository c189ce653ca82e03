"""A real HTTP server on 127.0.0.1 for client tests: it replays recorded files and misbehaves on
purpose (error codes, Retry-After, connection resets, truncated bodies, answers trickled a byte
at a time). No network leaves the host. `LoopbackNetwork` is a stand-in for the internet: an httpcore
network backend that records the address a client connects to and delivers it to this server.

Usage (see the `local_server` fixture in conftest.py):

    server.route("/rss/cs", body=path.read_bytes(), headers={"ETag": '"x"'})
    server.route("/flaky", responses=[Reply(503, headers={"Retry-After": "1"}), Reply(200, body=b"ok")])
    server.url("/rss/cs")  -> "http://127.0.0.1:PORT/rss/cs"
    server.requests        -> list of (path_with_query, headers) seen, in order
    server.route("/slow", responses=[Reply(200, body, trickle=0.05)])  -> server.trickled["/slow"]
"""

from __future__ import annotations

import socket
import struct
import threading
import time
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
    trickle: float | None = None  # send the answer one byte at a time, this many seconds apart
    trickle_headers: bool = False  # with trickle: the status line and headers too, not just the body


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
        self.trickled: dict[str, int] = {}  # path -> bytes of a trickled answer sent before the client left
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
                if reply.trickle is not None:
                    self._trickle(reply)
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

            def _trickle(self, reply: Reply) -> None:
                head = f"HTTP/1.1 {reply.status} Trickle\r\nContent-Length: {len(reply.body)}\r\n"
                head += "".join(f"{name}: {value}\r\n" for name, value in reply.headers.items()) + "\r\n"
                if not reply.trickle_headers:
                    self.wfile.write(head.encode("latin-1"))
                    self.wfile.flush()
                slow = (head.encode("latin-1") if reply.trickle_headers else b"") + reply.body
                path = urlsplit(self.path).path
                sent = 0
                try:
                    for i in range(len(slow)):
                        self.wfile.write(slow[i : i + 1])
                        self.wfile.flush()
                        sent += 1
                        time.sleep(reply.trickle)
                except OSError:  # the client hung up
                    pass
                finally:
                    with owner._lock:
                        owner.trickled[path] = sent
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
        self.trickled.pop(path, None)

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


class LoopbackNetwork:
    """An httpcore network backend standing in for the internet: it records the address each
    connection is opened to and delivers every one of them to the local server on `port`. With
    `reachable=False` it records and then fails, as an unreachable address would. TLS is not spoken
    here: a start_tls records the server name (SNI) it was asked for and fails."""

    def __init__(self, port: int, *, reachable: bool = True):
        import httpcore

        self._backend = httpcore.SyncBackend()
        self.port = port
        self.reachable = reachable
        self.connects: list[tuple[str, int]] = []
        self.tls_names: list[str | None] = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        import httpcore

        self.connects.append((host, port))
        if not self.reachable:
            raise httpcore.ConnectError(f"{host}:{port} is unreachable (LoopbackNetwork)")
        return _RecordingStream(self._backend.connect_tcp("127.0.0.1", self.port, timeout), self)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):  # pragma: no cover
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:  # pragma: no cover
        time.sleep(seconds)


class _RecordingStream:
    def __init__(self, inner, network: LoopbackNetwork):
        self._inner, self._network = inner, network

    def read(self, max_bytes, timeout=None):
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer, timeout=None):
        return self._inner.write(buffer, timeout)

    def close(self):
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        import httpcore

        self._network.tls_names.append(server_hostname)
        self._inner.close()
        raise httpcore.ConnectError("no TLS in tests (LoopbackNetwork)")

    def get_extra_info(self, info):
        return self._inner.get_extra_info(info)
