""""Send a test" on /settings/delivery is a job on the server's queue (the embedded SQLite queue
that the app's lifespan starts), so the POST answers at once whatever the mail server or webhook
does; the channel's row shows "queued", then the outcome (sent, or the error, which is also on the
channel) on a later view. Against the real aiosmtpd server, a silent SMTP server, a dead SMTP port
and a local webhook that answers only when the test lets it, on the test's store (SQLite, or
PostgreSQL in the second pass)."""

from __future__ import annotations

import re
import socket
import threading
from datetime import timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient

from mail_support import WebhookReceiver, free_port, mail  # noqa: F401 - mail: the fixture (a real SMTP server)
from test_delivery import world  # noqa: F401 - the fixture: the bundled day, radar "ml", a hub with SMTP set up
from workers_support import wait_for

from academichub.store import delivery as store
from academichub.store import jobs as ledger


@pytest.fixture
def client(world):
    from academichub.web.app import create_app

    hub = world[0]
    with TestClient(create_app(hub=hub)) as client:
        yield client


def _channel(hub, user, kind, target):
    with hub.engine.begin() as conn:
        return store.add_channel(conn, user, kind, target, lang="en")


def _row(client, channel_id) -> tuple[str | None, str]:
    """(the test's state shown in the channel's row, or None, the row's text without its markup)."""
    page = client.get("/settings/delivery?lang=en")
    assert page.status_code == 200
    row = re.search(rf'<tr data-channel="{channel_id}".*?</tr>', page.text, re.S).group(0)
    shown = re.search(r'data-test="(\w+)"', row)
    return (shown.group(1) if shown else None), " ".join(unescape(re.sub(r"<[^>]+>", " ", row)).split())


def _test(client, channel_id) -> str:
    answer = client.post(f"/settings/delivery/channels/{channel_id}/test")
    assert answer.status_code == 200 and 'data-flash="test-queued"' in answer.text  # followed its 303
    return answer.text


def _settled(client, channel_id) -> tuple[str, str]:
    wait_for(lambda: _row(client, channel_id)[0] not in (None, "queued"), 60, "the test job's outcome")
    return _row(client, channel_id)


def _channel_error(hub, channel_id) -> str | None:
    with hub.engine.connect() as conn:
        return store.get_channel(conn, channel_id).last_error


def test_a_test_mail_is_queued_then_shown_sent(world, client, mail):
    hub, _clock, user, _radar = world
    channel = _channel(hub, user, "email", "me@lab.example")
    assert _row(client, channel)[0] is None  # never tested
    _test(client, channel)
    state, row = _settled(client, channel)
    assert state == "sent" and "Test sent 2024-11-29 07:30 UTC" in row
    assert [m["Subject"] for m in mail.messages] == ["[test] AcademicHub digest · ml · 2024-11-29"]
    assert _channel_error(hub, channel) is None
    with hub.engine.connect() as conn:
        assert store.recent_deliveries(conn, user) == []  # a test stands for no period
        (job,) = [j for j in ledger.recent(conn) if j.name == "test"]
    assert (job.key, job.status, job.attempts) == (f"test:{channel}:now-2024-11-29T07:30:00", "done", 1)


def test_a_silent_mail_server_holds_a_worker_not_the_page_and_its_error_is_shown(world, client):
    """A server that accepts the connection and never greets: the POST has answered while the job
    still waits for it; once it hangs up, the error is on the channel and in its row."""
    hub, _clock, user, _radar = world
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    try:
        hub.settings.smtp_port = silent.getsockname()[1]
        channel = _channel(hub, user, "email", "me@lab.example")
        _test(client, channel)
        assert _row(client, channel)[0] == "queued"  # answered while the mail server has said nothing
        with hub.engine.connect() as conn:
            (job,) = [j for j in ledger.recent(conn) if j.name == "test"]
        assert job.status in ("queued", "running")
        connection, _address = silent.accept()  # the job's connection, waiting for a greeting
        connection.close()
    finally:
        silent.close()
    state, row = _settled(client, channel)
    error = _channel_error(hub, channel)
    assert state == "failed" and error.startswith(f"smtp://127.0.0.1:{hub.settings.smtp_port} ") and "cannot connect" in error
    assert f"failed: {error}" in row and "Test failed 2024-11-29 07:30 UTC" in row


def test_a_dead_mail_port_fails_the_test_at_once_with_the_error_shown(world, client):
    hub, clock, user, _radar = world
    hub.settings.smtp_port = free_port()  # nothing listens there
    channel = _channel(hub, user, "email", "me@lab.example")
    _test(client, channel)
    state, row = _settled(client, channel)
    error = _channel_error(hub, channel)
    assert state == "failed" and "cannot connect" in error and "refused" in error.lower()
    assert f"failed: {error}" in row
    with hub.engine.connect() as conn:
        (job,) = [j for j in ledger.recent(conn) if j.name == "test"]
    assert (job.status, job.attempts, job.result["status"]) == ("done", 1, "failed")  # a test is not retried


def test_a_slow_webhook_holds_a_worker_not_the_page_then_the_outcome_is_shown(world, client):
    hub, clock, user, _radar = world
    hub.settings.allow_private_urls = True  # the receiver is on this machine
    gate, released = threading.Event(), []

    def answer(request):
        released.append(gate.wait(30))  # True: the test let it answer; False: it gave up waiting
        return 200, {"ok": True}

    receiver = WebhookReceiver(reply=answer).start()
    try:
        channel = _channel(hub, user, "slack", receiver.url("/hook/abc"))
        _test(client, channel)  # answered while the webhook holds the test
        wait_for(lambda: receiver.received, 60, "the test to reach the webhook")
        assert _row(client, channel)[0] == "queued"
        gate.set()
        state, row = _settled(client, channel)
        assert state == "sent" and released == [True]
        assert "[test]" in receiver.received[0].body.decode()

        # a webhook that says no: its error is the outcome, on the channel too
        receiver.reply = lambda request: (500, {"error": "boom"})
        clock[0] += timedelta(minutes=1)  # another test, not the same click again
        _test(client, channel)
        state, row = _settled(client, channel)
        error = _channel_error(hub, channel)
        assert state == "failed" and error.startswith("http://127.0.0.1:") and "HTTP 500" in error
        assert "hook/abc" not in error and f"failed: {error}" in row
    finally:
        gate.set()
        receiver.stop()
