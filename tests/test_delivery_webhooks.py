"""Chat webhooks against local receivers that check what the platforms check: Feishu's and
DingTalk's signatures (recomputed from the secret, as the platforms document them; a wrong one is
refused and the delivery fails), Slack's Block Kit payload, each platform's size limit (papers
dropped whole, "+N more" linking back), and the SSRF guard on the URL. Plus the digest decider:
periods per cadence in the owner's zone, the newest missed period only, marked late."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from mail_support import WebhookReceiver

from academichub.app import Hub, schedule
from academichub.app.delivery import DeliveryError, add_channel, build_digest
from academichub.app.jobs import JobRetry, Jobs
from academichub.delivery.digest import Digest, DigestItem, DigestSection
from academichub.delivery.webhooks import LIMITS, WebhookError, build_request, post
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import load_settings
from academichub.store import delivery as store
from academichub.store.radars import add_rule, create_radar, default_user

NOW = datetime(2024, 11, 29, 7, 30)
FEISHU_SECRET = "feishu-secret-0123456789"
DINGTALK_SECRET = "SECdingtalk0123456789abcdef"


def feishu_check(request) -> tuple[int, dict]:
    """Feishu's custom bot: timestamp within an hour, sign = base64(HMAC-SHA256(key=ts\\nsecret, ''))."""
    body = request.json()
    timestamp = int(body["timestamp"])
    expected = base64.b64encode(hmac.new(f"{timestamp}\n{FEISHU_SECRET}".encode(), b"", hashlib.sha256).digest()).decode()
    if abs(time.time() - timestamp) > 3600 or body.get("sign") != expected:
        return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"}
    post_ = body["content"]["post"]
    assert body["msg_type"] == "post" and len(post_) == 1
    return 200, {"code": 0, "msg": "success", "data": {}}


def dingtalk_check(request) -> tuple[int, dict]:
    """DingTalk: timestamp (ms) and sign in the query, sign = urlencode(base64(HMAC-SHA256(secret, ts\\nsecret)))."""
    query = urllib.parse.parse_qs(request.query)
    timestamp = int(query["timestamp"][0])
    expected = base64.b64encode(hmac.new(DINGTALK_SECRET.encode(), f"{timestamp}\n{DINGTALK_SECRET}".encode(),
                                         hashlib.sha256).digest()).decode()
    if abs(time.time() * 1000 - timestamp) > 3_600_000 or query["sign"][0] != expected:
        return 200, {"errcode": 310000, "errmsg": "sign not match"}
    body = request.json()
    assert body["msgtype"] == "markdown" and body["markdown"]["title"] and body["markdown"]["text"]
    return 200, {"errcode": 0, "errmsg": "ok"}


def slack_check(request) -> tuple[int, dict]:
    body = request.json()
    blocks = body["blocks"]
    ok = (isinstance(body["text"], str) and body["text"] and 1 <= len(blocks) <= 50
          and all(b["type"] == "section" and b["text"]["type"] == "mrkdwn" and 0 < len(b["text"]["text"]) <= 3000
                  for b in blocks))
    return (200, "ok") if ok else (400, "invalid_blocks")


@pytest.fixture
def world(engine, database_url, tmp_path):
    load_sample_if_empty(engine)
    with engine.begin() as conn:
        user = default_user(conn)
        radar = create_radar(conn, user_id=user, name="ml")
        add_rule(conn, radar, "category", "cs.LG")
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", load_sample=False,
                             briefing_papers=10, allow_private_urls=True, job_lease_seconds=60)
    hub = Hub(settings, engine=engine, clock=lambda: NOW)
    return hub, user, radar


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def _add(hub, user, radar, kind, url, secret=None):
    channel = add_channel(hub, user, kind, url, secret=secret, radar_id=radar, lang="zh")
    with hub.engine.begin() as conn:
        store.update_channel(conn, channel, user, created_at=NOW - timedelta(days=1))
    return channel


