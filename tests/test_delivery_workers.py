"""Two `academichub worker` processes on Redis and the test's store (SQLite, or PostgreSQL in the
second pass) send four e-mail digests through a real SMTP server that takes its time; the worker
in the middle of one is killed with SIGKILL. Each digest arrives exactly once:

- killed before the hand-over (the server is slow to answer RCPT; the row says `sending`): after
  the lease the other worker takes the job and sends it, once;
- killed after the hand-over (the server kept the message and is slow to answer DATA; the row
  says `committing` and the server holds its message): the message is there, and the other
  worker marks the row `unconfirmed` instead of sending a second copy (at most once).

Real processes need real time: the lease is two seconds and the test polls for outcomes."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from mail_support import MailServer
from workers_support import kill_holder, running_workers, settings_of, wait_for

from academichub.ingest.pipeline import load_sample_if_empty
from academichub.store import delivery as store
from academichub.store import jobs as ledger
from academichub.store.radars import add_rule, create_radar, default_user

LEASE = 2.0
ADDRESSES = ("a@lab.example", "b@lab.example", "c@lab.example", "d@lab.example")


@pytest.mark.parametrize("moment", ["before-handover", "after-handover"])
def test_a_worker_killed_mid_delivery_sends_each_digest_exactly_once(moment, database_url, engine, tmp_path):
    from academichub.workers import JobQueue

    mail = MailServer(rcpt_delay=4.0 if moment == "before-handover" else 0.0,
                      data_delay=4.0 if moment == "after-handover" else 0.0).start()
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
    try:
        with running_workers(
            database_url, tmp_path, LEASE, embed_on_ingest="false", briefing_papers="10", briefing_hour=str(now.hour),
            timezone="UTC", smtp_host="127.0.0.1", smtp_port=str(mail.port), smtp_security="none",
            smtp_from="radar@lab.example", load_sample="false",
        ) as (workers, env):
            queue = JobQueue(settings_of(env), engine=engine)
            keys = [k for k in queue.tick() if k.startswith("digest:")]
            assert len(keys) == 4

            stage = "sending" if moment == "before-handover" else "committing"

            def victim_row():
                with engine.connect() as conn:
                    rows = [d for c in channels for d in store.deliveries_of(conn, c)]
                if moment == "before-handover":
                    return next((d for d in rows if d.status == stage), None) if mail.in_rcpt.is_set() else None
                # after: a row whose message the server keeps (another worker's DATA is no sign: a row
                # is `committing` a moment before its own DATA arrives, and a kill then sends nothing)
                kept = {to for _, tos in list(mail.envelopes) for to in tos}
                return next((d for d in rows if d.status == stage and channels[d.channel_id] in kept), None)

            wait_for(lambda: victim_row() is not None, 180, f"a worker to be mid-delivery ({stage})")
            row = victim_row()
            victim, survivor = kill_holder(workers, row.worker)
            killed_key = next(k for k in keys if k.startswith(f"digest:{row.channel_id}:"))

            def drained():
                with engine.connect() as conn:
                    found = [ledger.get(conn, k) for k in keys]
                return all(j is not None and j.status == "done" for j in found)

            wait_for(drained, 240, "the surviving worker to finish every digest", tick=queue.tick)
            time.sleep(1.0)  # a stray second copy would have arrived by now

            received = Counter(str(m["To"]) for m in mail.messages)
            assert received == Counter({address: 1 for address in ADDRESSES})
            with engine.connect() as conn:
                rows = {d.channel_id: d for c in channels for d in store.deliveries_of(conn, c)}
                killed_job = ledger.get(conn, killed_key)
            assert killed_job.attempts == 2  # the killed attempt, then the survivor's
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
        mail.stop()
