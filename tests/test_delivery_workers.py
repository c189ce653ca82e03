"""Two `academichub worker` processes on Redis and the test's store (SQLite, or PostgreSQL in the
second pass) send four e-mail digests through a real SMTP server that takes its time; the worker
in the middle of one is killed with SIGKILL. Each digest arrives exactly once:

- killed before the hand-over (the server is slow to answer RCPT; the row says `sending`): after
  the lease the other worker takes the job and sends it, once;
- killed after the hand-over (the server kept the message and is slow to answer DATA; the row
  says `committing`): the message is there, and the other worker marks the row `unconfirmed`
  instead of sending a second copy (at most once).

Real processes need real time: the lease is two seconds and the test polls for outcomes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from mail_support import MailServer
from test_workers_redis import REDIS_URL, _redis, _wait

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.settings import load_settings
from academichub.store import delivery as store
from academichub.store import jobs as ledger
from academichub.store.radars import add_rule, create_radar, default_user

REPO = Path(__file__).resolve().parents[1]
LEASE = 2.0
ADDRESSES = ("a@lab.example", "b@lab.example", "c@lab.example", "d@lab.example")


@pytest.mark.parametrize("moment", ["before-handover", "after-handover"])
def test_a_worker_killed_mid_delivery_sends_each_digest_exactly_once(moment, database_url, engine, tmp_path):
    from academichub.workers import JobQueue

    client = _redis()
    mail = MailServer(rcpt_delay=4.0 if moment == "before-handover" else 0.0,
                      data_delay=4.0 if moment == "after-handover" else 0.0).start()
    queue_name = f"ahtest_{uuid.uuid4().hex[:10]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    load_sample_if_empty(engine)
    with engine.begin() as conn:
        user = default_user(conn)
        radar = create_radar(conn, user_id=user, name="ml")
        add_rule(conn, radar, "category", "cs.LG")
        channels = {}
        for address in ADDRESSES:
            channel = store.add_channel(conn, user, "email", address, radar_id=radar, lang="en")
            store.update_channel(conn, channel, user, created_at=now - timedelta(days=2))
            channels[channel] = address
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ACADEMICHUB_")},
        "PYTHONPATH": str(REPO / "src"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "ACADEMICHUB_DATABASE_URL": database_url, "ACADEMICHUB_DATA_DIR": str(tmp_path / "data"),
        "ACADEMICHUB_QUEUE_URL": REDIS_URL, "ACADEMICHUB_QUEUE_NAME": queue_name, "ACADEMICHUB_SCHEDULER": "false",
        "ACADEMICHUB_JOB_LEASE_SECONDS": str(LEASE), "ACADEMICHUB_EMBED_ON_INGEST": "false",
        "ACADEMICHUB_BRIEFING_PAPERS": "10", "ACADEMICHUB_BRIEFING_HOUR": str(now.hour), "ACADEMICHUB_TIMEZONE": "UTC",
        "ACADEMICHUB_SMTP_HOST": "127.0.0.1", "ACADEMICHUB_SMTP_PORT": str(mail.port),
        "ACADEMICHUB_SMTP_SECURITY": "none", "ACADEMICHUB_SMTP_FROM": "radar@lab.example",
        "ACADEMICHUB_LOAD_SAMPLE": "false",
    }
    workers: list[subprocess.Popen] = []
    try:
        for i in range(2):
            workers.append(subprocess.Popen(
                [sys.executable, "-c", "from academichub.cli import app; app()", "worker", "--concurrency", "1"],
                env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"worker{i}.log", "wb"),
            ))
        settings = load_settings(**{k.removeprefix("ACADEMICHUB_").lower(): v for k, v in env.items()
                                    if k.startswith("ACADEMICHUB_")})
        queue = JobQueue(settings, engine=engine)
        keys = [k for k in queue.tick() if k.startswith("digest:")]
        assert len(keys) == 4

        stage = "sending" if moment == "before-handover" else "committing"
        event = mail.in_rcpt if moment == "before-handover" else mail.in_data

        def victim_row():
            with engine.connect() as conn:
                rows = [d for c in channels for d in store.deliveries_of(conn, c)]
            return next((d for d in rows if d.status == stage), None) if event.is_set() else None

        _wait(lambda: victim_row() is not None, 180, f"a worker to be mid-delivery ({stage})")
        row = victim_row()
        pid = int(row.worker.split(":")[1])
        victim = next(w for w in workers if w.pid == pid)
        victim.send_signal(signal.SIGKILL)
        victim.wait(30)
        killed_key = next(k for k in keys if k.startswith(f"digest:{row.channel_id}:"))

        def drained():
            with engine.connect() as conn:
                found = [ledger.get(conn, k) for k in keys]
            return all(j is not None and j.status == "done" for j in found)

        _wait(drained, 240, "the surviving worker to finish every digest", tick=queue.tick)
        time.sleep(1.0)  # a stray second copy would have arrived by now

        received = Counter(str(m["To"]) for m in mail.messages)
        assert received == Counter({address: 1 for address in ADDRESSES})
        with engine.connect() as conn:
            rows = {d.channel_id: d for c in channels for d in store.deliveries_of(conn, c)}
            killed_job = ledger.get(conn, killed_key)
        assert killed_job.attempts == 2  # the killed attempt, then the survivor's
        survivor = next(w for w in workers if w is not victim)
        assert killed_job.worker.split(":")[1] == str(survivor.pid)
        if moment == "before-handover":
            assert {c: d.status for c, d in rows.items()} == {c: "sent" for c in channels}
            assert rows[row.channel_id].attempts == 2
        else:
            assert rows[row.channel_id].status == "unconfirmed" and killed_job.result["status"] == "unconfirmed"
            assert {c: d.status for c, d in rows.items() if c != row.channel_id} == {
                c: "sent" for c in channels if c != row.channel_id}
            # the message that arrived is the killed attempt's: its Message-ID is on the row
            arrived = next(m for m in mail.messages if str(m["To"]) == channels[row.channel_id])
            assert arrived["Message-ID"] == rows[row.channel_id].message_id
        assert survivor.poll() is None
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(30)
            except subprocess.TimeoutExpired:
                w.kill()
        mail.stop()
        for key in client.scan_iter(match=f"huey.*{queue_name}*"):
            client.delete(key)