def test_signed_and_shaped_webhooks_reach_receivers_that_verify_them(world, receiver):
    hub, user, radar = world
    checks = {"/feishu": feishu_check, "/dingtalk": dingtalk_check, "/slack": slack_check}
    receiver.reply = lambda request: checks.get(request.path, lambda r: (200, {"ok": True}))(request)
    channels = {
        "feishu": _add(hub, user, radar, "feishu", receiver.url("/feishu"), FEISHU_SECRET),
        "dingtalk": _add(hub, user, radar, "dingtalk", receiver.url("/dingtalk?access_token=abc"), DINGTALK_SECRET),
        "slack": _add(hub, user, radar, "slack", receiver.url("/slack")),
        "discord": _add(hub, user, radar, "discord", receiver.url("/discord")),
        "wecom": _add(hub, user, radar, "wecom", receiver.url("/wecom")),
        "ntfy": _add(hub, user, radar, "ntfy", receiver.url("/ntfy")),
        "json": _add(hub, user, radar, "json", receiver.url("/json")),
    }
    jobs = Jobs(hub, enqueue=lambda keys: None)
    jobs.tick()
    for kind, channel in channels.items():
        outcome = jobs.execute(f"digest:{channel}:2024-11-29")
        assert outcome.result["status"] == "sent", (kind, outcome.result)
    got = {r.path: r for r in receiver.received}
    assert sorted(got) == ["/dingtalk", "/discord", "/feishu", "/json", "/ntfy", "/slack", "/wecom"]
    assert len(receiver.received) == 7  # one each
    assert got["/dingtalk"].query.startswith("access_token=abc&timestamp=")
    assert len(got["/discord"].json()["content"]) <= 2000 and "摘要" in got["/discord"].json()["content"]
    assert len(got["/wecom"].json()["markdown"]["content"].encode()) <= 4096
    ntfy = got["/ntfy"]
    assert ntfy.headers["click"] == "http://127.0.0.1:8000/?radar=ml" and ntfy.headers["title"].startswith("=?utf-8?")
    assert len(ntfy.body) <= 4096
    data = got["/json"].json()
    assert data["period"] == "2024-11-29" and data["sections"][0]["radar"] == "ml"
    assert data["sections"][0]["papers"][0]["why"] == ["分类 cs.LG"] or "分类 cs.LG" in data["sections"][0]["papers"][0]["why"]
    assert jobs.tick() == []  # nothing twice
    assert len(receiver.received) == 7


def test_a_wrong_signature_is_refused_and_the_delivery_retried(world, receiver):
    hub, user, radar = world
    receiver.reply = feishu_check
    channel = _add(hub, user, radar, "feishu", receiver.url("/feishu"), "not-the-secret")
    jobs = Jobs(hub, enqueue=lambda keys: None)
    jobs.tick()
    with pytest.raises(JobRetry, match="error 19021: sign match fail"):
        jobs.execute(f"digest:{channel}:2024-11-29")
    with hub.engine.connect() as conn:
        assert "19021" in store.get_channel(conn, channel).last_error
        assert store.deliveries_of(conn, channel)[0].status == "failed"
        # the webhook's path (its credential) is never in the error
        assert "/feishu" not in store.get_channel(conn, channel).last_error


def _big_digest(lang="en", n=60) -> Digest:
    items = [DigestItem(i, f"A rather long paper title about topic number {i} " * 2, "A. Author, B. Author",
                        ["category cs.LG", f"keyword “topic {i}”"], f"http://h/papers/{i}", f"https://arxiv.org/abs/2411.{i:05d}")
             for i in range(n)]
    return Digest(lang=lang, period="2024-11-29", weekly=False, late=False, base_url="http://h",
                  settings_url="http://h/settings/delivery",
                  sections=[DigestSection("ml", "http://h/?radar=ml", items, headline="Headline")])


