"""E-mail digests against a real SMTP server (aiosmtpd, started by the test) over the bundled day:
one digest per channel and period, both MIME parts, the unsubscribe headers, zh and en; the signed
like/dismiss/save links (GET confirms, POST acts; forged and expired ones refused); one-click
unsubscribe; a server that refuses mail leads to retries with backoff and then a failure shown on
the settings page, never a second copy; `academichub digest send`."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mail_support import mail  # noqa: F401 - the fixture: a real SMTP server

from academichub.app import Hub
from academichub.app.jobs import JobFailed, JobRetry, Jobs, MAX_ATTEMPTS
from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import load_settings
from academichub.store import delivery as store
from academichub.store import jobs as ledger
from academichub.store.radars import add_rule, create_radar, default_user, get_radar

NOW = datetime(2024, 11, 29, 7, 30)  # the day after the bundled announcement, after the 07:00 briefing hour (UTC)


@pytest.fixture
def world(engine, database_url, tmp_path, mail):
    """The bundled day, a radar "ml" (cs.LG) of the local user, a hub on an injected clock with the
    test's SMTP server set up."""
    load_sample_if_empty(engine)
    with engine.begin() as conn:
        user = default_user(conn)
        radar = create_radar(conn, user_id=user, name="ml")
        add_rule(conn, radar, "category", "cs.LG")
    settings = load_settings(database_url=database_url, data_dir=tmp_path / "data", smtp_host="127.0.0.1",
                             smtp_port=mail.port, smtp_security="none", smtp_from="Radar <radar@lab.example>",
                             load_sample=False, briefing_papers=10, job_lease_seconds=60)
    clock = [NOW]
    hub = Hub(settings, engine=engine, clock=lambda: clock[0])
    return hub, clock, user, radar


def _channel(hub, user, target, *, lang="en", radar=None, cadence="daily", created=NOW - timedelta(days=3)):
    with hub.engine.begin() as conn:
        channel = store.add_channel(conn, user, "email", target, radar_id=radar, cadence=cadence, lang=lang)
        store.update_channel(conn, channel, user, created_at=created)
    return channel


def _parts(message):
    return {part.get_content_type(): part.get_content() for part in message.walk() if not part.is_multipart()}


