"""A digest as a chat message: Slack (Block Kit, mrkdwn), Discord (content, at most 2000
characters), Feishu/Lark (a `post` rich-text message, signed with the bot's secret), DingTalk
(markdown, signed in the query), WeCom's group robot (markdown, at most 4096 bytes), ntfy (the text
as the body, Title and Click headers) and plain JSON (the digest's data, for one's own scripts).

Each message fits its platform's limit: papers are dropped whole from the end until it does, and
a "+N more" line links back to the radar. The URL is the user's: it goes through the SSRF guard
(sources/safe_url.py; `allow_private_urls` lets a self-hosted ntfy on the LAN through).

Signatures, as the platforms document them: Feishu `sign` = base64(HMAC-SHA256(key =
"{timestamp}\\n{secret}", message = empty)), timestamp in seconds, both in the JSON body; DingTalk
`sign` = urlencode(base64(HMAC-SHA256(key = secret, message = "{timestamp}\\n{secret}"))),
timestamp in milliseconds, both query parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

from ..errors import AcademicHubError
from ..sources.safe_url import GuardedTransport, check_public_url
from .digest import Digest, render_text, subject

WEBHOOK_KINDS = ("slack", "discord", "feishu", "dingtalk", "wecom", "ntfy", "json")
LIMITS = {  # what each platform takes, in the unit `measure` counts
    "slack": 3000,  # characters of one section block's text; at most 50 blocks
    "discord": 2000,  # characters of `content`
    "feishu": 20_000,  # bytes of the request body (custom bots)
    "dingtalk": 20_000,  # bytes of the markdown text
    "wecom": 4096,  # bytes of the markdown content
    "ntfy": 4096,  # bytes of the body (longer ones become an attachment)
}
SLACK_MAX_BLOCKS = 50
WEBHOOK_TIMEOUT = 30.0


class WebhookError(AcademicHubError):
    """The webhook could not be reached, or said no: nothing was delivered; may be sent again."""


class WebhookUnconfirmed(WebhookError):
    """The request went out and its answer was lost: it may or may not have been delivered."""


@dataclass(slots=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


def feishu_sign(secret: str, timestamp: int) -> str:
    key = f"{timestamp}\n{secret}".encode("utf-8")
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value, already URL-encoded as DingTalk asks."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode("utf-8"), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest).decode("ascii"))


# ----------------------------------------------------------------------------- fitting


def _items(digest: Digest) -> list[tuple[str, object]]:
    return [(section.radar_name, item) for section in digest.sections for item in section.items]


def fit(render: Callable[[int], object], total: int, limit: int, measure: Callable[[object], int]):
    """The rendering of the most papers (all, else fewer, whole) whose size is within `limit`."""
    for n in range(total, -1, -1):
        rendered = render(n)
        if measure(rendered) <= limit:
            return rendered
    raise WebhookError(f"even an empty digest exceeds the platform's limit of {limit}")


def _md_text(digest: Digest, n: int, *, link: Callable[[str, str], str], bold: Callable[[str], str]) -> str:
    """Markdown-ish text of the first `n` papers (the chat platforms' common ground)."""
    labels = digest.labels
    lines = [bold(subject(digest))]
    if digest.late:
        lines.append(labels["late_note"])
    shown = 0
    for section in digest.sections:
        lines.append("")
        lines.append(bold(link(section.radar_name, section.radar_url)))
        if section.headline:
            lines.append(section.headline)
        for item in section.items:
            if shown >= n:
                break
            shown += 1
            extra = [link(labels["arxiv"], item.arxiv_url)] if item.arxiv_url else []
            if item.doi_url:
                extra.append(link(labels["doi"], item.doi_url))
            lines.append(f"{shown}. {link(item.title, item.card_url)}" + (f" ({', '.join(extra)})" if extra else ""))
            if item.reasons:
                lines.append(f"   {labels['why']}: {' · '.join(item.reasons)}")
    hidden = digest.item_count - shown
    if hidden:
        target = digest.sections[0].radar_url if digest.sections else digest.base_url
        lines += ["", link(labels["more"].format(n=hidden), target)]
    return "\n".join(lines)


def _plain(text: str) -> str:
    return text.replace("[", "(").replace("]", ")")


def _markdown(digest: Digest, n: int) -> str:
    return _md_text(digest, n, link=lambda text, url: f"[{_plain(text)}]({url})", bold=lambda text: f"**{text}**")


def _utf8(value) -> int:
    return len(value.encode("utf-8") if isinstance(value, str) else value)


# ----------------------------------------------------------------------------- per platform


def _slack(digest: Digest) -> dict:
    def escape(text: str) -> str:
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    def render(n: int) -> dict:
        text = _md_text(digest, n, link=lambda t, u: f"<{u}|{escape(t).replace('|', '¦')}>", bold=lambda t: f"*{t}*")
        chunks, current = [], ""
        for line in text.split("\n"):  # one section block per ≤3000 characters, split at lines
            if len(current) + len(line) + 1 > LIMITS["slack"] and current:
                chunks.append(current)
                current = ""
            current = f"{current}\n{line}" if current else line
        if current:
            chunks.append(current)
        blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": chunk}} for chunk in chunks]
        return {"text": subject(digest), "blocks": blocks}

    def size(payload: dict) -> int:
        over_blocks = len(payload["blocks"]) > SLACK_MAX_BLOCKS
        longest = max((len(b["text"]["text"]) for b in payload["blocks"]), default=0)
        return LIMITS["slack"] + 1 if over_blocks else longest

    return fit(render, digest.item_count, LIMITS["slack"], size)


def _discord(digest: Digest) -> dict:
    def render(n: int) -> dict:
        return {"content": _md_text(digest, n, link=lambda t, u: f"[{_plain(t)}](<{u}>)", bold=lambda t: f"**{t}**")}

    return fit(render, digest.item_count, LIMITS["discord"], lambda payload: len(payload["content"]))


def _feishu(digest: Digest, secret: str | None, now: float) -> dict:
    labels = digest.labels

    def render(n: int) -> dict:
        rows: list[list[dict]] = []
        if digest.late:
            rows.append([{"tag": "text", "text": labels["late_note"]}])
        shown = 0
        for section in digest.sections:
            rows.append([{"tag": "a", "text": section.radar_name, "href": section.radar_url}])
            for item in section.items:
                if shown >= n:
                    break
                shown += 1
                row = [{"tag": "text", "text": f"{shown}. "}, {"tag": "a", "text": item.title, "href": item.card_url}]
                if item.arxiv_url:
                    row += [{"tag": "text", "text": " "}, {"tag": "a", "text": labels["arxiv"], "href": item.arxiv_url}]
                rows.append(row)
                if item.reasons:
                    rows.append([{"tag": "text", "text": f"{labels['why']}: {' · '.join(item.reasons)}"}])
        hidden = digest.item_count - shown
        if hidden:
            target = digest.sections[0].radar_url if digest.sections else digest.base_url
            rows.append([{"tag": "a", "text": labels["more"].format(n=hidden), "href": target}])
        locale = "zh_cn" if digest.lang == "zh" else "en_us"
        payload: dict = {"msg_type": "post", "content": {"post": {locale: {"title": subject(digest), "content": rows}}}}
        if secret:
            timestamp = int(now)
            payload = {"timestamp": str(timestamp), "sign": feishu_sign(secret, timestamp), **payload}
        return payload

    return fit(render, digest.item_count, LIMITS["feishu"], lambda p: _utf8(json.dumps(p, ensure_ascii=False)))


def _dingtalk(digest: Digest) -> dict:
    def render(n: int) -> dict:
        return {"msgtype": "markdown", "markdown": {"title": subject(digest), "text": _markdown(digest, n)}}

    return fit(render, digest.item_count, LIMITS["dingtalk"], lambda p: _utf8(p["markdown"]["text"]))


def _wecom(digest: Digest) -> dict:
    def render(n: int) -> dict:
        return {"msgtype": "markdown", "markdown": {"content": _markdown(digest, n)}}

    return fit(render, digest.item_count, LIMITS["wecom"], lambda p: _utf8(p["markdown"]["content"]))


def _ntfy_text(digest: Digest) -> str:
    def render(n: int) -> str:
        return _md_text(digest, n, link=lambda t, u: f"{t} {u}", bold=lambda t: t)

    return fit(render, digest.item_count, LIMITS["ntfy"], _utf8)


def _json(digest: Digest) -> dict:
    return {
        "subject": subject(digest), "lang": digest.lang, "period": digest.period, "weekly": digest.weekly,
        "late": digest.late, "settings_url": digest.settings_url, "text": render_text(digest),
        "sections": [{"radar": s.radar_name, "url": s.radar_url, "headline": s.headline, "papers": [
            {"id": i.paper_id, "title": i.title, "authors": i.authors, "why": i.reasons, "url": i.card_url,
             "arxiv_url": i.arxiv_url, "doi_url": i.doi_url} for i in s.items]} for s in digest.sections],
    }


def build_request(kind: str, url: str, digest: Digest, *, secret: str | None = None, now: float | None = None) -> Request:
    """The HTTP request that delivers `digest` to this webhook (nothing is sent)."""
    now = time.time() if now is None else now
    as_json = {"Content-Type": "application/json; charset=utf-8"}
    if kind == "slack":
        return Request(url, _dump(_slack(digest)), as_json)
    if kind == "discord":
        return Request(url, _dump(_discord(digest)), as_json)
    if kind == "feishu":
        return Request(url, _dump(_feishu(digest, secret, now)), as_json)
    if kind == "dingtalk":
        if secret:
            timestamp = int(now * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={timestamp}&sign={dingtalk_sign(secret, timestamp)}"
        return Request(url, _dump(_dingtalk(digest)), as_json)
    if kind == "wecom":
        return Request(url, _dump(_wecom(digest)), as_json)
    if kind == "ntfy":
        title = subject(digest)
        target = digest.sections[0].radar_url if digest.sections else digest.base_url
        # header values are latin-1 on the wire: ntfy reads RFC 2047 encoded words for the rest
        from email.header import Header

        return Request(url, _ntfy_text(digest).encode("utf-8"),
                       {"Title": Header(title, "utf-8").encode() if not title.isascii() else title,
                        "Click": target, "Content-Type": "text/plain; charset=utf-8"})
    if kind == "json":
        return Request(url, _dump(_json(digest)), as_json)
    raise WebhookError(f"unknown webhook kind {kind!r}: use one of {', '.join(WEBHOOK_KINDS)}")


def _dump(payload: dict) -> bytes:
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


def _refusal(kind: str, response: httpx.Response) -> str | None:
    """What the platform said when it said no, or None for a delivered message. Feishu and
    DingTalk answer 200 with an error code in the JSON for a bad signature."""
    if response.status_code >= 300:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if kind in ("feishu", "dingtalk", "wecom"):
        try:
            answer = response.json()
        except ValueError:
            return None
        code = answer.get("code", answer.get("errcode", answer.get("StatusCode", 0)))
        if code not in (0, None):
            return f"error {code}: {answer.get('msg') or answer.get('errmsg') or answer.get('StatusMessage')}"
    return None


def post(kind: str, url: str, digest: Digest, *, secret: str | None = None, allow_private: bool = False,
         before_commit: Callable[[], bool] = lambda: True, transport: httpx.BaseTransport | None = None) -> str:
    """Deliver to one webhook; a short note of the answer. The URL is checked first (SSRF); every
    connection goes to the address checked. WebhookError when nothing was delivered (retry),
    WebhookUnconfirmed when the request went out and its answer was lost."""
    try:
        url = check_public_url(url, allow_private=allow_private)
    except AcademicHubError as exc:
        raise WebhookError(f"{_redacted(url)}: {exc}") from exc
    request = build_request(kind, url, digest, secret=secret)
    chosen = transport or (httpx.HTTPTransport() if allow_private else GuardedTransport())
    with httpx.Client(transport=chosen, timeout=WEBHOOK_TIMEOUT, follow_redirects=False) as client:
        if not before_commit():
            raise WebhookError("the delivery was taken over by another worker; nothing sent")
        try:
            response = client.post(request.url, content=request.body, headers=request.headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise WebhookError(f"{_redacted(url)}: cannot connect: {exc}") from exc
        except httpx.HTTPError as exc:
            raise WebhookUnconfirmed(f"{_redacted(url)}: the answer was lost: {exc}") from exc
    refused = _refusal(kind, response)
    if refused:
        raise WebhookError(f"{_redacted(url)}: {refused}")
    return f"HTTP {response.status_code}"


def _redacted(url: str) -> str:
    """A webhook URL's path and query are its credential: errors name the host only."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "the webhook URL"


__all__ = ["LIMITS", "Request", "WEBHOOK_KINDS", "WebhookError", "WebhookUnconfirmed", "build_request", "dingtalk_sign",
           "feishu_sign", "fit", "post"]