@pytest.mark.parametrize("kind", ["slack", "discord", "feishu", "dingtalk", "wecom", "ntfy"])
def test_every_message_fits_its_platform_and_says_how_many_more(kind):
    n = {"slack": 800, "feishu": 300, "dingtalk": 300}.get(kind, 60)  # more than each platform takes
    digest = _big_digest(n=n)
    request = build_request(kind, "http://h/hook", digest, secret="s")
    if kind == "slack":
        blocks = json.loads(request.body)["blocks"]
        assert len(blocks) <= 50 and max(len(b["text"]["text"]) for b in blocks) <= LIMITS["slack"]
        text = "\n".join(b["text"]["text"] for b in blocks)
    elif kind == "discord":
        text = json.loads(request.body)["content"]
        assert len(text) <= 2000
    elif kind == "feishu":
        assert len(request.body) <= LIMITS["feishu"]
        text = request.body.decode()
    elif kind in ("dingtalk", "wecom"):
        body = json.loads(request.body)["markdown"]
        text = body.get("text") or body.get("content")
        assert len(text.encode()) <= LIMITS[kind]
    else:
        text = request.body.decode()
        assert len(request.body) <= LIMITS["ntfy"]
    shown = sum(1 for i in range(n) if f"topic number {i} " in text)
    assert 0 < shown < n
    assert f"+{n - shown} more" in text and "http://h/?radar=ml" in text
    # whole papers only: every paper shown has its why line
    assert text.count("category cs.LG") == shown


def test_webhook_urls_go_through_the_ssrf_guard(world, receiver):
    hub, user, radar = world
    hub.settings.allow_private_urls = False
    with pytest.raises(DeliveryError, match="the webhook URL is refused"):
        add_channel(hub, user, "slack", receiver.url("/slack"), radar_id=radar)
    with pytest.raises(DeliveryError, match="the webhook URL is refused"):
        add_channel(hub, user, "ntfy", "http://169.254.169.254/latest", radar_id=radar)
    digest = _big_digest(n=2)
    with pytest.raises(WebhookError, match="refused"):
        post("slack", receiver.url("/slack"), digest, allow_private=False)
    assert receiver.received == []
    post("ntfy", receiver.url("/topic"), digest, allow_private=True)  # a self-hosted ntfy on the LAN
    assert [r.path for r in receiver.received] == ["/topic"]


# ----------------------------------------------------------------------------- the decider


def _clock(cadence="daily", zone="Asia/Shanghai", hour=8, created=datetime(2026, 1, 1)):
    return schedule.ChannelClock(7, None, cadence, zone, hour, created)


def test_digest_periods_follow_the_owners_zone_and_cadence():
    daily = _clock()
    # 08:00 in Shanghai is 00:00 UTC
    assert schedule.digest_period(daily, datetime(2026, 12, 5, 23, 59)) == ("2026-12-05", datetime(2026, 12, 5, 0, 0, tzinfo=timezone.utc))
    assert schedule.digest_period(daily, datetime(2026, 12, 6, 0, 0))[0] == "2026-12-06"
    weekly = _clock("weekly")
    # Monday 2026-12-07 08:00 Shanghai = 2026-12-07 00:00 UTC
    assert schedule.digest_period(weekly, datetime(2026, 12, 6, 23, 59))[0] == "2026-W49"
    assert schedule.digest_period(weekly, datetime(2026, 12, 7, 0, 0))[0] == "2026-W50"


def test_due_digests_only_the_newest_period_once_late_when_missed():
    channel = _clock()
    on_time = schedule.due_digests(datetime(2026, 12, 6, 0, 30), [channel], {})
    assert [(i.key, i.params["late"]) for i in on_time] == [("digest:7:2026-12-06", False)]
    done = {"digest:7:2026-12-06": schedule.LedgerEntry("done", {})}
    assert schedule.due_digests(datetime(2026, 12, 6, 5, 0), [channel], done) == []
    # down from the 6th to the 9th at 03:00 UTC: the 9th's only (no backlog), late
    back = schedule.due_digests(datetime(2026, 12, 9, 3, 0), [channel], done)
    assert [(i.key, i.params["late"]) for i in back] == [("digest:7:2026-12-09", True)]
    # not while papers are being ingested, not for a period due before the channel existed
    ingesting = {"arxiv:2026-12-05": schedule.LedgerEntry("running", {})}
    assert schedule.due_digests(datetime(2026, 12, 6, 0, 30), [channel], ingesting) == []
    new = _clock(created=datetime(2026, 12, 6, 0, 10))
    assert schedule.due_digests(datetime(2026, 12, 6, 0, 30), [new], {}) == []
