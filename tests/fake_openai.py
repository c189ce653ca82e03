"""A fake OpenAI-compatible server on 127.0.0.1 that speaks the real /v1/chat/completions wire
format, for the briefing tests and benchmark. Nothing leaves the host.

- non-streaming: a `chat.completion` JSON with choices[0].message.content and usage;
- streaming (request "stream": true): SSE `data: {chat.completion.chunk}` lines, the content split
  over several deltas, a final chunk with `usage` and empty choices (when the request asked for
  stream_options.include_usage and the reply has usage), then `data: [DONE]`;
- errors: any status with headers (429 + Retry-After, 500, 400 for response_format…).

Replies are scripted: `server.script = [reply, reply, ...]`, one per request, the last repeating;
a reply is a `Reply` or a function of the request's JSON body returning one (a fake model).

    server = FakeOpenAI().start()
    server.script = [FakeOpenAI.error(429, retry_after="3"), FakeOpenAI.answer('{"headline": ...}')]
    server.base_url -> "http://127.0.0.1:PORT/v1"
    server.requests -> [(headers, body_json), ...]
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Union


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the assistant message (status 200)
    usage: tuple[int, int] | None = (0, 0)  # (prompt, completion) tokens; None: no usage sent
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None  # a raw body (errors)
    raw: bytes | None = None  # sent as is with status 200 and `headers` (a broken stream)
    model: str = "fake-model"
    finish_reason: str = "stop"


Script = Union[Reply, Callable[[dict], Reply]]


def _usage(usage: tuple[int, int]) -> dict:
    prompt, completion = usage
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class FakeOpenAI:
    def __init__(self) -> None:
        self.script: list[Script] = []
        self.requests: list[tuple[dict[str, str], dict]] = []
        self._lock = threading.Lock()
        self._served = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {}
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append((headers, body))
                    reply = owner._next(body)
                if self.path.rstrip("/") != "/v1/chat/completions":
                    reply = Reply(404, body=b'{"error": {"message": "not found"}}')
                self._send(reply, body)

            def _send(self, reply: Reply, request: dict) -> None:
                if reply.raw is not None:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.raw)))
                    self.end_headers()
                    self.wfile.write(reply.raw)
                    return
                if reply.status != 200 or reply.content is None:
                    payload = reply.body if reply.body is not None else json.dumps(
                        {"error": {"message": f"fake error {reply.status}", "type": "fake", "code": reply.status}}
                    ).encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                created = int(time.time())
                if request.get("stream"):
                    payload = owner.sse(reply, request, created)
                    content_type = "text/event-stream"
                else:
                    message = {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": created, "model": reply.model,
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply.content},
                                     "finish_reason": reply.finish_reason}],
                    }
                    if reply.usage is not None:
                        message["usage"] = _usage(reply.usage)
                    payload = json.dumps(message).encode()
                    content_type = "application/json"
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @staticmethod
    def sse(reply: Reply, request: dict, created: int) -> bytes:
        content = reply.content or ""
        step = max(1, len(content) // 4 + 1)
        pieces = [content[i : i + step] for i in range(0, len(content), step)] or [""]
        events = []
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": created, "model": reply.model}
        events.append({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})
        for piece in pieces:
            events.append({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
        events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]})
        wants_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        if reply.usage is not None and wants_usage:
            events.append({**base, "choices": [], "usage": _usage(reply.usage)})
        lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
        return "".join(lines).encode()

    def _next(self, body: dict) -> Reply:
        if not self.script:
            return Reply(500, body=b'{"error": {"message": "no script"}}')
        index = min(self._served, len(self.script) - 1)
        self._served += 1
        item = self.script[index]
        return item(body) if callable(item) else item

    # -- replies --

    @staticmethod
    def answer(content: str, usage: tuple[int, int] | None = (1200, 300), **kwargs) -> Reply:
        return Reply(200, content=content, usage=usage, **kwargs)

    @staticmethod
    def error(status: int, retry_after: str | None = None, headers: dict[str, str] | None = None,
              message: str | None = None) -> Reply:
        all_headers = dict(headers or {})
        if retry_after is not None:
            all_headers["Retry-After"] = retry_after
        body = json.dumps({"error": {"message": message or f"fake error {status}", "type": "fake"}}).encode()
        return Reply(status, content=None, headers=all_headers, body=body)

    # -- lifecycle --

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def hits(self) -> int:
        return len(self.requests)

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


# ----------------------------------------------------------------------------- fake models


def papers_in_request(body: dict) -> list[dict]:
    """The papers array the briefing prompt sends (between the untrusted-data markers)."""
    text = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
    start = text.index("BEGIN_UNTRUSTED_PAPERS") + len("BEGIN_UNTRUSTED_PAPERS")
    end = text.index("END_UNTRUSTED_PAPERS")
    return json.loads(text[start:end])


def hints_in_request(body: dict) -> dict:
    text = next((m["content"] for m in body.get("messages", []) if m.get("role") == "user"), "")
    first = text.split("\n", 2)[1]
    return json.loads(first)


def careful_model(body: dict) -> Reply:
    """A model that does what the prompt asks: the suggested themes, sentences citing their
    papers, one true figure quoted from an abstract, the candidate links and picks."""
    papers = {p["n"]: p for p in papers_in_request(body)}
    hints = hints_in_request(body)
    themes = []
    for index, theme in enumerate(hints["suggested_themes"], start=1):
        members = theme["papers"]
        phrases = ", ".join(theme["key_phrases"][:3]) or "related work"
        sentences = [{"text": f"These papers study {phrases}.", "cite": members[:4]}]
        first = papers[members[0]]
        sentences.append({"text": f"{first['title']} is the most central paper of this theme.", "cite": [members[0]]})
        themes.append({"title": f"Theme {index}: {phrases}", "papers": members, "sentences": sentences})
    links = [{"a": link["a"], "b": link["b"], "why": "They share a method across fields.", "cite": [link["a"], link["b"]]}
             for link in hints["candidate_cross_field_links"]]
    picks = [{"n": n, "line": f"Start with {papers[n]['title']}."} for n in hints["candidate_picks"][:3]]
    reply = {"headline": "A day of work across several fields.", "themes": themes, "links": links, "picks": picks,
             "changes": []}
    return FakeOpenAI.answer(json.dumps(reply))
