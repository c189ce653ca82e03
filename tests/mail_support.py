"""A real SMTP server for tests (aiosmtpd's Controller on a free port of 127.0.0.1): it keeps
every message it accepted, and can be told to refuse (a 4xx or 5xx reply to RCPT or DATA, one
script entry per transaction) or to take its time before answering DATA (so a worker can be
killed mid-delivery). Also a small threaded HTTP receiver for webhook tests."""

from __future__ import annotations

import pytest

import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailServer:
    def __init__(self, *, rcpt_delay: float = 0.0, data_delay: float = 0.0):
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.script: list[tuple[str, str]] = []  # (stage "rcpt"|"data", reply) consumed one per transaction
        self.rcpt_delay = rcpt_delay  # before answering RCPT: a kill then lands before anything was handed over
        self.data_delay = data_delay  # after keeping the message, before answering: a kill then loses the answer
        self.transactions = 0
        self.in_rcpt = threading.Event()
        owner = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd
                import asyncio

                if owner.script and owner.script[0][0] == "rcpt":
                    return owner.script.pop(0)[1]
                owner.in_rcpt.set()
                if owner.rcpt_delay:
                    await asyncio.sleep(owner.rcpt_delay)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd
                import asyncio

                owner.transactions += 1
                if owner.script and owner.script[0][0] == "data":
                    return owner.script.pop(0)[1]
                owner.messages.append(email.message_from_bytes(envelope.original_content or envelope.content,
                                                               policy=email.policy.default))
                owner.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                if owner.data_delay:
                    await asyncio.sleep(owner.data_delay)
                return "250 2.0.0 accepted"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "MailServer":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@dataclass
class Received:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """Answers every POST with `reply(request)` -> (status, JSON) and keeps what it received."""

    reply: object = None
    received: list[Received] = field(default_factory=list)

    def start(self) -> "WebhookReceiver":
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802 - http.server naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path, _, query = self.path.partition("?")
                request = Received(path, query, {k.lower(): v for k, v in self.headers.items()}, body)
                owner.received.append(request)
                status, answer = owner.reply(request) if owner.reply else (200, {"ok": True})
                payload = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mail():
    """A real SMTP server (aiosmtpd) for one test."""
    server = MailServer().start()
    yield server
    server.stop()