def test_one_digest_per_channel_and_period_with_both_parts_headers_and_languages(world, mail):
    hub, clock, user, radar = world
    en = _channel(hub, user, "en@lab.example", lang="en", radar=radar)
    zh = _channel(hub, user, "zh@lab.example", lang="zh")  # all of the user's radars
    jobs = Jobs(hub, enqueue=lambda keys: None)
    keys = sorted(intent.key for intent in jobs.plan() if intent.name == "digest")
    assert keys == [f"digest:{en}:2024-11-29", f"digest:{zh}:2024-11-29"]
    jobs.tick()
    for key in keys:
        outcome = jobs.execute(key)
        assert outcome.ran and outcome.result["status"] == "sent"
    # A second run of the same period (a retry, a second worker, a second tick) sends nothing.
    assert jobs.tick() == []
    assert hub.deliver_digest(en, "2024-11-29").status == "sent"
    assert [s.to_dict()["status"] for s in [hub.deliver_digest(zh, "2024-11-29")]] == ["sent"]
    assert len(mail.messages) == 2
    by_to = {m["To"]: m for m in mail.messages}
    english, chinese = by_to["en@lab.example"], by_to["zh@lab.example"]

    assert english.get_content_type() == "multipart/alternative"
    parts = _parts(english)
    assert set(parts) == {"text/plain", "text/html"}
    assert english["Subject"] == "AcademicHub digest · ml · 2024-11-29"
    assert chinese["Subject"] == "AcademicHub 摘要 · ml · 2024-11-29"
    assert english["From"] == "Radar <radar@lab.example>"
    unsubscribe = english["List-Unsubscribe"]
    assert re.fullmatch(r"<http://127\.0\.0\.1:8000/digest/unsubscribe\?t=[\w.-]+>, <mailto:radar@lab\.example\?subject=unsubscribe>",
                        unsubscribe), unsubscribe
    assert english["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    with hub.engine.connect() as conn:
        rows = {d.channel_id: d for d in store.recent_deliveries(conn, user)}
    assert english["Message-ID"] == rows[en].message_id and rows[en].status == "sent" and rows[en].attempts == 1
    assert rows[en].late is False

    text, html = parts["text/plain"], parts["text/html"]
    with hub.engine.connect() as conn:
        ranked = hub.rank(radar, since=datetime(2024, 11, 28).date(), limit=10)
    first = ranked[0]
    assert first.title.split()[0] in text and "Why: category cs.LG" in text
    assert f"Card: http://127.0.0.1:8000/papers/{first.id}" in text
    assert "arXiv: https://arxiv.org/abs/" in text
    assert "<style" not in html and 'style="' in html  # CSS inlined onto the elements
    assert f'href="http://127.0.0.1:8000/papers/{first.id}"' in html
    zh_text = _parts(chinese)["text/plain"]
    assert "推荐理由: 分类 cs.LG" in zh_text and "退订" in zh_text
    assert text.count("/digest/act?t=") == 3 * len(ranked[:10])


def test_signed_links_confirm_on_get_act_on_post_and_refuse_forged_or_expired(world, mail):
    from academichub.web.app import create_app

    hub, clock, user, radar = world
    channel = _channel(hub, user, "me@lab.example", lang="en", radar=radar)
    assert hub.deliver_digest(channel, "2024-11-29").status == "sent"
    text = _parts(mail.messages[0])["text/plain"]
    like = re.search(r"Like: (http://127\.0\.0\.1:8000(/digest/act\?t=[\w.-]+))", text).group(2)
    paper = int(re.search(r"Card: http://127\.0\.0\.1:8000/papers/(\d+)", text).group(1))
    unsubscribe = re.search(r"<http://127\.0\.0\.1:8000(/digest/unsubscribe\?t=[\w.-]+)>", mail.messages[0]["List-Unsubscribe"]).group(1)

    def feedback():
        with hub.engine.connect() as conn:
            return [(f.paper_id, f.action) for f in get_radar(conn, radar).feedback]

    with TestClient(create_app(hub=hub)) as client:
        page = client.get(like)  # a mail scanner opening the link changes nothing
        assert page.status_code == 200 and 'action="/digest/act"' in page.text and feedback() == []
        token = like.split("t=", 1)[1]
        assert f'name="t" value="{token}"' in page.text
        done = client.post("/digest/act", data={"t": token})
        assert done.status_code == 200 and 'data-state="done"' in done.text
        assert feedback() == [(paper, "like")]
        assert client.post("/digest/act", data={"t": token}).status_code == 200 and feedback() == [(paper, "like")]

        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert client.get(f"/digest/act?t={forged}").status_code == 403
        assert client.post("/digest/act", data={"t": forged}).status_code == 403
        other_purpose = unsubscribe.split("t=", 1)[1]  # a valid token, made for another purpose
        assert client.post("/digest/act", data={"t": other_purpose}).status_code == 403
        clock[0] = NOW + timedelta(days=15)  # past the two weeks a digest's links work
        expired = client.get(like)
        assert expired.status_code == 403 and 'data-state="invalid"' in expired.text
        assert client.post("/digest/act", data={"t": token}).status_code == 403
        assert feedback() == [(paper, "like")]

        # One-click unsubscribe, as a mail client sends it (RFC 8058): the channel is turned off.
        confirm = client.get(unsubscribe)
        assert confirm.status_code == 200 and 'data-state="unsubscribe"' in confirm.text
        with hub.engine.connect() as conn:
            assert store.get_channel(conn, channel).enabled
        gone = client.post(unsubscribe, content=b"List-Unsubscribe=One-Click",
                           headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"})
        assert gone.status_code == 200 and 'data-state="unsubscribed"' in gone.text
        with hub.engine.connect() as conn:
            assert not store.get_channel(conn, channel).enabled
        clock[0] = NOW + timedelta(days=2)
        assert [i for i in Jobs(hub).plan() if i.name == "digest"] == []  # nothing due for a channel turned off


def test_a_refusing_server_is_retried_with_backoff_then_shown_failed_never_twice(world, mail):
    from academichub.web.app import create_app

    hub, clock, user, radar = world
    ok = _channel(hub, user, "ok@lab.example", lang="en", radar=radar)
    bad = _channel(hub, user, "bad@lab.example", lang="zh", radar=radar)
    jobs = Jobs(hub, enqueue=lambda keys: None)
    jobs.tick()
    ok_key, bad_key = f"digest:{ok}:2024-11-29", f"digest:{bad}:2024-11-29"
    # ok: refused twice (a 4xx to DATA, then a 5xx to RCPT), accepted on the third attempt.
    mail.script = [("data", "451 4.3.0 try again later"), ("rcpt", "550 5.1.1 mailbox unavailable")]
    for attempt, said in ((1, "451"), (2, "550")):
        with pytest.raises(JobRetry) as raised:
            jobs.execute(ok_key)
        assert said in str(raised.value)
        with hub.engine.connect() as conn:
            row = store.recent_deliveries(conn, user)[0]
            assert (row.channel_id, row.status, row.attempts) == (ok, "failed", attempt)
            assert said in store.get_channel(conn, ok).last_error
    assert jobs.execute(ok_key, force=True).result["status"] == "sent"
    assert [m["To"] for m in mail.messages] == ["ok@lab.example"]
    with hub.engine.connect() as conn:
        assert store.get_channel(conn, ok).last_error is None

    # bad: every attempt refused: the ledger's retries, then failed for good, on the settings page.
    mail.script = [("rcpt", "550 5.1.1 no such user bad@lab.example")] * MAX_ATTEMPTS
    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(JobRetry):
            jobs.execute(bad_key)
    with pytest.raises(JobFailed):
        jobs.execute(bad_key)
    with hub.engine.connect() as conn:
        assert ledger.get(conn, bad_key).status == "failed"
        rows = {d.channel_id: d for d in store.recent_deliveries(conn, user)}
    assert (rows[bad].status, rows[bad].attempts) == ("failed", MAX_ATTEMPTS)
    assert jobs.tick() == [] and jobs.execute(bad_key).ran is False  # no more tries this period
    assert [m["To"] for m in mail.messages] == ["ok@lab.example"]  # never a second copy
    with TestClient(create_app(hub=hub)) as client:
        page = client.get("/settings/delivery", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    row = re.search(rf'<tr data-channel="{bad}".*?</tr>', page.text, re.S).group(0)
    assert "failed" in row and "550 5.1.1 no such user bad@lab.example" in unescape(row)


def test_a_missed_day_is_sent_once_late_and_never_a_backlog(world, mail):
    hub, clock, user, radar = world
    channel = _channel(hub, user, "me@lab.example", lang="en", radar=radar, created=NOW - timedelta(days=10))
    clock[0] = NOW + timedelta(days=3, hours=2)  # the server was down for three days; back at 10:00
    jobs = Jobs(hub, enqueue=lambda keys: None)
    digests = [i for i in jobs.plan() if i.name == "digest"]
    assert [(i.key, i.params["late"]) for i in digests] == [(f"digest:{channel}:2024-12-02", True)]
    jobs.tick()
    assert jobs.execute(f"digest:{channel}:2024-12-02").result["status"] == "sent"
    assert jobs.tick() == []
    assert len(mail.messages) == 1 and mail.messages[0]["Subject"] == "[late] AcademicHub digest · ml · 2024-12-02"
    assert "This digest is late" in _parts(mail.messages[0])["text/plain"]


def test_digest_send_mails_one_digest_now(world, mail, database_url, monkeypatch, tmp_path):
    from academichub.cli import app

    hub, clock, user, radar = world
    for name, value in {"DATABASE_URL": database_url, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(mail.port),
                        "SMTP_SECURITY": "none", "BRIEFING_PAPERS": "10"}.items():
        monkeypatch.setenv(f"ACADEMICHUB_{name}", value)
    runner = CliRunner()
    sent = runner.invoke(app, ["digest", "send", "ml", "--to", "check@lab.example", "--lang", "en"])
    assert sent.exit_code == 0, sent.output
    assert re.search(r"sent to check@lab\.example: <[^>]+@127\.0\.0\.1> \(250 2\.0\.0 accepted\)", sent.output)
    assert len(mail.messages) == 1
    message = mail.messages[0]
    assert message["Subject"] == "AcademicHub digest · ml · 2024-11-28" and message["List-Unsubscribe"] is None
    assert set(_parts(message)) == {"text/plain", "text/html"}
    zh = runner.invoke(app, ["digest", "send", "ml", "--to", "check@lab.example", "--date", "2024-11-28", "--lang", "zh"])
    assert zh.exit_code == 0 and mail.messages[1]["Subject"] == "AcademicHub 摘要 · ml · 2024-11-28"
    monkeypatch.delenv("ACADEMICHUB_SMTP_HOST")
    unset = runner.invoke(app, ["digest", "send", "ml", "--to", "check@lab.example"])
    assert unset.exit_code == 1 and "no mail set-up: set smtp_host" in unset.output
    missing = runner.invoke(app, ["digest", "send", "nope", "--to", "check@lab.example", "--smtp-host", "127.0.0.1"])
    assert missing.exit_code == 1 and "no radar 'nope'" in missing.output
    assert len(mail.messages) == 2


def test_the_delivery_settings_page_adds_tests_edits_and_removes_channels(world, mail):
    from academichub.web.app import create_app

    hub, clock, user, radar = world
    with TestClient(create_app(hub=hub)) as client:
        empty = client.get("/settings/delivery?lang=en")
        assert empty.status_code == 200 and "No channels yet." in empty.text
        assert client.post("/settings/delivery/email", data={"email": "me@lab.example"}).status_code == 200  # followed 303
        bad = client.post("/settings/delivery/channels?lang=zh", data={"kind": "email", "target": "not an address",
                                                                       "radar": "all", "cadence": "daily", "lang": "zh"})
        assert bad.status_code == 400 and "'not an address' 不是邮箱地址" in unescape(bad.text)
        # an e-mail channel without a target goes to the user's own address
        added = client.post("/settings/delivery/channels", data={"kind": "email", "target": "", "radar": str(radar),
                                                                 "cadence": "weekly", "lang": "en"})
        assert added.status_code == 200 and 'data-flash="added"' in added.text
        with hub.engine.connect() as conn:
            (channel,) = store.list_channels(conn, user)
        assert (channel.target, channel.radar_id, channel.cadence, channel.lang) == ("me@lab.example", radar, "weekly", "en")
        tested = client.post(f"/settings/delivery/channels/{channel.id}/test")  # a job: tests/test_delivery_test_send.py
        assert tested.status_code == 200 and 'data-flash="test-queued"' in tested.text
        mail.wait_for(1)
        assert [m["Subject"] for m in mail.messages] == ["[test] AcademicHub weekly digest · ml · 2024-W48"]
        with hub.engine.connect() as conn:
            assert store.recent_deliveries(conn, user) == []  # a test stands for no period
        hub.settings.allow_private_urls = True  # no DNS here: a webhook on this machine
        feishu = client.post("/settings/delivery/channels", data={
            "kind": "feishu", "target": "http://127.0.0.1:9/open-apis/bot/v2/hook/abc", "secret": "s3cr3t-0123456789",
            "radar": "all", "cadence": "daily", "lang": "zh"})
        assert feishu.status_code == 200
        assert "s3cr3t-0123456789" not in feishu.text and "••••6789" in feishu.text
        assert "hook/abc" not in feishu.text.split("<details>")[0]  # the webhook URL's credential is not in the table
        edited = client.post(f"/settings/delivery/channels/{channel.id}", data={
            "target": "other@lab.example", "radar": "all", "cadence": "daily", "lang": "zh", "enabled": ""})
        assert edited.status_code == 200
        with hub.engine.connect() as conn:
            now = store.get_channel(conn, channel.id)
        assert (now.target, now.radar_id, now.cadence, now.lang, now.enabled) == ("other@lab.example", None, "daily", "zh", False)
        assert client.post(f"/settings/delivery/channels/{channel.id}/remove").status_code == 200
        assert client.post(f"/settings/delivery/channels/{channel.id}/remove").status_code == 404
        cross_site = client.post("/settings/delivery/email", data={"email": "x@y.z"}, headers={"Sec-Fetch-Site": "cross-site"})
        assert cross_site.status_code == 403
